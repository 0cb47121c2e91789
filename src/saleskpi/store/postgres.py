"""The analytical store on PostgreSQL: the same tables as DuckDB's, in a database of the company's.

``settings.backend: postgres`` and ``backend_url`` (``SALESKPI_BACKEND_URL``) point
saleskpi at a PostgreSQL database (15 or newer: keys use ``NULLS NOT DISTINCT``).
The first open creates a table per canonical entity in the connection's current
schema, each unique on (datasource, key), so an import upserts
(``INSERT ... ON CONFLICT``, ``store/loader.py``). Targets, users and the import
log stay in the workspace's SQLite file, and every write that touches both goes
through the same write journal as on DuckDB (``store/journal.py``).

One writer at a time, as DuckDB's file lock gives: a writer holds a PostgreSQL
advisory lock while it is open, and names itself in its session's
``application_name`` (process, host, since when). Others queue up to the
``write_wait_seconds`` setting, hearing every few seconds whom they wait for (the
holder's ``application_name``, read from ``pg_locks``), then ``StoreBusy``; being
the database's own lock, it holds across machines and workspaces that share the
database. Readers take no lock and never wait for a writer (PostgreSQL shows
them the last committed data). Only a holder of the lock settles the journal, so
no reader judges the entry of a write still running in another process.

The URL is a secret: errors name the database with its password masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from saleskpi.domain.backends import masked_url, without_secret
from saleskpi.domain.errors import Busy, InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.schema import ENTITIES, FIRST_CONTACT_TABLES, Entity
from saleskpi.store.commit_markers import MARKER_DDL, MARKER_TABLE, has_markers
from saleskpi.store.dialects import POSTGRES, POSTGRES_TYPES
from saleskpi.store.facts import FactStore, plain_value
from saleskpi.store.first_contacts import POSTGRES_FIRST_CONTACTS_DDL, rebuild_first_contacts
from saleskpi.store.pg_connection import DATA_VERSION_KEY, PgConnection
from saleskpi.store.query_timer import interrupted_after
from saleskpi.store.rep_people import rep_people_ddl
from saleskpi.store.writer_gate import Waiting, wait_turn

if TYPE_CHECKING:
    import pandas as pd

# The same schema version as the DuckDB store's (store/analytics.py).
SCHEMA_VERSION = 2
CURRENT_OBJECTS = frozenset({"reps", "rep_people", "saleskpi_meta",
                             *FIRST_CONTACT_TABLES.values()})
META_DDL = """CREATE TABLE IF NOT EXISTS saleskpi_meta (
    key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"""
# Held by the one writer (an arbitrary constant: saleskpi's key among the database's
# advisory locks).
WRITER_LOCK = 0x5A1E5_4B1
READ_WAIT_SECONDS = 2.0
# The default wait of a writer opened without the settings (open_store passes
# write_wait_seconds).
WRITE_WAIT_SECONDS = 30.0
# PostgreSQL keeps 63 bytes of an application_name.
APPLICATION_NAME_BYTES = 63
CONNECT_SECONDS = 10

class StoreUnreachable(Busy):
    """The PostgreSQL database cannot be reached or refused the connection."""

    default_code = "store_unreachable"


class BackendSetupError(InvalidQuery):
    """The PostgreSQL database cannot hold saleskpi's data as it is set up."""

    default_code = "bad_backend"


def table_ddl(entity: Entity) -> str:
    """An entity's table: its columns, the source and custom JSON; one row per key."""
    columns = [f'"{c.name}" {POSTGRES_TYPES[c.type]}' for c in entity.columns]
    columns += ['"datasource" VARCHAR NOT NULL', '"custom" JSONB']
    key = ", ".join(f'"{k}"' for k in ("datasource", *entity.key))
    # NULLS NOT DISTINCT: some keys have empty parts (a company-wide target's rep).
    columns.append(f"CONSTRAINT \"{entity.name}_key\" UNIQUE NULLS NOT DISTINCT ({key})")
    return f'CREATE TABLE IF NOT EXISTS "{entity.name}" ({", ".join(columns)})'


def connect(url: str) -> psycopg.Connection[Any]:
    """A session on ``url`` in UTC; a failure says which database (password masked)."""
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_SECONDS)
    except psycopg.Error as exc:
        raise StoreUnreachable(_(
            "cannot connect to the PostgreSQL database {url}: {problem}. Check the "
            "backend_url setting (SALESKPI_BACKEND_URL) and that the server runs.",
            url=masked_url(url), problem=without_secret(str(exc).strip(), url))) from None
    # Sessions are UTC so that TIMESTAMP -> TIMESTAMPTZ casts are identity.
    raw.execute("SET TimeZone = 'UTC'")
    return raw


