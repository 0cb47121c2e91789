"""A ClickHouse session that takes the store's SQL as DuckDB's connection does.

Two ways to reach ClickHouse behind one small interface (``ClickHouseSession``:
``query`` answers an Arrow table, ``insert_arrow`` appends one):

- ``clickhouse://user:password@host:8123/database`` (``clickhouses://`` for TLS):
  a real server or a cluster, through ``clickhouse-connect`` (the ``clickhouse``
  extra);
- ``chdb:///path/to/folder``: ClickHouse in this process (``chdb``, the
  ``clickhouse-tests`` extra), for tests and trials on one machine.

``ChConnection.execute`` takes DuckDB's placeholders (``?`` in order, ``$name``)
and the ``{name: String}`` ones Ibis compiles for ClickHouse, and binds values by
ClickHouse's typed query parameters (never spliced into the SQL). The store's
hand-written SQL is DuckDB's; the few spellings ClickHouse lacks are rewritten
here (``row(...)`` is ``tuple(...)``, ``lower`` and ``upper`` are Unicode's
(``lowerUTF8``), ``current_schema()`` is the database,
temporary tables live in memory, emptying one is ``TRUNCATE``).

ClickHouse has no transactions across statements. ``BEGIN`` starts a write whose
records all get one version (``record_version``); ``ROLLBACK`` deletes the versions
it appended, so the records' earlier versions are current again; ``COMMIT`` raises
the data version (``docs/backends.md`` says what a killed process leaves).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import pyarrow as pa

DATA_VERSION_KEY = "data_version"
# Session settings: joins fill missing rows with NULLs as SQL does (Ibis's ClickHouse
# backend sets the same); a bare UNION removes duplicates as in DuckDB; times are UTC.
SESSION_SETTINGS = {"join_use_nulls": 1, "union_default_mode": "'DISTINCT'",
                    "session_timezone": "'UTC'", "mutations_sync": 2,
                    "use_variant_as_common_type": 0}
_DATA_CHANGING = ("insert", "delete", "alter", "truncate")
# Statements that answer rows (the others are sent as commands to a server).
_ANSWERING = ("select", "with", "describe", "desc", "show", "exists")
_TYPED = re.compile(r"\{(\w+)\s*:\s*([^}]+)\}")
_TEMP_WITH_COLUMNS = re.compile(r"^\s*CREATE\s+TEMP(ORARY)?\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?"
                                r"(\"?\w+\"?)\s*\(", re.IGNORECASE)
_EMPTY_TABLE = re.compile(r"^\s*DELETE\s+FROM\s+(\"?\w+\"?)\s*$", re.IGNORECASE)


class ClickHouseSession(Protocol):
    """What saleskpi needs of ClickHouse: run a statement, append rows."""

    def query(self, sql: str, params: dict[str, Any]) -> pa.Table | None: ...

    def insert_arrow(self, table: str, data: pa.Table) -> None: ...

    def close(self) -> None: ...


class ChdbSession:
    """ClickHouse in this process, its data in a folder (chdb). One per process and folder."""

    _lock = threading.Lock()
    _open: ClassVar[dict[str, tuple[Any, int]]] = {}

    def __init__(self, folder: str) -> None:
        import chdb.session

        self.folder = folder
        with self._lock:
            session, users = self._open.get(folder, (None, 0))
            if session is None:
                Path(folder).mkdir(parents=True, exist_ok=True)
                session = chdb.session.Session(folder)  # type: ignore[no-untyped-call]
            self._open[folder] = (session, users + 1)
        self._session = session
        self._closed = False

    def query(self, sql: str, params: dict[str, Any]) -> pa.Table | None:
        text = {name: _chdb_text(value) for name, value in params.items()}
        with self._lock:
            try:
                found = self._session.query(sql, "ArrowTable", params=text or None)
            except Exception:
                # chdb hands a failed query's partial output (a stopped one's, say) to
                # the next query of the session: a throwaway query takes it.
                self._session.query("SELECT 1", "CSV")
                raise
        return found if found is not None and found.num_columns else None

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        # chdb reads files of this machine: the rows go through a Parquet file.
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory(prefix="saleskpi-chdb-") as folder:
            path = Path(folder) / "rows.parquet"
            pq.write_table(data, path)
            names = ", ".join(f'"{n}"' for n in data.column_names)
            self.query(f'INSERT INTO {table} ({names}) SELECT {names} FROM '
                       f"file('{path.as_posix()}', Parquet)", {})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            session, users = self._open[self.folder]
            if users > 1:
                self._open[self.folder] = (session, users - 1)
                return
            del self._open[self.folder]
        session.close()


class ServerSession:
    """A ClickHouse server or cluster over HTTP(S), through clickhouse-connect."""

    def __init__(self, url: str, *, connect_seconds: float) -> None:
        import logging

        import clickhouse_connect

        # The driver logs a failed connection as a warning before raising it; without a
        # handler Python prints that on stderr, beside the store's own clear error.
        driver_log = logging.getLogger("clickhouse_connect")
        if not driver_log.handlers:
            driver_log.addHandler(logging.NullHandler())
        parts = urlsplit(url)
        self._client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost", port=parts.port or 8123,
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/") or "default",
            secure=parts.scheme == "clickhouses", connect_timeout=connect_seconds,
            autogenerate_session_id=True)

    def query(self, sql: str, params: dict[str, Any]) -> pa.Table | None:
        if _first_word(sql) in _ANSWERING:
            found: pa.Table = self._client.query_arrow(sql, parameters=params)
            return found
        self._client.command(sql, parameters=params)
        return None

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        self._client.insert_arrow(table.strip('"'), data)

    def close(self) -> None:
        self._client.close()


def open_session(url: str, *, connect_seconds: float = 10) -> ClickHouseSession:
    """The session the URL's scheme names (``chdb://`` or ``clickhouse(s)://``)."""
    scheme = urlsplit(url).scheme
    if scheme == "chdb":
        return ChdbSession(unquote(urlsplit(url).path))
    return ServerSession(url, connect_seconds=connect_seconds)


