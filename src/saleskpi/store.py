"""The analytical store: one DuckDB file with a table per canonical entity."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import ibis
from ibis.backends.duckdb import Backend as IbisDuckDB

from saleskpi.ingest.schema import ENTITIES, SQL_TYPES, Entity


def table_ddl(entity: Entity) -> str:
    columns = [f'"{c.name}" {SQL_TYPES[c.type]}' for c in entity.columns]
    columns += ['"datasource" VARCHAR NOT NULL', '"custom" JSON']
    return f'CREATE TABLE IF NOT EXISTS "{entity.name}" ({", ".join(columns)})'


class AnalyticsStore:
    """A DuckDB file holding the facts; timestamps are UTC.

    DuckDB allows one read-write process per file, so a store is opened for the
    length of one command and closed after it.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not path.exists():
            read_only = False  # nothing imported yet: create an empty store
        self.con = duckdb.connect(str(path), read_only=read_only)
        # Sessions are UTC so that TIMESTAMP -> TIMESTAMPTZ casts are identity.
        self.con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            for entity in ENTITIES.values():
                self.con.execute(table_ddl(entity))
        self._ibis: IbisDuckDB | None = None

    @property
    def ibis(self) -> IbisDuckDB:
        if self._ibis is None:
            self._ibis = ibis.duckdb.from_connection(self.con)
        return self._ibis

    def count(self, table: str) -> int:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and then
        # refuses the next statement on the connection.
        rows = self.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()
        return int(rows[0][0]) if rows else 0

    def fetch(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[Any]:
        return self.con.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: a failed import leaves the store exactly as before."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> AnalyticsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
