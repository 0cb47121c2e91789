"""Issue 12, item 5: the server, its writers and the CLI share one workspace safely.

- Readers hammer the dashboard and the API (real threads, real HTTP to uvicorn on
  127.0.0.1) while imports write through the server, the way a scheduled sync writes
  (in the server's process, beside its readers): every answer is a 200.
- Writers queue: a second writer (a CLI import, its own process) waits while another
  process writes, says so on stderr ("another import is running; waiting…", who
  holds the store), and then imports; with a short ``write_wait_seconds`` it gives up
  with that sentence and exit code 3 (busy), leaving the data as it was.

No timing asserts beyond generous timeouts.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user
from saleskpi.service.demo import build_demo
from saleskpi.store.analytics import READ_WAIT_SECONDS, AnalyticsStore
from saleskpi.surfaces.server import create_app
from tests.servers import serve
from tests.writers import environment, wait_for_line, writing

PASSWORD = "correct horse battery"
END = dt.date(2024, 6, 30)
READERS = 16
IMPORTS = 3
PATHS = [
    "/",
    "/leaderboard",
    "/funnel",
    "/api/v1/scorecard?kpi=revenue&kpi=calls&by=rep&period=month&from=2024-01-{day:02d}"
    "&to=2024-06-30",
    "/api/v1/scorecard?kpi=win_rate&by=team",
    "/api/v1/funnel",
]


@dataclass
class Workspace:
    settings: Settings
    deals: Path  # a folder with deals.csv: the workspace's first deals, amounts changed


def deals_csv(workspace: Path, folder: Path, *, add: float) -> Path:
    """The store's first 50 deals as canonical CSV, each amount raised by ``add``."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(workspace / "analytics.duckdb"), read_only=True)
    try:
        cur = con.execute("SELECT * EXCLUDE (datasource, custom) FROM deals "
                          "WHERE amount IS NOT NULL ORDER BY id LIMIT 50")
        header = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    amount = header.index("amount")
    with (folder / "deals.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            values = ["" if v is None else v for v in row]
            values[amount] = float(row[amount]) + add
            writer.writerow(values)
    return folder


def amount_sum(workspace: Path) -> float:
    con = duckdb.connect(str(workspace / "analytics.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT sum(amount) FROM deals").fetchone()
    finally:
        con.close()
    assert row is not None
    return float(row[0])


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    settings = Settings(workspace=tmp_path / "ws")
    company = build_demo(settings, size=0.2, seed=7, end=END)
    assert company.report.ok, company.report.errors
    settings = Settings(workspace=settings.workspace)
    add_user(settings, "boss", PASSWORD, "admin")
    return Workspace(settings, deals_csv(settings.workspace, tmp_path / "changed", add=1.0))


def cli(workspace: Path, *args: object, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "saleskpi", "--workspace", str(workspace),
         *(str(a) for a in args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        env=environment(**env))


def sign_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    answer = client.post("/api/v1/session", json={"username": "boss", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf"]
    return client


@dataclass
class Readers:
    """Signed-in clients asking PATHS in turn, each in a thread, until stopped."""

    url: str
    statuses: Counter[str]
    failures: list[str]

    @contextlib.contextmanager
    def asking(self) -> Iterator[None]:
        lock = threading.Lock()
        stop = threading.Event()

        def read(client: httpx.Client, first: int) -> None:
            step = first
            while not stop.is_set():
                path = PATHS[step % len(PATHS)].format(day=1 + step % 28)
                step += 1
                try:
                    answer = client.get(path)
                    status, detail = str(answer.status_code), answer.text[:300]
                except httpx.HTTPError as exc:
                    status, detail = type(exc).__name__, repr(exc)
                with lock:
                    self.statuses[status] += 1
                    if status != "200":
                        self.failures.append(f"{path}: {status} {detail}")

        clients = [sign_in(self.url) for _ in range(READERS)]
        threads = [threading.Thread(target=read, args=(c, i)) for i, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(300)


def test_readers_get_answers_while_the_server_imports(workspace: Workspace) -> None:
    before = amount_sum(workspace.settings.workspace)
    with serve(create_app(workspace.settings)) as url:
        readers = Readers(url, Counter(), [])
        writer = sign_in(url)
        with readers.asking():
            files = (workspace.deals / "deals.csv").read_bytes()
            for _ in range(IMPORTS):
                answer = writer.post(
                    "/api/v1/imports", params={"dry_run": "false", "source": "demo"},
                    files=[("files", ("deals.csv", files, "text/csv"))])
                assert answer.status_code == 200, answer.text[:500]
                assert answer.json()["ok"], answer.text[:500]
    # 50 deals, each raised by 1 by the (idempotent) import.
    assert amount_sum(workspace.settings.workspace) == pytest.approx(before + 50)
    assert sum(readers.statuses.values()) >= READERS * 2, readers.statuses
    assert readers.failures == [], (readers.statuses, readers.failures[:5])


def test_readers_get_answers_while_a_cli_import_writes(workspace: Workspace) -> None:
    """The server's pages while ``saleskpi import`` (its own process) holds the file:
    kept answers at once, the others once the write has ended: never a 503."""
    ws = workspace.settings.workspace
    before = amount_sum(ws)
    with serve(create_app(workspace.settings)) as url:
        readers = Readers(url, Counter(), [])
        with readers.asking():
            for add in (1.0, 2.0):
                folder = deals_csv(ws, ws.parent / f"cli-{add}", add=add) if add > 1 \
                    else workspace.deals
                importing = cli(ws, "import", folder, "--source", "demo")
                out, err = importing.communicate(timeout=600)
                assert importing.returncode == 0, (out[-2000:], err[-2000:])
    # The second CSV was read after the first import: amounts raised by 1, then by 2.
    assert amount_sum(ws) == pytest.approx(before + 50 * 3)
    assert sum(readers.statuses.values()) >= READERS * 2, readers.statuses
    assert readers.failures == [], (readers.statuses, readers.failures[:5])


def test_pages_wait_for_a_write_of_another_process_rather_than_fail(
        workspace: Workspace) -> None:
    """A writer of another process holds the file longer than a reader used to wait
    (2 s, then 503): questions asked before get their kept answer at once, the others
    are answered when it lets go."""
    ws = workspace.settings.workspace
    with serve(create_app(workspace.settings)) as url:
        readers = Readers(url, Counter(), [])
        with readers.asking(), writing(ws):
            time.sleep(3 * READ_WAIT_SECONDS)
    assert sum(readers.statuses.values()) >= READERS, readers.statuses
    assert readers.failures == [], (readers.statuses, readers.failures[:5])


def test_a_second_writer_waits_in_the_queue_then_imports(workspace: Workspace) -> None:
    ws = workspace.settings.workspace
    before = amount_sum(ws)
    with writing(ws) as holder:
        second = cli(ws, "import", workspace.deals, "--source", "demo")
        line = wait_for_line(second.stderr, "another import is running; waiting")
        assert f"process {holder.pid}" in line
        assert second.poll() is None  # still queued while the first writes
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, (out[-2000:], err[-2000:])
    assert amount_sum(ws) == pytest.approx(before + 50)


def test_a_writer_that_waits_too_long_gives_up_with_a_clear_message(
        workspace: Workspace) -> None:
    ws = workspace.settings.workspace
    before = amount_sum(ws)
    with writing(ws):
        second = cli(ws, "import", workspace.deals, "--source", "demo",
                     SALESKPI_WRITE_WAIT_SECONDS="2")
        out, err = second.communicate(timeout=300)
    assert second.returncode == 3, (out[-2000:], err[-2000:])
    assert "another import is still running" in err
    assert "write_wait_seconds" in err
    assert amount_sum(ws) == pytest.approx(before)


WRITES = 100  # writer-process commits, each making and removing DuckDB's write-ahead log


def test_the_data_version_is_read_while_another_process_writes(tmp_path: Path) -> None:
    """The one HTTP 500 of ``benchmarks/concurrent_pages.py --writer cli``: every page
    reads the data version (the file's and its write-ahead log's modification times),
    and an import of another process removes the log when it ends. A thread that found
    the log and then asked its time a moment later, when it was gone, failed with
    FileNotFoundError. Here a writer process commits again and again while threads of
    this process read the version (switching threads as often as Python can, to give
    the moment a chance): no read may fail, and some must have seen the log."""
    from saleskpi.service.core import SalesKpiService

    settings = Settings(workspace=tmp_path / "ws")
    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,Anna,North\n", encoding="utf-8")
    assert SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                 dry_run=False).ok
    service = SalesKpiService(settings)
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; "
         "from saleskpi.store.analytics import AnalyticsStore\n"
         f"for i in range({WRITES}):\n"
         "    with AnalyticsStore(Path(sys.argv[1])) as s:\n"
         "        s.con.execute('UPDATE reps SET name = ?', [f'Anna {i}'])\n",
         str(settings.analytics_path)],
        env=environment())
    failures: list[str] = []
    with_log = Counter[bool]()

    def read_versions() -> None:
        while writer.poll() is None and not failures:
            try:
                with_log[service.data_version()[1] != 0] += 1
            except Exception as exc:  # what a page would have answered with a 500
                failures.append(repr(exc))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        readers = [threading.Thread(target=read_versions) for _ in range(4)]
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join(300)
    finally:
        sys.setswitchinterval(interval)
        if writer.poll() is None:
            writer.kill()
        writer.wait(60)
    assert failures == []
    assert writer.returncode == 0
    assert with_log[True] > 0 and with_log[False] > 0  # the log came and went


def test_a_writer_of_another_process_gets_the_file_from_a_stream_of_readers(
        tmp_path: Path) -> None:
    """The server opens the file for each question; with many pages, some reader always
    had it open, and a CLI import waiting for it gave up ("in use by another saleskpi
    process") although the pages' questions were short. Readers now wait behind a
    writer of another process that holds the writer gate, so it gets the file."""
    from saleskpi.service.core import SalesKpiService

    settings = Settings(workspace=tmp_path / "ws")
    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,Anna,North\n", encoding="utf-8")
    assert SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                 dry_run=False).ok
    path = settings.analytics_path
    stop = threading.Event()
    failures: list[str] = []
    reads = Counter[str]()

    def read_again_and_again() -> None:
        while not stop.is_set():
            try:
                with AnalyticsStore(path, read_only=True) as store:
                    store.fetch("SELECT count(*) FROM reps")
                    time.sleep(0.05)  # a page's question, the file held meanwhile
                reads["done"] += 1
            except Exception as exc:
                failures.append(repr(exc))

    readers = [threading.Thread(target=read_again_and_again) for _ in range(6)]
    for thread in readers:
        thread.start()
    try:
        time.sleep(0.5)
        writer = subprocess.run(
            [sys.executable, "-c",
             "import sys; from pathlib import Path; "
             "from saleskpi.store.analytics import AnalyticsStore\n"
             "with AnalyticsStore(Path(sys.argv[1]), wait=10) as s:\n"
             "    s.con.execute(\"UPDATE reps SET name = 'Anna K'\")\n",
             str(path)], capture_output=True, text=True, timeout=300,
            env=environment())
        time.sleep(0.5)  # readers go on once the write is done
    finally:
        stop.set()
        for thread in readers:
            thread.join(120)
    assert writer.returncode == 0, writer.stderr[-2000:]
    assert failures == []
    assert reads["done"] > 0
    with AnalyticsStore(path, read_only=True) as store:
        assert store.fetch("SELECT name FROM reps") == [("Anna K",)]
