"""What the engine needs of a database: the store implements it, the engine never opens one.

The engine builds queries; the store (``saleskpi.store``) owns connections and runs
them. Keeping the engine below the store lets another backend implement this.
"""

from __future__ import annotations

from typing import Any, Protocol


class Database(Protocol):
    @property
    def con(self) -> Any:
        """The DB-API connection that runs compiled SQL."""

    @property
    def ibis(self) -> Any:
        """The Ibis backend whose tables expressions are built on."""

    def fetch(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[Any]: ...

    def count(self, table: str) -> int: ...

    def sources_of_reps(self) -> int: ...
