"""The analytical store: one DuckDB file with a table per canonical entity."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from saleskpi.domain.files import private_dir, private_file, with_companions
from saleskpi.domain.i18n import _
from saleskpi.domain.schema import ENTITIES, FIRST_CONTACT_TABLES, SQL_TYPES, Entity
from saleskpi.domain.tables import TypedTable
from saleskpi.store.commit_markers import MARKER_TABLE, has_markers
from saleskpi.store.dialects import DUCKDB
from saleskpi.store.facts import FactStore, StoreBusy
from saleskpi.store.first_contacts import FIRST_CONTACTS_DDL, rebuild_first_contacts
from saleskpi.store.query_timer import GaveWay, interrupted_after, interrupted_when
from saleskpi.store.rep_people import rep_people_ddl
from saleskpi.store.warm_reads import let_writers_in, opened_read_only
from saleskpi.store.writer_gate import Waiting, one_writer, written_elsewhere

if TYPE_CHECKING:
    import pandas as pd
    from ibis.backends.duckdb import Backend as IbisDuckDB


# The store's schema version, in saleskpi_meta: an older store is upgraded once, when
# opened (read-only opens included).
#   (no saleskpi_meta)  made before versions: entity tables and the rep_people view
#   2                   lead_first_contacts and deal_first_contacts, kept at write time
SCHEMA_VERSION = 2
META_DDL = """CREATE TABLE IF NOT EXISTS saleskpi_meta (
    key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"""
# An upgrade computes first contacts from every activity: 17-20 s for 32 million
# activities on a busy 2-core machine; other requests wait for it, not fail.
UPGRADE_WAIT_SECONDS = 300.0
# What a current store has; a store missing any of them is upgraded.
CURRENT_OBJECTS = frozenset({"reps", "rep_people", "saleskpi_meta",
                             *FIRST_CONTACT_TABLES.values()})
# How long an open waits for another holder of the file before it gives up with
# StoreBusy (issue 16, item 7). A reader (a page, ``saleskpi kpi``) waits briefly:
# the server's reads hold the file for a moment only, and a page would rather say
# "busy, try again" than hang behind an import. A writer (an import) waits for the
# readers in front of it to finish.
READ_WAIT_SECONDS = 2.0
WRITE_WAIT_SECONDS = 30.0
# A reader waits longer when the holder is a writer of another process that passed
# the writer gate (an import or sync that is writing, hence will end): the question
# is answered late rather than refused (issue 12, item 5). Kept answers do not wait
# (``SalesKpiService`` gives them at once while another process writes).
READ_BEHIND_WRITE_SECONDS = 60.0
# How long a writer queues behind another writer (store/writer_gate.py) unless told
# otherwise (the write_wait_seconds setting): an import of millions takes minutes.
QUEUE_WAIT_SECONDS = 600.0


# Writers of this process, by file: those with the file open read-write and those
# waiting to. DuckDB refuses a read-only connection next to a read-write one in the
# same process, so the server's readers join a writer (read-write) while there is
# one, and read read-only otherwise: then the CLI can read next to an idle server.
_writers: dict[str, int] = {}
_writers_lock = threading.Lock()


def _count_writer(path: Path, step: int) -> None:
    key = str(path.resolve())
    with _writers_lock:
        left = _writers.get(key, 0) + step
        if left > 0:
            _writers[key] = left
        else:
            _writers.pop(key, None)


def _has_writer(path: Path) -> bool:
    with _writers_lock:
        return _writers.get(str(path.resolve()), 0) > 0


def _held_elsewhere(exc: duckdb.Error) -> bool:
    """Whether opening failed because another connection holds the file.

    Another process: DuckDB's file lock ("Could not set lock"). This process: a
    connection opened read-only next to one opened read-write, or the other way
    round ("different configuration").
    """
    text = str(exc).lower()
    return (isinstance(exc, duckdb.IOException) and "lock" in text) or (
        isinstance(exc, duckdb.ConnectionException) and "different configuration" in text)


def _connect(path: Path, *, read_only: bool, wait: float | None) -> duckdb.DuckDBPyConnection:
    """A connection to ``path``, retried with back-off while another holder has the file."""
    patient = wait is None and read_only
    if wait is None:
        wait = READ_WAIT_SECONDS if read_only else WRITE_WAIT_SECONDS
    started = time.monotonic()
    deadline = started + wait
    pause = 0.02
    while True:
        if not read_only:
            let_writers_in(path)  # the keep-alives of this process's pages: at once
        if patient and written_elsewhere(path):
            let_writers_in(path)
            # A writer of another process holds the gate: it writes, or waits for the
            # readers that have the file open. A reader arriving now waits behind it
            # rather than open the file too: pages asked one after another would
            # otherwise never leave it a moment free, and the import gave up.
            deadline = max(deadline, started + READ_BEHIND_WRITE_SECONDS)
            if time.monotonic() + pause > deadline:
                raise _busy(path) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.25)
            continue
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _held_elsewhere(exc):
                raise
            if patient and written_elsewhere(path):
                deadline = max(deadline, started + READ_BEHIND_WRITE_SECONDS)
            if time.monotonic() + pause > deadline:
                raise _busy(path) from None
        else:
            # DuckDB draws a progress bar on the terminal during long queries; it would
            # break a command's table or CSV (and the server's log).
            con.execute("SET enable_progress_bar = false")
            if read_only:
                opened_read_only(path, writer_here=_has_writer(path))
            return con
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def _busy(path: Path) -> StoreBusy:
    return StoreBusy(_("{path} is in use by another saleskpi process (the server, or an "
                       "import). Import through the dashboard or the API while the server "
                       "runs, or stop it first.", path=path))


def table_ddl(entity: Entity) -> str:
    columns = [f'"{c.name}" {SQL_TYPES[c.type]}' for c in entity.columns]
    columns += ['"datasource" VARCHAR NOT NULL', '"custom" JSON']
    return f'CREATE TABLE IF NOT EXISTS "{entity.name}" ({", ".join(columns)})'


def file_version(path: Path) -> tuple[int, ...]:
    """The modification times of a DuckDB file and its write-ahead log (0: none)."""
    return tuple(found[0] for found in _stamps(path))


def file_key(path: Path) -> str:
    """A DuckDB file's data version as a file name: its and its write-ahead log's
    modification times and sizes (``file_version``; the sizes guard against a clock
    that ticks coarsely)."""
    return "_".join(f"{modified}-{size}" for modified, size in _stamps(path))


def _stamps(path: Path) -> list[tuple[int, int]]:
    """(modification time, size) of a DuckDB file and of its write-ahead log; 0s: none."""
    found: list[tuple[int, int]] = []
    for file in (path, path.with_name(path.name + ".wal")):
        # One stat, not "exists, then stat": the write-ahead log vanishes whenever a
        # writer of another process checkpoints, and a page that asked in between
        # failed (a 500).
        try:
            stat = file.stat()
        except FileNotFoundError:
            found.append((0, 0))
        else:
            found.append((stat.st_mtime_ns, stat.st_size))
    return found


class AnalyticsStore(FactStore):
    """A DuckDB file holding the facts; timestamps are UTC.

    DuckDB allows one read-write process per file, so a store is opened for the
    length of one command and closed after it.
    """

    def __init__(self, path: Path, *, read_only: bool = False,
                 wait: float | None = None, join_writer: bool = False,
                 queue_wait: float = QUEUE_WAIT_SECONDS, waiting: Waiting | None = None) -> None:
        """``wait``: seconds to retry while another connection holds the file, then
        ``StoreBusy`` (default: READ_WAIT_SECONDS to read, WRITE_WAIT_SECONDS to write).

        A writer first queues behind the other writers of the store, of this process and
        of others (``store/writer_gate.py``), up to ``queue_wait`` seconds (``wait`` when
        given); ``waiting`` hears every few seconds that it waits and for whom.

        ``join_writer``: a read in a process that also writes (the server): read-only,
        unless a writer of this process has the file (or waits for it): then
        read-write beside it, as DuckDB allows no mix within a process.
        """
        self.path = path
        self.dialect = DUCKDB
        self._writer = False
        self._gate = contextlib.ExitStack()
        private_dir(path.parent)
        if read_only and not path.exists():
            read_only = False  # nothing imported yet: create an empty store
        if not read_only:
            _count_writer(path, 1)  # readers that join a writer are not counted
            self._writer = True
        elif join_writer and _has_writer(path):
            read_only = False
        # Whether this open makes the file (known behind the writer gate): ``discard``.
        self.created = False
        try:
            if self._writer:
                # An explicit ``wait`` bounds the whole open, the queue included.
                self._gate.enter_context(one_writer(
                    path, wait=queue_wait if wait is None else wait, waiting=waiting))
                self.created = not path.exists()
            self.con = _connect(path, read_only=read_only, wait=wait)
        except BaseException:
            self._release()
            raise
        if not read_only:
            private_file(path)
        # Sessions are UTC so that TIMESTAMP -> TIMESTAMPTZ casts are identity.
        self.con.execute("SET TimeZone = 'UTC'")
        present = self._schema_objects()
        if read_only and "reps" not in present:
            self.close()
            raise StoreBusy(_("{path} holds no saleskpi data yet: run 'saleskpi import' or "
                              "'saleskpi demo' first.", path=path))
        if not self._is_current(present):
            if read_only:
                # A workspace made by an older saleskpi: upgrade it once read-write,
                # then read as asked.
                self.con.close()
                AnalyticsStore(path).close()
                self.con = _connect(path, read_only=True, wait=wait)
                self.con.execute("SET TimeZone = 'UTC'")
            else:
                self._upgrade()
        self._settle_journal(present, writable=not read_only)
        self._ibis: IbisDuckDB | None = None

    def _settle_journal(self, present: set[str], *, writable: bool) -> None:
        """Finish or roll back the writes a killed process left half done (store/journal.py).

        A writer checks the journal on every open; a reader only when DuckDB holds the
        commit marker of a write that SQLite may not have completed (so reads never
        see new facts beside old targets, and cost nothing otherwise).
        """
        if self._writer or (MARKER_TABLE in present and has_markers(self.con)):
            from saleskpi.store.journal import recover  # SQLAlchemy: only when needed

            recover(self.con, self.path, writable=writable)

    def _schema_objects(self) -> set[str]:
        """The tables and views this store has of those the schema version needs."""
        names = ", ".join(f"'{n}'" for n in (*CURRENT_OBJECTS, MARKER_TABLE))
        # DuckDB's own catalogue functions, not information_schema: 2.5 ms against 6-9
        # ms on every open (a tenth of a store's open; issue 12).
        return {name for (name,) in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            f"AND schema_name = 'main' AND table_name IN ({names}) "
            "UNION ALL SELECT view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            f"AND view_name IN ({names})").fetchall()}

    def _is_current(self, present: set[str]) -> bool:
        """Whether the store has this version's schema: then nothing is written on open.

        A store whose meta says current but that misses a table or view (dropped by
        hand) is upgraded again, which rebuilds what is missing.
        """
        if not CURRENT_OBJECTS.issubset(present):
            return False
        rows = self.con.execute(
            "SELECT value FROM saleskpi_meta WHERE key = 'schema_version'").fetchall()
        # A newer saleskpi's store counts as current: never downgraded.
        return bool(rows) and int(rows[0][0]) >= SCHEMA_VERSION

    def _upgrade(self) -> None:
        """Create what is missing and fill derived tables, in one transaction.

        Only on a new store or one made by an older saleskpi: DDL on every open
        rewrote the file (so caches keyed by its modification time never hit) and
        made concurrent opens conflict.
        """
        try:
            with self.transaction() as con:
                for entity in ENTITIES.values():
                    con.execute(table_ddl(entity))
                for statement in [*rep_people_ddl(DUCKDB), *FIRST_CONTACTS_DDL]:
                    con.execute(statement)
                # Before version 2 nothing kept first contacts: compute them from all
                # activities, once (seconds on tens of millions of activities).
                rebuild_first_contacts(con)
                con.execute(META_DDL)
                con.execute("INSERT OR REPLACE INTO saleskpi_meta VALUES ('schema_version', ?)",
                            [str(SCHEMA_VERSION)])
        except duckdb.TransactionException:
            # Another connection of this process (the server's requests) is upgrading
            # it at the same time: wait for that upgrade rather than fail the request.
            deadline = time.monotonic() + UPGRADE_WAIT_SECONDS
            while not self._is_current(self._schema_objects()):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def ibis(self) -> IbisDuckDB:
        """Ibis on this connection, made (and Ibis imported) only when a query is compiled."""
        if self._ibis is None:
            from saleskpi.store.ibis_duckdb import ibis_on

            self._ibis = ibis_on(self.con)
        return self._ibis

    def stage_frame(self, table: str, entity: Entity, frame: pd.DataFrame, source: str) -> None:
        """``frame`` (typed by the validator) as the temporary table ``table``."""
        casts = ", ".join(
            f'CAST("{c.name}" AS {SQL_TYPES[c.type]}) AS "{c.name}"' for c in entity.columns
        )
        self.con.register("_incoming", frame)
        try:
            self.con.execute(
                f'CREATE OR REPLACE TEMP TABLE "{table}" AS '
                f"SELECT {casts}, CAST($source AS VARCHAR) AS datasource, "
                f'CAST(custom AS JSON) AS custom, CAST(_row AS BIGINT) AS _row, _file '
                f"FROM _incoming",
                {"source": source},
            )
        finally:
            self.con.unregister("_incoming")

    def stage_rows(self, table: str, typed: TypedTable, source: str) -> None:
        """Rows of the fast path of an import: its table in this connection, or its Arrow
        stream, straight into DuckDB."""
        if typed.rows is None:
            super().stage_rows(table, typed, source)
            return
        if typed.relation is not None:
            # Already typed and laid out as staged, in this connection: the table becomes
            # the staging table, renamed rather than copied (a copy of 2M activities is
            # ~0.8 s of CPU).
            self.con.execute(f'DROP TABLE IF EXISTS "{table}"')
            self.con.execute(f'ALTER TABLE {typed.relation} RENAME TO "{table}"')
            return
        entity = ENTITIES[typed.entity]
        casts = ", ".join(
            f'CAST("{c.name}" AS {SQL_TYPES[c.type]}) AS "{c.name}"' for c in entity.columns
        )
        self.con.register("_incoming", typed.rows())
        try:
            self.con.execute(
                f'CREATE OR REPLACE TEMP TABLE "{table}" AS '
                f"SELECT {casts}, CAST($source AS VARCHAR) AS datasource, "
                f"CAST(custom AS JSON) AS custom, CAST(_row AS BIGINT) AS _row, "
                f"CAST($file AS VARCHAR) AS _file FROM _incoming",
                {"source": source, "file": typed.name},
            )
        finally:
            self.con.unregister("_incoming")

    def drop_left_staging(self) -> None:
        """Drop the staging tables of the store itself (``adopt_staged``) that an import
        killed before its end left behind: they would hold a whole file's rows."""
        names = [f"stage_{name}" for name in ENTITIES]
        left = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
            "AND database_name = current_database() AND schema_name = 'main' "
            "AND (table_name IN (SELECT unnest($names)) "
            "OR regexp_full_match(table_name, 'typed_raw_[0-9]+'))", {"names": names}).fetchall()
        for (name,) in left:
            self.con.execute(f'DROP TABLE main."{name}"')

    def empty_tables(self) -> frozenset[str]:
        """The entities whose stored table holds no row (of any source)."""
        found = self.con.execute(" UNION ALL ".join(
            f"SELECT '{name}' WHERE NOT EXISTS (SELECT 1 FROM \"{name}\")" for name in ENTITIES
        )).fetchall()
        return frozenset(str(row[0]) for row in found)

    def adopt_staged(self, table: str, entity: Entity) -> bool:
        """Make the staging table ``table`` the entity's stored table, if it is a table of
        the store (``FastImport``'s ``straight``) and the stored one holds no row: renamed,
        not copied. In the caller's transaction; False: nothing done, copy the rows."""
        staged = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE NOT temporary AND table_name = ?",
            [table]).fetchone()
        if not staged or not staged[0] or self.con.execute(
                f'SELECT EXISTS (SELECT 1 FROM "{entity.name}")').fetchone() != (False,):
            return False
        self.con.execute(f'DROP TABLE "{entity.name}"')
        self.con.execute(f'ALTER TABLE "{table}" RENAME TO "{entity.name}"')
        for column in ("_row", "_file"):
            self.con.execute(f'ALTER TABLE "{entity.name}" DROP COLUMN {column}')
        self.con.execute(f'ALTER TABLE "{entity.name}" ALTER datasource SET NOT NULL')
        return True

    def data_version(self) -> tuple[int, ...]:
        """The file's and its write-ahead log's modification times.

        Opening the store writes nothing (schema changes happen once, when a store
        is created or upgraded), so only imports, syncs and link edits change it.
        """
        return file_version(self.path)

    def time_limit(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """Stop this connection's queries once ``seconds`` have passed (0: never), by
        DuckDB's ``interrupt`` (``store/query_timer.py``); ``QueryTimeout`` then."""
        return interrupted_after(seconds, lambda: self.con.interrupt(), driver_error=duckdb.Error,
                                 interrupted=duckdb.InterruptException)

    def giving_way(self) -> contextlib.AbstractContextManager[GaveWay]:
        """Stop the block's queries once a writer of another process holds the store's
        gate: it waits for this connection to close the file (``FactStore.giving_way``)."""
        return interrupted_when(lambda: written_elsewhere(self.path), self.con.interrupt,
                                interrupted=duckdb.InterruptException)

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self._release()

    def discard(self) -> None:
        """Close a store this writer created and delete its file: an import refused (or
        only tried) in a new workspace leaves no empty store behind. The file goes
        before the writer gate is let go, so no other writer can have written to it."""
        assert self._writer and self.created, "only the writer that made a store discards it"
        try:
            self.con.close()
            for companion in with_companions(self.path):
                companion.unlink(missing_ok=True)
        finally:
            self._release()

    def _release(self) -> None:
        if self._writer:
            self._writer = False
            try:
                self._gate.close()
            finally:
                _count_writer(self.path, -1)


