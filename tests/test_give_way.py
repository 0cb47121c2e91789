"""Background reads give way to an import of another process (issue 12, concurrency).

A DuckDB file is one process's to write only while no other has it open, so an
import that arrives while the server's background refresh builds the funnel's kept
events (10-12 s at a million deals) waited for the build, whose rows the import
makes useless anyway. Inside ``giving_way`` a store stops its queries once a writer
of another process holds the store's writer gate. Checked with a real second process
taking the gate while a query that would run for minutes is running.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from saleskpi.domain.errors import QueryTimeout
from saleskpi.store.analytics import AnalyticsStore

# Minutes of work for DuckDB: only an interrupt ends it within the test's time.
ENDLESS = "SELECT sum(x % 7) FROM range(1000000000000) t(x)"

# A writer of another process: takes the store's gate after ``delay`` seconds (as an
# import does before it opens the file) and holds it until its stdin closes.
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from saleskpi.store.writer_gate import one_writer
    time.sleep(float(sys.argv[2]))
    with one_writer(Path(sys.argv[1]), wait=30):
        print("holding", flush=True)
        sys.stdin.read()
""")


def _store(tmp_path: Path) -> Path:
    path = tmp_path / "analytics.duckdb"
    AnalyticsStore(path).close()  # made, as by a first import
    return path


def test_a_long_background_read_stops_when_another_process_wants_to_write(
        tmp_path: Path) -> None:
    path = _store(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "0.5"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        store = AnalyticsStore(path, read_only=True)
        started = time.monotonic()
        # The time limit only guards the test: without giving way it would fire.
        with store.time_limit(60), store.giving_way() as gave_way:
            store.con.execute(ENDLESS).fetchall()
            pytest.fail("the query was not stopped")
        took = time.monotonic() - started
        store.close()
        assert gave_way.stopped
        assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
        assert 0.5 <= took < 10, took
    finally:
        writer.communicate("", timeout=30)
    assert writer.returncode == 0


def test_without_a_writer_nothing_is_stopped_and_a_time_limit_still_is(
        tmp_path: Path) -> None:
    store = AnalyticsStore(_store(tmp_path), read_only=True)
    try:
        with store.giving_way() as gave_way:
            time.sleep(0.3)  # the watcher asks several times
            assert store.con.execute("SELECT 6 * 7").fetchall() == [(42,)]
        assert not gave_way.stopped
        # The question's own time limit is not taken for giving way: still an error.
        with (pytest.raises(QueryTimeout), store.time_limit(0.3),
              store.giving_way() as limited):
            store.con.execute(ENDLESS).fetchall()
        assert not limited.stopped
    finally:
        store.close()
