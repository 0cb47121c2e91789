"""One writer at a time on every backend (issue 12, item 5): writers queue, and say so.

On each backend (DuckDB: the gate file; PostgreSQL: its advisory lock; ClickHouse,
here chdb: the workspace's gate file, ClickHouse having no lock of its own) a second
writer, in another thread or another process, waits while the first writes, hears
every few seconds that it waits and for whom (the first's process id), and writes
once the first is done; with a short ``write_wait_seconds`` it gives up with a
sentence naming the setting and exit code 3 (busy), leaving the data as it was.

No timing asserts beyond generous timeouts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import open_store
from tests.backends import BackendChoice
from tests.writers import environment, wait_for_line, writing

ON_CLICKHOUSE = True  # every test here also runs on ClickHouse (chdb): conftest.backend
REPS = "id,name,team\nr1,Anna,North\nr2,Boris,South\n"
MORE_REPS = "id,name,team\nr3,Vera,North\n"
WAITING = "another import is running; waiting"


@pytest.fixture
def settings(tmp_path: Path, backend: BackendChoice) -> Settings:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), **backend.settings())
    settings = Settings(workspace=workspace)
    assert settings.backend == backend.name
    data = tmp_path / "first"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    return settings


@pytest.fixture
def more_reps(tmp_path: Path) -> Path:
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "reps.csv").write_text(MORE_REPS, encoding="utf-8")
    return folder


def rep_ids(settings: Settings) -> list[str]:
    with open_store(settings, read_only=True) as store:
        return sorted(store.rep_names())


def test_writers_of_one_process_take_turns(settings: Settings) -> None:
    """The server's sync and a dashboard import: the second writer hears that it waits,
    and for whom, and opens the store only once the first has closed it."""
    first = open_store(settings)
    heard: list[str] = []
    order: list[str] = []
    opened = threading.Event()

    def second_writer() -> None:
        store = open_store(settings, waiting=lambda notice: heard.append(str(notice)))
        order.append("second opened")
        opened.set()
        store.close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        while not heard:  # it queues (no timing: it says so before anything else)
            assert thread.is_alive()
            time.sleep(0.05)
        assert not opened.is_set()
        order.append("first closed")
    finally:
        first.close()
    thread.join(120)
    assert opened.is_set()
    assert order == ["first closed", "second opened"]
    assert WAITING in heard[0]
    assert f"process {os.getpid()}" in heard[0]


def import_cli(settings: Settings, folder: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "saleskpi", "--workspace", str(settings.workspace),
         "import", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        env=environment(**env))


def test_a_cli_import_waits_for_another_process_then_imports(
        settings: Settings, more_reps: Path) -> None:
    with writing(settings.workspace) as holder:
        second = import_cli(settings, more_reps)
        line = wait_for_line(second.stderr, WAITING)
        assert f"process {holder.pid}" in line
        assert second.poll() is None  # still queued while the first writes
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, (out[-2000:], err[-2000:])
    assert rep_ids(settings) == ["r1", "r2", "r3"]


def test_a_writer_gives_up_after_write_wait_seconds(settings: Settings,
                                                   more_reps: Path) -> None:
    with writing(settings.workspace):
        started = time.monotonic()
        second = import_cli(settings, more_reps, SALESKPI_WRITE_WAIT_SECONDS="2")
        out, err = second.communicate(timeout=300)
        waited = time.monotonic() - started
    assert second.returncode == 3, (out[-2000:], err[-2000:])
    assert "another import is still running" in err and "write_wait_seconds" in err
    # The setting, not a fixed wait of the backend's (PostgreSQL's used to be 30 s).
    assert waited < 25
    assert rep_ids(settings) == ["r1", "r2"]
