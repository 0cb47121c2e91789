"""Issue 12, item 5: 50 people read pages while the workspace is being written.

Usage::

    python benchmarks/concurrent_pages.py [--size 1] [--users 50] [--seconds 60]
        [--writer server|cli] [--think 1.0] [--workspace DIR]

Makes a demo company (``saleskpi demo --size``) in a scratch workspace and
``--users`` users of every role (a head of sales, team leads, reps: each sees their
own scope), starts ``saleskpi serve`` as its own process on a free local port and
signs every user in over HTTP. Then, for ``--seconds``:

- each user, in a thread of its own with its own keep-alive connection, asks pages
  and REST questions in turn (the overview, the leaderboard, the funnel, scorecards
  over ranges nobody asked before), pausing ``--think`` seconds (± 50 %) between
  clicks, as a person does;
- a writer imports a changed CSV again and again (each import alters a deal's amount
  and a lead, so every kept answer goes stale):
  ``--writer server``: through the server (``POST /api/v1/imports?dry_run=false``),
  the way a scheduled CRM sync writes: in the server's process, beside its readers;
  ``--writer cli``: ``saleskpi import`` as a process of its own, beside the server.

It prints the requests, errors by status (and connection failures), p50/p95/p99 and
the slowest latency (client side, request sent to last byte), and the writes done.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PASSWORD = "bench-password-1"
END = dt.date(2024, 6, 30)
SRC = Path(__file__).resolve().parents[1] / "src"


def saleskpi(workspace: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "saleskpi", "--workspace", str(workspace), *args]


def environment() -> dict[str, str]:
    env = dict(os.environ, SALESKPI_LANG="en")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def questions(day: int) -> list[str]:
    """What a user clicks through; ``day`` varies the ranges so some were never asked."""
    return [
        "/",
        "/leaderboard",
        "/funnel",
        f"/api/v1/scorecard?kpi=revenue&kpi=calls&by=rep&period=month"
        f"&from=2024-01-{day:02d}&to=2024-06-30",
        "/api/v1/scorecard?kpi=win_rate&by=team",
        f"/?from=2024-0{1 + day % 6}-01&to=2024-06-30",
        "/api/v1/funnel",
    ]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, latency: float, status: str, sample: str = "") -> None:
        with self.lock:
            self.latencies.append(latency)
            self.statuses[status] += 1
            if sample and len(self.samples) < 10:
                self.samples.append(sample)


def make_users(workspace: Path, count: int) -> list[str]:
    """A head, team leads of every team, reps: ``count`` users in all; their names."""
    sys.path.insert(0, str(SRC))
    from saleskpi.domain.settings import Settings
    from saleskpi.service.auth import add_user
    from saleskpi.service.core import SalesKpiService

    settings = Settings(workspace=workspace)
    reps = SalesKpiService(settings).visible_reps()
    teams = sorted({r.team for r in reps if r.team})
    names: list[str] = []
    add_user(settings, "bench-admin", PASSWORD, "admin")
    for i in range(count):
        name = f"bench-{i:02d}"
        if i % 10 == 0:
            add_user(settings, name, PASSWORD, "head")
        elif i % 10 in (1, 2):
            add_user(settings, name, PASSWORD, "team_lead", team=teams[i % len(teams)])
        else:
            add_user(settings, name, PASSWORD, "rep", rep_id=reps[i % len(reps)].rep)
        names.append(name)
    return names


def sign_in(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=120)
    answer = client.post("/api/v1/session", json={"username": name, "password": PASSWORD})
    answer.raise_for_status()
    client.headers["X-CSRF-Token"] = answer.json()["csrf"]
    return client


def reader(client: httpx.Client, stop: threading.Event, tally: Tally, think: float,
           seed: int) -> None:
    rng = random.Random(seed)
    step = rng.randrange(7)
    while not stop.is_set():
        path = questions(1 + rng.randrange(28))[step % 7]
        step += 1
        started = time.perf_counter()
        try:
            answer = client.get(path)
            status, sample = str(answer.status_code), ""
            if answer.status_code >= 400:
                sample = f"{path} {answer.status_code} {answer.text[:200]!r}"
        except httpx.HTTPError as exc:
            status, sample = type(exc).__name__, f"{path} {exc!r}"
        tally.add(time.perf_counter() - started, status, sample)
        stop.wait(think * rng.uniform(0.5, 1.5))


def changed_csv(folder: Path, workspace: Path, round_: int) -> Path:
    """A canonical deals CSV whose first deal's amount differs in every round."""
    sys.path.insert(0, str(SRC))
    import duckdb

    target = folder / f"round-{round_ % 2}"
    target.mkdir(parents=True, exist_ok=True)
    deals = target / "deals.csv"
    if not deals.exists():
        con = duckdb.connect(str(workspace / "analytics.duckdb"), read_only=True)
        try:
            cur = con.execute("SELECT * EXCLUDE (datasource, custom) FROM deals "
                              "ORDER BY id LIMIT 200")
            header = [d[0] for d in cur.description]
            rows = cur.fetchall()
        finally:
            con.close()
        amount = header.index("amount")
        with deals.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            for row in rows:
                values = list(row)
                if values[amount] is not None:
                    values[amount] = float(values[amount]) + 1 + round_ % 2
                writer.writerow(["" if v is None else v for v in values])
    return deals.parent


