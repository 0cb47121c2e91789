"""The write journal in one process: live writes are left alone, old entries are dropped.

The kills at each fault point are in tests/test_crash_safety.py; these are the
cases a kill cannot show: a reader of the same process opening the store in the
middle of a write (the server reads beside its own imports), and the journal's age
limit. Read with plain SQL (sqlite3, DuckDB).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from saleskpi.domain.settings import Settings
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.journal import StateChanges, journaled, recover
from saleskpi.store.state import engine_for


def statuses(workspace: Path) -> list[str]:
    con = sqlite3.connect(workspace / "state.sqlite")
    try:
        return [s for (s,) in con.execute("SELECT status FROM write_journal ORDER BY rowid")]
    finally:
        con.close()


def test_a_reader_in_the_middle_of_a_write_of_its_own_process_leaves_it_alone(
        tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    engine_for(settings.state_url)
    with AnalyticsStore(settings.analytics_path) as store:
        changes = StateChanges(crm="amocrm", cursor={"page": "2"})
        with journaled(store.con, store.path, "sync_batch", "amocrm", changes):
            store.con.execute("INSERT INTO reps (id, name, datasource) "
                              "VALUES ('r1', 'Ann', 'amocrm')")
            # As a joined reader would: the pending entry is a live write, not a dead one.
            assert recover(store.con, store.path, writable=True) == {
                "completed": 0, "rolled_back": 0}
            assert statuses(settings.workspace) == ["pending"]
        assert statuses(settings.workspace) == ["completed"]
        assert store.fetch("SELECT count(*) FROM saleskpi_writes") == [(0,)]
        assert store.fetch("SELECT name FROM reps") == [("Ann",)]
    con = sqlite3.connect(settings.workspace / "state.sqlite")
    assert con.execute("SELECT cursor FROM sync_state").fetchall() == [('{"page": "2"}',)]
    con.close()


def test_a_failing_body_rolls_back_both_and_logs_the_import_as_interrupted(
        tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    engine_for(settings.state_url)
    log = {"origin": "deals.csv", "source": "files", "ok": True,
           "report": {"ok": True, "entities": {}, "errors": []}}
    with AnalyticsStore(settings.analytics_path) as store:
        with pytest.raises(RuntimeError, match="disk full"), \
                journaled(store.con, store.path, "import", "files", StateChanges(log=log)):
            store.con.execute("INSERT INTO reps (id, name, datasource) "
                              "VALUES ('r1', 'Ann', 'files')")
            raise RuntimeError("disk full")
        assert store.fetch("SELECT count(*) FROM reps") == [(0,)]
    assert statuses(settings.workspace) == ["rolled_back"]
    con = sqlite3.connect(settings.workspace / "state.sqlite")
    assert con.execute("SELECT origin, ok FROM import_runs").fetchall() == [("deals.csv", 0)]
    con.close()


def test_settled_entries_are_kept_90_days(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    engine_for(settings.state_url)
    old = dt.datetime(2020, 1, 1)
    recent = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=89)
    con = sqlite3.connect(settings.workspace / "state.sqlite")
    con.executemany(
        "INSERT INTO write_journal (id, kind, source, status, started_at, finished_at) "
        "VALUES (?, 'sync_batch', 'amocrm', ?, ?, ?)",
        [("a" * 32, "completed", old, old), ("b" * 32, "rolled_back", recent, recent)])
    con.commit()
    con.close()
    AnalyticsStore(settings.analytics_path).close()  # a write open settles and prunes
    assert statuses(settings.workspace) == ["rolled_back"]