# -- values as ClickHouse's typed parameters ------------------------------------------------
def clickhouse_type(value: Any) -> str:
    """The query-parameter type of a Python value (a list is of text, as the store binds)."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, decimal.Decimal):
        return "Decimal(38, 10)"
    if isinstance(value, dt.datetime):
        return "DateTime64(6)"
    if isinstance(value, dt.date):
        return "Date"
    if isinstance(value, list | tuple):
        return "Array(String)"
    return "String"


def _chdb_text(value: Any) -> str:
    """A value in the text form chdb's parameters take."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return str(value.strftime("%Y-%m-%d %H:%M:%S.%f"))
    if isinstance(value, list | tuple):
        quoted = (str(v).replace("\\", "\\\\").replace("'", "\\'") for v in value)
        return "[" + ", ".join(f"'{v}'" for v in quoted) + "]"
    return str(value)


def clickhouse_sql(sql: str, params: Sequence[Any] | dict[str, Any] | None
                   ) -> tuple[str, dict[str, Any]]:
    """``sql`` with DuckDB's placeholders as ClickHouse's typed ones, and the values by name.

    A missing value (None) is written as NULL: a typed parameter has no NULL of
    its own. Quoted strings and names are copied as they are.
    """
    given = params if params is not None else []
    named = dict(given) if isinstance(given, dict) else {}
    ordered = list(given) if not isinstance(given, dict) else []
    out: list[str] = []
    bound: dict[str, Any] = {}
    i, n, position = 0, len(sql), 0
    while i < n:
        char = sql[i]
        if char in "'\"`":
            end = i + 1
            while end < n and sql[end] != char:
                end += 2 if sql[end] == "\\" else 1
            out.append(sql[i:end + 1])
            i = end + 1
            continue
        typed = _TYPED.match(sql, i) if char == "{" else None
        if typed:
            bound[typed.group(1)] = named[typed.group(1)]
            out.append(typed.group(0))
            i = typed.end()
            continue
        name = None
        if char == "?" and ordered:
            name, value = f"p{position}", ordered[position]
            position += 1
            i += 1
        elif (char == "$" and isinstance(given, dict) and i + 1 < n
              and (sql[i + 1].isalpha() or sql[i + 1] == "_")):
            end = i + 1
            while end < n and (sql[end].isalnum() or sql[end] == "_"):
                end += 1
            name, value = sql[i + 1:end], named[sql[i + 1:end]]
            i = end
        else:
            out.append(char)
            i += 1
            continue
        if value is None:
            out.append("NULL")
        else:
            bound[name] = value
            out.append(f"{{{name}:{clickhouse_type(value)}}}")
    return _spelled_for_clickhouse("".join(out)), bound


