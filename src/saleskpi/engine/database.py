"""What the engine needs of a database: the store implements it, the engine never opens one.

The engine builds queries; the store (``saleskpi.store``) owns connections and runs
them. Keeping the engine below the store lets another backend implement this.
"""

from __future__ import annotations

from typing import Any, Protocol


class SqlDialect(Protocol):
    @property
    def name(self) -> str:
        """The dialect as Ibis and sqlglot name it: "duckdb", "postgres"."""


class Database(Protocol):
    @property
    def dialect(self) -> SqlDialect:
        """The SQL the store runs: the engine compiles its queries for it."""

    @property
    def con(self) -> Any:
        """The connection that runs compiled SQL: ``execute(sql, values)`` returns a
        result with ``description`` and ``fetchall``; it takes ``?`` and ``$name``
        placeholders in hand-written SQL and the dialect's own in compiled SQL."""

    @property
    def ibis(self) -> Any:
        """The Ibis backend whose tables expressions are built on."""

    def fetch(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[Any]: ...

    def count(self, table: str) -> int: ...

    def sources_of_reps(self) -> int: ...
