"""The analytical store on ClickHouse: a server, a cluster, or chdb in this process.

``settings.backend: clickhouse`` and ``backend_url`` (``SALESKPI_BACKEND_URL``):
``clickhouse://user:password@host:8123/database`` reaches a server through
clickhouse-connect, ``chdb:///path/to/folder`` runs ClickHouse in this process
(``store/ch_connection.py``).

ClickHouse has no ``ON CONFLICT`` and no multi-statement transactions, so each
entity is kept as versions (docs/backends.md, "Upserts on ClickHouse"):

- ``<entity>_versions`` is a ``ReplacingMergeTree(_version, _deleted)`` ordered by
  (datasource, key): an import appends only the new and changed rows (found, as on
  the other backends, by comparing staged rows with stored ones), each with
  ``_version`` = the write's start in nanoseconds, so the latest version of a key
  wins (a failed write deletes its versions again); a record a sync removes is
  appended once more with ``_deleted = 1``;
- ``<entity>`` is a view ``SELECT ... FROM <entity>_versions FINAL WHERE _deleted = 0``,
  so every query (the engine's, the importer's lookups) sees one row per key even
  before ClickHouse merges the parts; importing the same files again appends nothing;
- first contacts are views over the activities (ClickHouse groups them fast enough
  that no table has to be kept up to date).

Targets, users and the import log stay in the workspace's SQLite file, through
the same write journal as on the other backends (``store/journal.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saleskpi.domain.backends import masked_url
from saleskpi.domain.errors import Busy, QueryTimeout
from saleskpi.domain.i18n import _
from saleskpi.domain.schema import CONTACT_TYPES, ENTITIES, FIRST_CONTACT_TABLES, ColumnType, Entity
from saleskpi.store.ch_connection import DATA_VERSION_KEY, ChConnection, open_session
from saleskpi.store.commit_markers import MARKER_TABLE
from saleskpi.store.dialects import CLICKHOUSE, CLICKHOUSE_TYPES
from saleskpi.store.facts import FactStore, plain_value
from saleskpi.store.writer_gate import Waiting, one_writer

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SCHEMA_VERSION = 1
VERSIONS = "_versions"  # suffix of the tables that keep every version of a record
CONNECT_SECONDS = 10
# How long a writer queues behind another writer unless told otherwise (the
# write_wait_seconds setting), as on DuckDB.
QUEUE_WAIT_SECONDS = 600.0

# As rep_people on DuckDB and PostgreSQL (store/rep_people.py), in ClickHouse's words:
# a group's first member is the least (source, id), compared byte by byte as DuckDB
# orders text.
REP_PEOPLE_DDL = [
    """CREATE TABLE IF NOT EXISTS rep_links (
           datasource String, rep_id String, person_group String)
       ENGINE = MergeTree ORDER BY (datasource, rep_id)""",
    """CREATE VIEW IF NOT EXISTS rep_people AS
    WITH email_ok AS (
        SELECT lowerUTF8(trimBoth(email)) AS email
        FROM reps WHERE email IS NOT NULL AND trimBoth(email) <> ''
        GROUP BY email HAVING count() = uniqExact(datasource)
    ),
    keyed AS (
        SELECT r.datasource AS datasource, r.id AS id, r.name AS name, r.team AS team,
               coalesce('link:' || l.person_group,
                        if(e.email IS NOT NULL, 'email:' || e.email, NULL),
                        'id:' || r.datasource || ':' || r.id) AS grp
        FROM reps r
        LEFT JOIN rep_links l ON l.datasource = r.datasource AND l.rep_id = r.id
        LEFT JOIN email_ok e ON e.email = lowerUTF8(trimBoth(r.email))
    ),
    firsts AS (
        SELECT grp, argMin(datasource, (datasource, id)) AS first_source,
               argMin(id, (datasource, id)) AS first_id,
               argMin(name, (datasource, id)) AS first_name, count() AS members
        FROM keyed GROUP BY grp
    ),
    clashes AS (SELECT first_id, count() AS people FROM firsts GROUP BY first_id)
    SELECT k.datasource AS datasource, k.id AS rep_id, k.team AS team,
           if(c.people > 1, f.first_source || ':' || f.first_id, f.first_id) AS person,
           f.first_name AS person_name, f.members AS members
    FROM keyed k JOIN firsts f ON f.grp = k.grp JOIN clashes c ON c.first_id = f.first_id
    SETTINGS join_use_nulls = 1""",
]
META_DDL = """CREATE TABLE IF NOT EXISTS saleskpi_meta (
    key String, value String, _version UInt64) ENGINE = ReplacingMergeTree(_version) ORDER BY key"""
MARKER_DDL = f"""CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (
    id String, committed_at DateTime64(6)) ENGINE = MergeTree ORDER BY id"""


class StoreUnreachable(Busy):
    """The ClickHouse server cannot be reached or refused the connection."""

    default_code = "store_unreachable"


# ClickHouse's error codes a login or a URL can meet (src/Common/ErrorCodes.cpp).
_LOGIN_REFUSED = {192, 193, 194, 516}  # unknown user, wrong/required password, auth failed
_UNKNOWN_DATABASE = 81


def connect_error(url: str, exc: Exception) -> StoreUnreachable:
    """What went wrong opening ``url``, said so that the reader knows what to fix.

    The driver's own text is not repeated: it names the server's URL and, for some
    errors, the statement; the password never appears (``masked_url``).
    """
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    code = getattr(exc, "code", None)
    if code in _LOGIN_REFUSED:
        return StoreUnreachable(_(
            "the ClickHouse server {url} refused the login of user {user}: the password is "
            "wrong or there is no such user. Check the backend_url setting "
            "(SALESKPI_BACKEND_URL).", url=masked_url(url),
            user=unquote(parts.username or "default")))
    if code == _UNKNOWN_DATABASE:
        database = unquote(parts.path.lstrip("/")) or "default"
        return StoreUnreachable(_(
            "the ClickHouse server {url} has no database {database}: create it (CREATE "
            "DATABASE {database}) or name another in the backend_url setting "
            "(SALESKPI_BACKEND_URL).", url=masked_url(url), database=database))
    if code is None and _is_network_error(exc):
        return StoreUnreachable(_(
            "cannot reach the ClickHouse server {url}: nothing answers at {address}. Check "
            "the backend_url setting (SALESKPI_BACKEND_URL) and that the server runs.",
            url=masked_url(url), address=f"{parts.hostname}:{parts.port or 8123}"))
    return StoreUnreachable(_(
        "cannot connect to the ClickHouse database {url}: {problem}. Check the "
        "backend_url setting (SALESKPI_BACKEND_URL) and that the server runs.",
        url=masked_url(url), problem=type(exc).__name__))


def _is_network_error(exc: BaseException) -> bool:
    """The server did not answer at all (refused, unknown host, timed out)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) or type(seen).__name__ in (
                "MaxRetryError", "NewConnectionError", "ConnectTimeoutError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def versions_ddl(entity: Entity) -> str:
    """Every version of an entity's records; the latest per (datasource, key) wins."""
    columns = [f'"{c.name}" {CLICKHOUSE_TYPES[c.type]}' for c in entity.columns]
    columns += ['"datasource" String', '"custom" Nullable(String)', '"_version" UInt64',
                '"_deleted" UInt8']
    key = ", ".join(f'"{k}"' for k in ("datasource", *entity.key))
    return (f'CREATE TABLE IF NOT EXISTS "{entity.name}{VERSIONS}" ({", ".join(columns)}) '
            f"ENGINE = ReplacingMergeTree(_version, _deleted) ORDER BY ({key}) "
            "SETTINGS allow_nullable_key = 1")


def current_view_ddl(entity: Entity) -> str:
    """What every query reads: the latest version of each record, unless deleted."""
    columns = ", ".join(f'"{c}"' for c in (*entity.column_names, "datasource", "custom"))
    return (f'CREATE VIEW IF NOT EXISTS "{entity.name}" AS SELECT {columns} '
            f'FROM "{entity.name}{VERSIONS}" FINAL WHERE _deleted = 0')


def first_contacts_ddl(key: str, view: str) -> str:
    types = ", ".join(f"'{t}'" for t in CONTACT_TYPES)
    return (f'CREATE VIEW IF NOT EXISTS {view} AS SELECT datasource, assumeNotNull("{key}") '
            f'AS "{key}", assumeNotNull(min(occurred_at)) AS first_contact_at FROM activities '
            f'WHERE "{key}" IS NOT NULL AND "type" IN ({types}) '
            f"AND (direction IS NULL OR direction <> 'in') AND occurred_at IS NOT NULL "
            f'GROUP BY datasource, "{key}"')


class _UnboundTables:
    """Ibis tables by name for compiling only: the engine compiles and runs SQL itself."""

    def __init__(self, store: ClickHouseStore) -> None:
        from saleskpi.engine.clickhouse_sql import clickhouse_compiler

        self._store = store
        self.compiler = clickhouse_compiler()

    def table(self, name: str) -> Any:
        import ibis
        from ibis.backends.sql.datatypes import ClickHouseType

        columns = self._store.fetch(f'DESCRIBE TABLE "{name}"')
        # ``custom`` is JSON text here (as the other stores' JSON columns): custom
        # slices read fields of it.
        return ibis.table({str(c[0]): "json" if c[0] == "custom"
                           else ClickHouseType.from_string(str(c[1])) for c in columns},
                          name=name)


class ClickHouseStore(FactStore):
    """The facts in ClickHouse; timestamps are UTC (``DateTime64(6)``, session in UTC)."""

    def __init__(self, url: str, path: Path, *, read_only: bool = False,
                 wait: float | None = None, queue_wait: float = QUEUE_WAIT_SECONDS,
                 waiting: Waiting | None = None) -> None:
        """``path``: the workspace's analytics.duckdb, beside which the journal lives.

        ClickHouse itself has no writer lock, so a writer passes the workspace's writer
        gate (``store/writer_gate.py``, as on DuckDB): it queues behind the writers of
        every process using this workspace up to ``queue_wait`` seconds (the
        ``write_wait_seconds`` setting; ``wait`` when given), ``waiting`` hearing that
        it waits and for whom. Readers pass no gate and never wait.
        """
        self.url = url
        self.path = path
        self.dialect = CLICKHOUSE
        self._ibis: _UnboundTables | None = None
        self._gate = contextlib.ExitStack()
        if not read_only:
            self._gate.enter_context(one_writer(
                path, wait=queue_wait if wait is None else wait, waiting=waiting))
        try:
            session = open_session(url, connect_seconds=CONNECT_SECONDS)
        except ImportError:
            self._gate.close()
            raise
        except Exception as exc:
            self._gate.close()
            raise connect_error(url, exc) from None
        self.con = ChConnection(session)
        try:
            if not self._is_current():
                self._upgrade()
            if not read_only:
                self._settle_journal()
        except BaseException:
            self.close()
            raise

    # -- the schema ----------------------------------------------------------------------
    def _is_current(self) -> bool:
        if not self.fetch("EXISTS TABLE saleskpi_meta")[0][0]:
            return False
        rows = self.fetch("SELECT value FROM saleskpi_meta FINAL WHERE key = 'schema_version'")
        return bool(rows) and int(rows[0][0]) >= SCHEMA_VERSION

    def _upgrade(self) -> None:
        """Create what is missing (every statement is IF NOT EXISTS: safe to repeat)."""
        con = self.con
        for entity in ENTITIES.values():
            con.execute(versions_ddl(entity))
            con.execute(current_view_ddl(entity))
        for key, view in FIRST_CONTACT_TABLES.items():
            con.execute(first_contacts_ddl(key, view))
        for statement in [*REP_PEOPLE_DDL, MARKER_DDL, META_DDL]:
            con.execute(statement)
        if not self.fetch("SELECT 1 FROM saleskpi_meta FINAL WHERE key = ?", [DATA_VERSION_KEY]):
            con.execute("INSERT INTO saleskpi_meta VALUES (?, '0', 0)", [DATA_VERSION_KEY])
        con.execute("INSERT INTO saleskpi_meta VALUES ('schema_version', ?, ?)",
                    [str(SCHEMA_VERSION), SCHEMA_VERSION])

    def _settle_journal(self) -> None:
        from saleskpi.store.commit_markers import has_markers
        from saleskpi.store.journal import recover

        if has_markers(self.con):
            recover(self.con, self.path, writable=True)

    # -- reading ---------------------------------------------------------------------------
    @property
    def ibis(self) -> Any:
        if self._ibis is None:
            self._ibis = _UnboundTables(self)
        return self._ibis

    def data_version(self) -> tuple[int, ...]:
        rows = self.fetch("SELECT value FROM saleskpi_meta FINAL WHERE key = ?",
                          [DATA_VERSION_KEY])
        return (int(rows[0][0]) if rows else 0,)

    @contextlib.contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """ClickHouse stops each query of the block after ``seconds`` (0: never)."""
        if seconds <= 0:
            yield
            return
        self.con.execute(f"SET max_execution_time = {float(seconds)!r}")
        try:
            yield
        except Exception as exc:
            if "TIMEOUT_EXCEEDED" in str(exc) or "Code: 159" in str(exc):
                raise QueryTimeout.after(seconds) from exc
            raise
        finally:
            self.con.execute("SET max_execution_time = 0")

    # -- writing ---------------------------------------------------------------------------
    def stage_frame(self, table: str, entity: Entity, frame: pd.DataFrame, source: str) -> None:
        """``frame`` (typed by the validator) as the temporary table ``table``."""
        columns = [f'"{c.name}" {CLICKHOUSE_TYPES[c.type]}' for c in entity.columns]
        columns += ['"datasource" Nullable(String)', '"custom" Nullable(String)',
                    '"_row" Nullable(Int64)', '"_file" Nullable(String)']
        self.con.execute(f'DROP TEMPORARY TABLE IF EXISTS "{table}"')
        self.con.execute(f'CREATE TEMPORARY TABLE "{table}" ({", ".join(columns)}) '
                         "ENGINE = Memory")
        if len(frame):
            self.con.session.insert_arrow(f'"{table}"', _arrow(entity, frame, source))

    def append_versions(self, entity: Entity, relation: str, *, deleted: bool = False) -> None:
        """Append the rows of ``relation`` as the newest versions of their records."""
        cols = ", ".join(f'"{c}"' for c in (*entity.column_names, "datasource", "custom"))
        self.con.execute(
            f'INSERT INTO "{entity.name}{VERSIONS}" ({cols}, _version, _deleted) '
            f"SELECT {cols}, ?, ? FROM {relation}", [self.con.record_version(), int(deleted)])

    def delete_ids(self, source: str, ids: dict[str, list[str]], *,
                   in_transaction: bool = False) -> dict[str, int]:
        """Mark records of ``source`` deleted: a version with ``_deleted = 1`` per record."""
        deleted: dict[str, int] = {}
        with contextlib.nullcontext(self.con) if in_transaction else self.transaction():
            for name, chosen_ids in ids.items():
                entity = ENTITIES[name]
                chosen = (f'(SELECT * FROM "{name}" WHERE datasource = ? '
                          f'AND "{entity.key[0]}" IN (SELECT arrayJoin(?)))')
                rows = self.fetch(f"SELECT count() FROM {chosen}", [source, list(chosen_ids)])
                deleted[name] = int(rows[0][0]) if rows else 0
                if deleted[name]:
                    cols = ", ".join(f'"{c}"' for c in (*entity.column_names, "datasource",
                                                        "custom"))
                    self.con.execute(
                        f'INSERT INTO "{name}{VERSIONS}" ({cols}, _version, _deleted) '
                        f"SELECT {cols}, ?, 1 FROM {chosen}",
                        [self.con.record_version(), source, list(chosen_ids)])
        return deleted

    def forget_source(self, source: str) -> None:
        """Every fact of ``source`` goes (first contacts are views: they follow)."""
        for name in ENTITIES:
            self.con.execute(f'DELETE FROM "{name}{VERSIONS}" WHERE datasource = ?', [source])

    def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.con.close()
        finally:
            self._gate.close()  # the next writer's turn


_ARROW_TYPES = {
    ColumnType.TEXT: "string", ColumnType.TIMESTAMP: "timestamp", ColumnType.DATE: "date",
    ColumnType.MONEY: "money", ColumnType.NUMBER: "float", ColumnType.INTEGER: "int",
    ColumnType.BOOLEAN: "bool",
}


def _arrow(entity: Entity, frame: pd.DataFrame, source: str) -> pa.Table:
    """The staged rows as an Arrow table of exactly the staging table's types."""
    import decimal

    import pyarrow as pa

    kinds = {"string": pa.string(), "timestamp": pa.timestamp("us"), "date": pa.date32(),
             "money": pa.decimal128(18, 2), "float": pa.float64(), "int": pa.int64(),
             "bool": pa.bool_()}
    arrays: dict[str, pa.Array] = {}
    for column in entity.columns:
        kind = _ARROW_TYPES[column.type]
        values = [plain_value(v) for v in frame[column.name]]
        if kind == "money":
            values = [None if v is None else decimal.Decimal(str(v)).quantize(
                decimal.Decimal("0.01")) for v in values]
        elif kind == "string":
            values = [None if v is None else str(v) for v in values]
        arrays[column.name] = pa.array(values, type=kinds[kind])

    def texts(name: str) -> pa.Array:
        return pa.array([None if v is None else str(v) for v in map(plain_value, frame[name])],
                        type=pa.string())

    arrays["datasource"] = pa.array([source] * len(frame), type=pa.string())
    arrays["custom"] = texts("custom")
    arrays["_row"] = pa.array([plain_value(v) for v in frame["_row"]], type=pa.int64())
    arrays["_file"] = texts("_file")
    return pa.table(arrays)