def _spelled_for_clickhouse(sql: str) -> str:
    """DuckDB's words ClickHouse spells otherwise (in the store's hand-written SQL)."""
    emptied = _EMPTY_TABLE.match(sql)
    if emptied:  # emptying a temporary table
        return f"TRUNCATE TABLE {emptied.group(1)}"
    if _TEMP_WITH_COLUMNS.match(sql) and "ENGINE" not in sql.upper():
        import sqlglot

        created = sqlglot.transpile(sql, read="duckdb", write="clickhouse")[0]
        return created.replace("Nullable(DateTime)", "Nullable(DateTime64(6))") + \
            " ENGINE = Memory"
    sql = re.sub(r"\brow\(", "tuple(", sql)
    # Unicode case, as DuckDB's (ClickHouse's lower and upper are ASCII only).
    sql = re.sub(r"\b(lower|upper)\(", lambda m: f"{m.group(1).lower()}UTF8(", sql,
                 flags=re.IGNORECASE)
    return re.sub(r"\bcurrent_schema\(\)", "currentDatabase()", sql)


def _first_word(sql: str) -> str:
    text = sql.lstrip()
    while text.startswith("--") or text.startswith("("):
        text = text.split("\n", 1)[1].lstrip() if text.startswith("--") else text[1:].lstrip()
    return text.split(None, 1)[0].lower() if text else ""


def _plain(value: Any) -> Any:
    """ClickHouse's UTC times as DuckDB gives them: naive, in UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


class ChResult:
    """What ``execute`` returns: DuckDB's result methods over an Arrow table."""

    def __init__(self, table: pa.Table | None) -> None:
        self._rows: list[tuple[Any, ...]] | None = None
        self._table = table

    @property
    def description(self) -> list[tuple[str, ...]] | None:
        if self._table is None:
            return None
        return [(name,) for name in self._table.column_names]

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._table is None:
            return []
        if self._rows is None:
            columns = [self._table.column(i).to_pylist()
                       for i in range(self._table.num_columns)]
            self._rows = [tuple(_plain(v) for v in row) for row in zip(*columns, strict=True)]
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None


class ChConnection:
    """DuckDB's connection methods (``execute``, ``executemany``) on a ClickHouse session.

    A "transaction" that wrote anything raises the data version at its COMMIT, which
    is what caches of computed answers are keyed by.
    """

    def __init__(self, session: ClickHouseSession) -> None:
        self.session = session
        self._in_transaction = False
        self._changed = False
        self._version = 0
        self._written: set[str] = set()
        for name, value in SESSION_SETTINGS.items():
            session.query(f"SET {name} = {value}", {})

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
                ) -> ChResult:
        word = _first_word(sql)
        if word in ("begin", "start", "commit", "rollback"):
            if word == "commit" and self._in_transaction and self._changed:
                self.bump_version()
            if word == "rollback" and self._in_transaction:
                self._undo()
            self._in_transaction = word in ("begin", "start")
            self._version = time.time_ns() if self._in_transaction else 0
            self._changed = False
            self._written = set()
            return ChResult(None)
        text, values = clickhouse_sql(sql, params)
        found = self.session.query(text, values)
        if word in _DATA_CHANGING and not _is_scratch(sql):
            self._changed = True
            target = _TARGET.match(sql)
            if target:
                self._written.add(target.group(1))
            if not self._in_transaction:
                self.bump_version()
                self._changed = False
        return ChResult(found)

    def record_version(self) -> int:
        """The version of the records written now: one per "transaction", so that a
        failed write's records can be taken out again (``ROLLBACK``)."""
        return self._version or time.time_ns()

    def _undo(self) -> None:
        """Take out the versions this write appended: the earlier ones are current again.

        (Only appends are undone: a source's records deleted outright stay deleted.)
        """
        for table in sorted(self._written):
            if table.endswith("_versions"):
                self.session.query(f'DELETE FROM "{table}" WHERE _version = {{v:UInt64}}',
                                   {"v": self._version})

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.execute(sql, list(row))

    def bump_version(self) -> None:
        self.session.query(
            "INSERT INTO saleskpi_meta SELECT key, toString(toInt64(value) + 1), "
            "toUInt64(value) + 1 FROM saleskpi_meta FINAL WHERE key = {key:String}",
            {"key": DATA_VERSION_KEY})

    def close(self) -> None:
        self.session.close()


_TARGET = re.compile(r"^\s*(?:INSERT\s+INTO|DELETE\s+FROM|ALTER\s+TABLE|TRUNCATE\s+TABLE)"
                     r"\s+\"?(\w+)", re.IGNORECASE)


def _is_scratch(sql: str) -> bool:
    """Writes that change no stored fact: temporary tables and the journal's markers.

    Facts are kept only in the versioned tables (``<entity>_versions``) and rep links.
    """
    target = _TARGET.match(sql)
    name = target.group(1) if target else ""
    return not (name.endswith("_versions") or name == "rep_links")