class PostgresStore(FactStore):
    """The facts in a PostgreSQL database; timestamps are UTC (``timestamp`` columns)."""

    def __init__(self, url: str, path: Path, *, read_only: bool = False,
                 wait: float | None = None, queue_wait: float = WRITE_WAIT_SECONDS,
                 waiting: Waiting | None = None) -> None:
        """``path``: the workspace's analytics.duckdb, beside which the journal lives.

        A writer queues behind another writer up to ``queue_wait`` seconds (the
        ``write_wait_seconds`` setting; ``wait`` when given), then ``StoreBusy``;
        ``waiting`` hears every few seconds that it waits and for whom.
        """
        self.url = url
        self.path = path
        self.dialect = POSTGRES
        self._ibis: Any = None
        self.con = PgConnection(connect(url))
        self._writer = False
        try:
            if not read_only:
                self._lock(queue_wait if wait is None else wait, waiting)
            present = self._schema_objects()
            if not self._is_current(present):
                with self._writing(wait):
                    if not self._is_current(self._schema_objects()):
                        self._upgrade()
                present = self._schema_objects()
            self._settle_journal(present)
        except BaseException:
            self.close()
            raise

    # -- one writer ----------------------------------------------------------------------
    def _lock(self, wait: float, waiting: Waiting | None = None) -> None:
        wait_turn(lambda: bool(self.fetch("SELECT pg_try_advisory_lock(?)",
                                          [WRITER_LOCK])[0][0]),
                  wait=wait, waiting=waiting, who=self._holder, place=masked_url(self.url))
        self._writer = True
        since = dt.datetime.now().astimezone().strftime("%H:%M:%S")
        name = f"saleskpi, process {os.getpid()} on {socket.gethostname()}, since {since}"
        self.fetch("SELECT set_config('application_name', ?, false)",
                   [name.encode()[:APPLICATION_NAME_BYTES].decode(errors="ignore")])

    def _holder(self) -> str:
        """Who holds the writer's lock: its session's application_name (``_lock``).

        An advisory lock on one bigint key is listed with the key's high and low 32
        bits as ``classid`` and ``objid``, and ``objsubid`` 1.
        """
        rows = self.fetch(
            "SELECT a.application_name, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            f"AND l.classid = {WRITER_LOCK >> 32} AND l.objid = {WRITER_LOCK & 0xFFFFFFFF} "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")
        if not rows:
            return ""
        name, pid = rows[0]
        return str(name) if name else _("PostgreSQL session {pid}", pid=pid)

    @contextlib.contextmanager
    def _writing(self, wait: float | None) -> Iterator[None]:
        """The writer's lock for the block (a reader takes it for a moment)."""
        if self._writer:
            yield
            return
        self._lock(WRITE_WAIT_SECONDS if wait is None else wait)
        try:
            yield
        finally:
            self.fetch("SELECT pg_advisory_unlock(?)", [WRITER_LOCK])
            self.fetch("SELECT set_config('application_name', '', false)")
            self._writer = False

    def _settle_journal(self, present: set[str]) -> None:
        """Finish or roll back writes a killed process left half done (store/journal.py).

        Only under the writer's lock: a reader that finds commit markers settles them
        only if no writer is at work (that writer settled them when it opened).
        """
        from saleskpi.store.journal import recover  # SQLAlchemy: only when needed

        if self._writer:
            recover(self.con, self.path, writable=True)
        elif MARKER_TABLE in present and has_markers(self.con) and self.fetch(
                "SELECT pg_try_advisory_lock(?)", [WRITER_LOCK])[0][0]:
            try:
                recover(self.con, self.path, writable=True)
            finally:
                self.fetch("SELECT pg_advisory_unlock(?)", [WRITER_LOCK])

    # -- the schema ----------------------------------------------------------------------
    def _schema_objects(self) -> set[str]:
        names = [*CURRENT_OBJECTS, MARKER_TABLE]
        return {str(name) for (name,) in self.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = "
            "current_database() AND table_schema = current_schema() "
            "AND table_name = ANY(CAST(? AS VARCHAR[]))", [names])}

    def _is_current(self, present: set[str]) -> bool:
        if not CURRENT_OBJECTS.issubset(present):
            return False
        rows = self.fetch("SELECT value FROM saleskpi_meta WHERE key = 'schema_version'")
        return bool(rows) and int(rows[0][0]) >= SCHEMA_VERSION

    def _upgrade(self) -> None:
        """Create what is missing and fill the derived tables, in one transaction."""
        self._check_character_type()
        with self.transaction() as con:
            for entity in ENTITIES.values():
                con.execute(table_ddl(entity))
            for statement in [*rep_people_ddl(POSTGRES), *POSTGRES_FIRST_CONTACTS_DDL,
                              MARKER_DDL, META_DDL]:
                con.execute(statement)
            rebuild_first_contacts(con)
            con.execute("INSERT INTO saleskpi_meta VALUES ('schema_version', ?) ON CONFLICT "
                        "(key) DO UPDATE SET value = EXCLUDED.value", [str(SCHEMA_VERSION)])
            con.execute("INSERT INTO saleskpi_meta VALUES (?, '0') ON CONFLICT (key) "
                        "DO NOTHING", [DATA_VERSION_KEY])

    def _check_character_type(self) -> None:
        """Refuse a database whose lower() leaves Cyrillic as it is (LC_CTYPE C).

        Stage names (a won stage "Успешно реализовано") and e-mails are compared
        lower-cased, as DuckDB does for any script; a C database would silently miss
        them.
        """
        ((folded, ctype),) = self.fetch("SELECT lower('ЇЖ') = 'їж', current_setting('lc_ctype')")
        if not folded:
            raise BackendSetupError(_(
                "the PostgreSQL database {url} has the character type {ctype}, which does "
                "not lower-case letters beyond ASCII (Cyrillic stage names would not match). "
                "Create the database with a UTF-8 locale, e.g. CREATE DATABASE sales "
                "TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'",
                url=masked_url(self.url), ctype=ctype))

    # -- reading ---------------------------------------------------------------------------
    @property
    def ibis(self) -> Any:
        """Ibis on this session (it sees the session's temporary tables)."""
        if self._ibis is None:
            import ibis

            from saleskpi.engine.ibis_dialects import enter_package

            enter_package()  # before Ibis's backend: only PostgreSQL's compiler is imported
            self._ibis = ibis.postgres.from_connection(self.con.raw)
        return self._ibis

    def data_version(self) -> tuple[int, ...]:
        """Raised by every committed write (``store/pg_connection.py``)."""
        rows = self.fetch("SELECT value FROM saleskpi_meta WHERE key = ?", [DATA_VERSION_KEY])
        return (int(rows[0][0]) if rows else 0,)

    def time_limit(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """Cancel this session's queries once ``seconds`` have passed (0: never), as on
        DuckDB (``store/query_timer.py``); ``QueryTimeout`` then."""
        return interrupted_after(seconds, lambda: self.con.raw.cancel_safe(),
                                 driver_error=psycopg.Error,
                                 interrupted=psycopg.errors.QueryCanceled)

    # -- writing ---------------------------------------------------------------------------
    def stage_frame(self, table: str, entity: Entity, frame: pd.DataFrame, source: str) -> None:
        """``frame`` (typed by the validator) as the temporary table ``table``, by COPY."""
        columns = [f'"{c.name}" {POSTGRES_TYPES[c.type]}' for c in entity.columns]
        columns += ['"datasource" VARCHAR', '"custom" JSONB', '"_row" BIGINT', '"_file" VARCHAR']
        self.con.execute(f'DROP TABLE IF EXISTS "{table}"')
        self.con.execute(f'CREATE TEMP TABLE "{table}" ({", ".join(columns)})')
        names = [*entity.column_names, "custom", "_row", "_file"]
        quoted = ", ".join(f'"{n}"' for n in [*entity.column_names, "datasource", "custom",
                                               "_row", "_file"])
        with self.con.raw.cursor() as cursor, \
                cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
            for values in frame[names].itertuples(index=False, name=None):
                row = [plain_value(v) for v in values]
                copy.write_row([*row[:-3], source, *row[-3:]])

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.con.close()
