"""One transaction story across the two stores: the write journal.

Facts live in DuckDB (``analytics.duckdb``); targets, the import log, sync cursors
and what a full sync has seen live in SQLite (``state.sqlite``). No transaction
spans both files, so every write that touches both goes through ``journaled``:

1. SQLite: a ``pending`` journal entry with an id and everything the SQLite side
   will write (``StateChanges``) is committed first.
2. DuckDB: the facts are written in one transaction, together with a commit
   marker (a row of ``saleskpi_writes`` holding the entry's id).
3. SQLite: the entry becomes ``completed`` and its changes are made, in one
   transaction that is flushed (a database error still undoes both) and then
   committed *after* DuckDB's commit.
4. DuckDB: the marker is deleted.

So whether a write happened is decided by one commit, DuckDB's: its marker is
there if and only if its facts are. A process killed at any step leaves a pending
entry, and the next open of the store (``recover``, run by ``AnalyticsStore``)
settles it: with a marker the SQLite side is made from the entry (roll forward);
without one nothing of the write exists anywhere, and the entry is marked
``rolled_back`` (an import also gets an "interrupted" import-log entry). Each
settlement claims the entry (pending → done) in the transaction that makes its
changes, so it happens once, whoever gets there first.

Recovery only judges entries no live writer owns: the writer of another process
holds DuckDB's file lock from before its entry is written until after its marker
is cleared, so while the recovering process holds the file no such writer exists;
writers of this process are known by id (``_live``).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from saleskpi.domain.faults import fault_point
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.targets import now_utc
from saleskpi.store.commit_markers import MARKER_TABLE, ensure_markers, marker_ids
from saleskpi.store.state.journal import (
    COMPLETED,
    ROLLED_BACK,
    JournalEntry,
    add_entry,
    claim,
    forget_settled,
    pending_entries,
    utc_now,
)

STATE_FILE = "state.sqlite"  # as Settings.state_url, beside analytics.duckdb

# Journal entries whose writer runs in this process (recovery leaves them alone).
_live: set[str] = set()
_live_lock = threading.Lock()


def database_errors() -> tuple[type[BaseException], ...]:
    """DuckDB's errors, and PostgreSQL's once a PostgreSQL store is in use."""
    psycopg = sys.modules.get("psycopg")
    return (duckdb.Error,) if psycopg is None else (duckdb.Error, psycopg.Error)


def state_path_beside(analytics_path: Path) -> Path:
    return analytics_path.parent / STATE_FILE


def _engine(analytics_path: Path) -> Engine:
    from saleskpi.store.state import engine_for  # Alembic is slow to import: only here

    return engine_for(f"sqlite:///{state_path_beside(analytics_path)}")


@dataclass
class StateChanges:
    """What the SQLite side of one write makes; JSON, so a later process can make it."""

    targets_source: str | None = None
    targets: list[dict[str, Any]] | None = None  # None: targets untouched
    log: dict[str, Any] | None = None  # an import-log entry: origin, source, ok, report
    crm: str | None = None
    cursor: dict[str, str] | None = None  # the sync cursor to save
    seen: dict[str, list[str]] | None = None  # ids a full sync has now seen
    end_full: bool = False  # the full sync is complete

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StateChanges:
        return cls(**data)

    def as_json(self) -> dict[str, Any]:
        """The fields, each list or dict copied one level deep (what a body changes: it
        sets a field or adds to one). ``dataclasses.asdict`` copies every one of an
        import's thousands of target rows, twice: ~0.3 s."""
        return {f.name: copy.copy(getattr(self, f.name)) for f in fields(self)}


def log_entry(origin: str, report: ImportReport) -> dict[str, Any]:
    return {"origin": origin, "source": report.source, "ok": report.ok,
            "report": report.to_dict()}


def apply_changes(session: Session, changes: StateChanges, *,
                  recovered: bool = False) -> None:
    """Make ``changes`` in the caller's SQLite transaction; each part is idempotent."""
    from saleskpi.store.state.models import ImportRun
    from saleskpi.store.state.sync_seen import finish_full, record_seen
    from saleskpi.store.state.sync_state import store_cursor
    from saleskpi.store.targets import upsert_many

    if changes.targets is not None and changes.targets_source is not None:
        upsert_many(session, changes.targets_source, [
            ((str(row["kpi"]), dt.date.fromisoformat(row["period_start"]),
              dt.date.fromisoformat(row["period_end"]), row["rep_id"], row["team"]),
             float(row["value"]), row["custom"]) for row in changes.targets],
            now_utc(), actor=f"import:{changes.targets_source}", action="imported")
    if changes.log is not None:
        report = dict(changes.log["report"])
        if recovered:
            report["recovered"] = True  # made by the next open, after a crash
        session.add(ImportRun(finished_at=utc_now(), origin=changes.log["origin"],
                              source=changes.log["source"], ok=changes.log["ok"],
                              report=report))
    if changes.crm is not None:
        if changes.seen:
            record_seen(session, changes.crm, changes.seen)
        if changes.cursor is not None:
            store_cursor(session, changes.crm, changes.cursor)
        if changes.end_full:
            finish_full(session, changes.crm)


