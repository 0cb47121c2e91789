"""A psycopg connection that takes the store's SQL as DuckDB's connection does.

The store and the engine write their own statements with DuckDB's placeholders:
``?`` for values in order and ``$name`` for named ones; the SQL Ibis compiles for
PostgreSQL has psycopg's ``%(name)s``. ``PgConnection.execute`` accepts all three
(it rewrites the first two for psycopg, and doubles a literal ``%``, which psycopg
would read as a placeholder), and answers DuckDB's way: a data-changing statement
yields one row with the number of rows it changed.

Transactions are the store's own ``BEGIN TRANSACTION`` / ``COMMIT`` statements on
an autocommit connection (as on DuckDB). A transaction that changed anything
raises the workspace's data version in the same commit (``saleskpi_meta``), which
is what caches of computed answers are keyed by.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from saleskpi.store.commit_markers import MARKER_TABLE

if TYPE_CHECKING:
    import psycopg

DATA_VERSION_KEY = "data_version"
BUMP_VERSION = (f"UPDATE saleskpi_meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) "
                f"WHERE key = '{DATA_VERSION_KEY}'")
_DATA_CHANGING = ("insert", "update", "delete", "merge", "copy")


@functools.lru_cache(maxsize=2048)
def psycopg_sql(sql: str, style: str) -> str:
    """``sql`` with DuckDB's placeholders as psycopg's; ``style`` is "list" or "named".

    Quoted strings, quoted names and comments are copied as they are (but a ``%`` in
    them is doubled too: psycopg reads every ``%`` of a statement with values).
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:  # '' or "" inside
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif char == "%":
            if style == "named" and sql.startswith("%(", i):
                close = sql.find(")s", i)
                if close > 0 and sql[i + 2:close].replace("_", "").isalnum():
                    out.append(sql[i:close + 2])
                    i = close + 2
                    continue
            out.append("%%")
            i += 1
        elif char == "?" and style == "list":
            out.append("%s")
            i += 1
        elif (char == "$" and style == "named" and i + 1 < n
              and (sql[i + 1].isalpha() or sql[i + 1] == "_")):
            end = i + 1
            while end < n and (sql[end].isalnum() or sql[end] == "_"):
                end += 1
            out.append(f"%({sql[i + 1:end]})s")
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _changes_data(word: str, sql: str, rows: int) -> bool:
    """Whether a statement changed stored data: rows written (not the journal's commit
    marker, which is gone once the write is settled), or a table made that is not a
    temporary one. So an import that finds everything unchanged changes no version."""
    if MARKER_TABLE in sql:
        return False
    if word in _DATA_CHANGING:
        return rows > 0
    return word == "create" and " temp " not in f" {sql.lower()} "


def _first_word(sql: str) -> str:
    text = sql.lstrip()
    while text.startswith("--") or text.startswith("("):
        text = text.split("\n", 1)[1].lstrip() if text.startswith("--") else text[1:].lstrip()
    return text.split(None, 1)[0].lower() if text else ""


class PgResult:
    """What ``execute`` returns: DuckDB's result methods over a psycopg cursor."""

    def __init__(self, cursor: psycopg.Cursor[Any], changed: bool) -> None:
        self._cursor = cursor
        self._changed = changed

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchall(self) -> list[Any]:
        if self._cursor.description is None:
            return [(self._cursor.rowcount,)] if self._changed else []
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        if self._cursor.description is None:
            return (self._cursor.rowcount,) if self._changed else None
        return self._cursor.fetchone()


class PgConnection:
    """DuckDB's connection methods (``execute``, ``executemany``) on psycopg."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self._in_transaction = False
        self._changed = False

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
                ) -> PgResult:
        word = _first_word(sql)
        if word in ("begin", "start"):
            self._in_transaction, self._changed = True, False
        elif word == "commit":
            if self._in_transaction and self._changed:
                self.raw.execute(BUMP_VERSION)
            self._in_transaction = self._changed = False
        elif word == "rollback":
            self._in_transaction = self._changed = False
        cursor = self.raw.cursor()
        if params is None:
            cursor.execute(sql)  # without values psycopg reads no placeholders
        else:
            style = "named" if isinstance(params, dict) else "list"
            cursor.execute(psycopg_sql(sql, style), params)
        if self._in_transaction and not self._changed:
            self._changed = _changes_data(word, sql, cursor.rowcount)
        return PgResult(cursor, word in _DATA_CHANGING)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        values = list(rows)
        with self.raw.cursor() as cursor:
            cursor.executemany(psycopg_sql(sql, "list"), values)
        if self._in_transaction and not self._changed:
            self._changed = _changes_data(_first_word(sql), sql, len(values))

    def close(self) -> None:
        self.raw.close()
