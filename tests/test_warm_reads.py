"""A page's reads keep the DuckDB file open between them, and never keep a writer out;
a command that reads opens the file ahead, on a thread, under the same rules.

``store/warm_reads.py``: inside ``warm_reads`` a thread's first read-only open also
opens a keep-alive connection, so the page's later questions find the database open.
A writer of the same process must still get in at once (DuckDB refuses a read-write
connection beside a read-only one in one process), and nothing may stay open after
the block.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from saleskpi.store import warm_reads as keep_alives
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.warm_reads import open_ahead, warm_reads


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "ws" / "analytics.duckdb"
    AnalyticsStore(path).close()  # an empty store of the current schema
    return path


def _read(path: Path) -> int:
    store = AnalyticsStore(path, read_only=True, wait=1.0)
    try:
        return store.count("reps")
    finally:
        store.close()


def _file_is_free(path: Path) -> bool:
    """Whether another process can open the file read-write right now."""
    probe = ("import duckdb, sys\n"
             "try:\n    duckdb.connect(sys.argv[1]).close()\n"
             "except duckdb.Error:\n    sys.exit(1)\n")
    return subprocess.run([sys.executable, "-c", probe, str(path)],
                          check=False).returncode == 0


def test_the_file_stays_open_between_reads_and_is_let_go_after(store_path: Path) -> None:
    with warm_reads(store_path):
        assert _read(store_path) == 0
        # Every read's own connection is closed, the keep-alive is not: another
        # process cannot write meanwhile.
        assert not _file_is_free(store_path)
        assert _read(store_path) == 0
    assert _file_is_free(store_path)
    # And this process may open it read-write again (no read-only database left open).
    duckdb.connect(str(store_path)).close()


def test_a_writer_of_this_process_gets_in_while_a_page_keeps_the_file(
        store_path: Path) -> None:
    reading, written = threading.Event(), threading.Event()
    page_done = threading.Event()
    errors: list[BaseException] = []

    def page() -> None:
        try:
            with warm_reads(store_path):
                _read(store_path)
                reading.set()
                # The page waits (for another request's answer, say) holding nothing
                # but its keep-alive; the writer must not wait for it.
                assert written.wait(20)
                assert _read(store_path) == 1  # the page's next question sees the write
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)
        finally:
            page_done.set()

    thread = threading.Thread(target=page)
    thread.start()
    assert reading.wait(20)
    # A short wait: without closing the keep-alive, DuckDB refuses this open
    # ("different configuration") until the page ends, and the writer gives up.
    writer = AnalyticsStore(store_path, wait=2.0, queue_wait=2.0)
    try:
        writer.con.execute("INSERT INTO reps (datasource, id, name) VALUES ('t', 'r1', 'Ann')")
    finally:
        writer.close()
    written.set()
    thread.join(30)
    assert page_done.is_set() and errors == []


def _opened_ahead(path: Path) -> bool:
    """Whether an open-ahead keep-alive of ``path`` is open in this process."""
    with keep_alives._lock:
        return any(a.con is not None
                   for a in keep_alives._anchors.get(str(path.resolve()), ()))


def _wait_until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_a_command_opens_the_file_ahead_and_lets_it_go_when_done(store_path: Path) -> None:
    close = open_ahead(store_path)
    try:
        assert _wait_until(lambda: _opened_ahead(store_path))
        assert not _file_is_free(store_path)  # held open for the command
        assert _read(store_path) == 0  # the command's own read joins it
    finally:
        close()
    assert not _opened_ahead(store_path)
    assert _file_is_free(store_path)
    duckdb.connect(str(store_path)).close()  # no read-only database left in this process


def test_a_writer_of_the_command_gets_in_past_the_file_opened_ahead(store_path: Path) -> None:
    close = open_ahead(store_path)
    try:
        assert _wait_until(lambda: _opened_ahead(store_path))
        writer = AnalyticsStore(store_path, wait=2.0, queue_wait=2.0)
        try:
            writer.con.execute(
                "INSERT INTO reps (datasource, id, name) VALUES ('t', 'r1', 'Ann')")
        finally:
            writer.close()
        assert not _opened_ahead(store_path)  # closed for the writer, not opened again
        assert _read(store_path) == 1
    finally:
        close()
    assert _file_is_free(store_path)


def test_nothing_is_opened_ahead_for_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "analytics.duckdb"
    close = open_ahead(path)
    close()  # waits for the thread: it has decided by now
    assert not path.exists() and not path.parent.exists()
    assert not _opened_ahead(path)


def test_an_open_still_under_way_when_the_command_ends_is_closed(store_path: Path) -> None:
    for _ in range(20):  # whichever finishes first, nothing stays open
        open_ahead(store_path)()
        assert not _opened_ahead(store_path)
        assert _file_is_free(store_path)