def _interrupted(session: Session, changes: StateChanges) -> None:
    """The import log's entry for an import that stopped before its facts were stored."""
    from saleskpi.store.state.models import ImportRun

    if changes.log is None:
        return
    report = dict(changes.log["report"])
    report["ok"] = False
    report["interrupted"] = True
    report["errors"] = [*report.get("errors", []), {
        "file": changes.log["origin"], "row": None, "column": None,
        "message": _("the import was interrupted before it was stored; nothing of it "
                     "was kept"),
        "hint": _("Run the same import again."),
    }]
    session.add(ImportRun(finished_at=utc_now(), origin=changes.log["origin"],
                          source=changes.log["source"], ok=False, report=report))


def _roll_back(engine: Engine, entry: str, changes: StateChanges) -> None:
    with Session(engine) as session, session.begin():
        if claim(session, entry, ROLLED_BACK):
            _interrupted(session, changes)


@contextlib.contextmanager
def journaled(con: Any, analytics_path: Path, kind: str,
              source: str, changes: StateChanges) -> Iterator[StateChanges]:
    """Run the body's DuckDB writes and ``changes`` in SQLite as one write.

    The body writes on ``con`` inside the DuckDB transaction this opens (it must not
    commit); it may add to the ``changes`` it is given (an import's targets).
    Raising in the body undoes both sides.
    """
    engine = _engine(analytics_path)
    entry = uuid.uuid4().hex
    begun = changes.as_json()
    with _live_lock:
        _live.add(entry)
    try:
        with Session(engine) as session, session.begin():
            add_entry(session, entry, kind, source, begun)
        fault_point("journal_begun")
        ensure_markers(con)
        committed = False
        con.execute("BEGIN TRANSACTION")
        try:
            yield changes
            if changes.as_json() != begun:  # the body added to them: journal what it added
                with Session(engine) as session, session.begin():
                    session.get_one(JournalEntry, entry).changes = changes.as_json()
            con.execute(f"INSERT INTO {MARKER_TABLE} VALUES (?, now())", [entry])
            fault_point("facts_written")
            with Session(engine) as session, session.begin():
                claim(session, entry, COMPLETED)
                apply_changes(session, changes)
                session.flush()
                fault_point("state_written")
                con.execute("COMMIT")
                committed = True
                fault_point("after_duckdb_commit")
        except BaseException:
            if not committed:
                with contextlib.suppress(*database_errors()):
                    con.execute("ROLLBACK")
                with contextlib.suppress(Exception):  # else the next open settles it
                    _roll_back(engine, entry, changes)
            raise
        fault_point("after_state_commit")
        # The write is complete; a marker left by a failure here is cleared on a later open.
        with contextlib.suppress(*database_errors()):
            con.execute(f"DELETE FROM {MARKER_TABLE} WHERE id = ?", [entry])
        fault_point("after_marker_cleared")
    finally:
        with _live_lock:
            _live.discard(entry)


def recover(con: Any, analytics_path: Path, *,
            writable: bool) -> dict[str, int]:
    """Settle every pending journal entry no live writer owns; counts by outcome.

    Call with ``con`` open on ``analytics_path`` (so no writer of another process
    is between two steps). ``writable``: ``con`` may write (the markers of settled
    writes are then deleted).
    """
    settled = {COMPLETED: 0, ROLLED_BACK: 0}
    if not state_path_beside(analytics_path).is_file():
        return settled  # nothing was ever journaled
    engine = _engine(analytics_path)
    with _live_lock:
        with Session(engine) as session:
            pending = [p for p in pending_entries(session) if p[0] not in _live]
        markers = marker_ids(con) - _live
        for entry, _kind, _source, data in pending:
            changes = StateChanges.from_json(data)
            with Session(engine) as session, session.begin():
                if entry in markers:  # DuckDB committed: make the SQLite side
                    if claim(session, entry, COMPLETED):
                        apply_changes(session, changes, recovered=True)
                        settled[COMPLETED] += 1
                elif claim(session, entry, ROLLED_BACK):  # nothing of it was stored
                    _interrupted(session, changes)
                    settled[ROLLED_BACK] += 1
        if writable and markers:
            with contextlib.suppress(*database_errors()):  # left for a later open, harmless
                con.execute(f"DELETE FROM {MARKER_TABLE} WHERE id IN "
                            "(SELECT unnest(?::VARCHAR[]))", [sorted(markers)])
    if writable:
        with Session(engine) as session, session.begin():
            forget_settled(session)
    return settled