def writer_loop(mode: str, url: str, workspace: Path, folder: Path, stop: threading.Event,
                done: list[float], failures: list[str]) -> None:
    admin = sign_in(url, "bench-admin") if mode == "server" else None
    round_ = 0
    while not stop.is_set():
        round_ += 1
        source = changed_csv(folder, workspace, round_)
        started = time.perf_counter()
        if admin is not None:
            files = [("files", ("deals.csv", (source / "deals.csv").read_bytes(), "text/csv"))]
            answer = admin.post("/api/v1/imports", params={"dry_run": "false",
                                                          "source": "demo"}, files=files)
            ok = answer.status_code == 200 and answer.json().get("ok", False)
            if not ok:
                failures.append(f"{answer.status_code} {answer.text[:300]}")
        else:
            proc = subprocess.run(saleskpi(workspace, "import", str(source), "--source", "demo"),
                                  capture_output=True, text=True, env=environment(), check=False)
            ok = proc.returncode == 0
            if not ok:
                failures.append(f"exit {proc.returncode}: {proc.stderr[-300:]}")
        if ok:
            done.append(time.perf_counter() - started)
        stop.wait(1.0)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--writer", choices=("server", "cli"), default="server")
    parser.add_argument("--workspace", type=Path)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="saleskpi-concurrent-"))
    workspace = args.workspace or scratch / "ws"
    try:
        started = time.perf_counter()
        subprocess.run(saleskpi(workspace, "demo", "--size", str(args.size), "--quiet"),
                       check=True, env=environment())
        names = make_users(workspace, args.users)
        print(f"demo company at size {args.size} and {len(names)} users: "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        port = free_port()
        log = (scratch / "server.log").open("w")
        server = subprocess.Popen(saleskpi(workspace, "serve", "--port", str(port),
                                           "--sync-every", "0"), env=environment(),
                                  stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            clients = [sign_in(url, name) for name in names]
            tally = Tally()
            stop = threading.Event()
            threads = [threading.Thread(target=reader, args=(c, stop, tally, args.think, i))
                       for i, c in enumerate(clients)]
            writes: list[float] = []
            failures: list[str] = []
            writing = threading.Thread(target=writer_loop, args=(
                args.writer, url, workspace, scratch / "csv", stop, writes, failures))
            began = time.perf_counter()
            writing.start()
            for thread in threads:
                thread.start()
            time.sleep(args.seconds)
            stop.set()
            for thread in [*threads, writing]:
                thread.join(300)
            elapsed = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(30)
            log.close()
        total = sum(tally.statuses.values())
        errors = {s: n for s, n in tally.statuses.items() if s != "200"}
        print(f"{args.users} users, {elapsed:.0f} s, writer {args.writer}: {total} requests "
              f"({total / elapsed:.1f}/s), errors {sum(errors.values())} {errors or ''}")
        print(f"latency p50 {statistics.median(tally.latencies):.3f} s, "
              f"p95 {percentile(tally.latencies, 0.95):.3f} s, "
              f"p99 {percentile(tally.latencies, 0.99):.3f} s, "
              f"max {max(tally.latencies):.3f} s")
        print(f"writes completed {len(writes)} (median {statistics.median(writes or [0]):.1f} s),"
              f" failed {len(failures)}")
        for sample in tally.samples + failures[:5]:
            print("  ", sample)
        errors_logged = [line for line in (scratch / "server.log").read_text().splitlines()
                         if "Traceback" in line or "ERROR" in line]
        print(f"server log: {len(errors_logged)} errors/tracebacks")
        if errors_logged:
            kept = Path(tempfile.gettempdir()) / f"concurrent-pages-server-{os.getpid()}.log"
            shutil.copy(scratch / "server.log", kept)
            print(f"   the server's log is kept in {kept}")
    finally:
        if args.workspace is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
