"""Web latency benchmark: simulated users on the dashboard of a large demo company.

Usage::

    python benchmarks/web_latency.py [--size 525] [--users 20] [--duration 60]
    python benchmarks/web_latency.py --size 2 --users 4 --duration 10      # a quick check

1. Builds (or reuses) a workspace holding the demo company at ``--size``
   (``generate_company``: about 1,900 deals, 2,000 leads and 20,000 activities per
   unit of size over 12 months; 525 is about 1M deals). A marker file records the
   size, seed and end date so that a later run reuses the workspace.
2. Adds one user per simulated user (``--roles``: so many heads of sales, team
   leads of real teams and reps of real rep ids).
3. Starts the real app (``create_app``) with uvicorn, one worker, in a child
   process on 127.0.0.1, and waits for /health.
4. One user of each role opens every (page, view) alone, twice: the first time
   (cold: queries compiled, nothing cached) and again (warm). The server counts
   the scorecards each request computed and the time they took, which shows what
   a page's time is made of. The KPIs of the pages are then timed one by one
   through the API (head of sales, whole range).
5. ``--users`` threads, each with its own httpx client signed in through the login
   form, request the overview, the comparison, the leaderboard, a rep's page (their
   own, or one of their scope), the funnel and the API scorecard in a shuffled
   cycle of two views (the whole range, the last full month) until ``--requests``
   each or ``--duration`` seconds, whichever comes first; requests under way then
   finish (``--timeout`` each).
6. Prints p50/p95/p99 per page, per view, per role and overall (of the answered
   requests; failures are counted apart), errors by kind, the server's CPU, memory
   and scorecard counts, the load other processes put on the machine meanwhile, and
   whether p95 < 300 ms.

Before the timed load (unless ``--no-warm``), one user per role opens each (page,
view) once, as the first visitors of the morning would, and the benchmark waits
until the server's background refresh is idle. Users pause ``--think`` seconds
(on average) between requests; ``--think 0`` is a stress test with requests back
to back. ``--skip-alone`` skips step 4 (it takes minutes at full size).

See docs/web-latency.md for results.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from machine_load import machine_busy_s

ZONE = "Europe/Kyiv"
CURRENCY = "USD"
SOURCE = "demo"
SEED = 42
DEFAULT_END = dt.date(2026, 11, 1)
DEFAULT_SIZE = 525.0
MARKER = ".saleskpi-web-latency.json"
PASSWORD = "bench-password-1"
GOAL_P95_MS = 300.0
API_KPIS = ("revenue", "deals_won", "win_rate")
PAGES = ("overview", "compare", "leaderboard", "rep", "funnel", "api")
VIEWS = ("all", "last_month")
ROLES = ("head", "team_lead", "rep")
IMPORT_CHUNK = 4_000_000  # rows per import_frames call
IMPORT_MEMORY_LIMIT = "6GB"  # DuckDB's, while importing


def say(message: str = "") -> None:
    print(message, flush=True)


def peak_rss_mib(pid: int | str = "self") -> float:
    """VmHWM of a process (its peak resident memory), in MiB; 0 when unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) / 1024 if match else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux), 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    import duckdb

    model = ""
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "memory_gib": round(pages / 2**30, 1), "python": platform.python_version(),
            "duckdb": duckdb.__version__, "date": dt.date.today().isoformat()}


# --------------------------------------------------------------------------- workspace


def build_workspace(workspace: Path, size: float, end: dt.date, rebuild: bool) -> dict[str, Any]:
    """The demo company in ``workspace``; reused when the marker says it is the same."""
    wanted = {"size": size, "seed": SEED, "end": end.isoformat(), "timezone": ZONE,
              "currency": CURRENCY}
    marker = workspace / MARKER
    store = workspace / "analytics.duckdb"
    if marker.is_file() and store.is_file() and not rebuild:
        built: dict[str, Any] = json.loads(marker.read_text())
        if built.get("dataset") == wanted:
            say(f"Reusing {workspace} (size {size:g}): {counts_text(built['counts'])}; it was "
                f"built in {built['generate_s']:.0f} s + {built['import_s']:.0f} s")
            return built
    if store.exists() and not marker.is_file():
        raise SystemExit(f"{workspace} holds an analytics store this benchmark did not build; "
                         "pass an empty or new --workspace")
    workspace.mkdir(parents=True, exist_ok=True)
    for name in (MARKER, "analytics.duckdb", "analytics.duckdb.wal", "state.sqlite"):
        (workspace / name).unlink(missing_ok=True)

    from saleskpi.domain.settings import Settings, save_workspace_settings
    from saleskpi.sources.demo import generate_company

    save_workspace_settings(Settings(workspace=workspace), timezone=ZONE, currency=CURRENCY)
    settings = Settings(workspace=workspace)
    say(f"Generating the demo company (size {size:g}, seed {SEED}, end {end})…")
    started = time.perf_counter()
    frames = generate_company(size, seed=SEED, end=end, timezone=ZONE, currency=CURRENCY,
                              progress=lambda m: say(f"  [{time.perf_counter() - started:6.1f} s]"
                                                     f" {m}"))
    generate_s = time.perf_counter() - started
    counts = {name: len(frame) for name, frame in frames.items()}
    say(f"  generated in {generate_s:.1f} s (peak {peak_rss_mib():,.0f} MiB): "
        f"{counts_text(counts)}")
    started = time.perf_counter()
    import_all(settings, frames, started)
    import_s = time.perf_counter() - started
    built = {"dataset": wanted, "counts": counts, "generate_s": round(generate_s, 1),
             "import_s": round(import_s, 1), "peak_mib": round(peak_rss_mib()),
             "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    say(f"  imported in {import_s:.1f} s; peak memory of the build {built['peak_mib']:,} MiB")
    marker.write_text(json.dumps(built, indent=2))
    return built


def import_all(settings: Any, frames: dict[str, Any], started: float) -> None:
    """``import_frames`` one entity at a time, big ones in chunks, dropping each frame once
    imported, in one store with a DuckDB memory limit: a size of 500 fits in 24 GiB.

    References are checked against the rows already stored, so the order of
    ``LOAD_ORDER`` (reps first) is all the import needs.
    """
    from saleskpi.domain.schema import LOAD_ORDER
    from saleskpi.sources.ingest.run import import_frames
    from saleskpi.store.analytics import AnalyticsStore

    names = [n for n in LOAD_ORDER if n in frames] + [n for n in frames if n not in LOAD_ORDER]
    with AnalyticsStore(settings.analytics_path) as store:
        store.con.execute(f"SET memory_limit = '{IMPORT_MEMORY_LIMIT}'")
        store.con.execute("SET preserve_insertion_order = false")
        for name in names:
            frame = frames.pop(name)
            for first in range(0, max(len(frame), 1), IMPORT_CHUNK):
                part = frame.iloc[first:first + IMPORT_CHUNK]
                report = import_frames(settings, {name: part}, source=SOURCE, store=store,
                                       log=False)
                if not report.ok:
                    raise SystemExit("import failed: "
                                     + json.dumps(report.to_dict(), default=str)[:4000])
                say(f"  [{time.perf_counter() - started:6.1f} s] {name}: "
                    f"{min(first + IMPORT_CHUNK, len(frame)):,} of {len(frame):,} rows "
                    f"(peak {peak_rss_mib():,.0f} MiB)")
            del frame, part
        # The batches were imported without the import log (log=False), which also skips
        # building the rollups: build them once, as a logged import or a sync's end does.
        from saleskpi.store.rollups import ensure

        built = ensure(store, settings, lambda message: say(
            f"  [{time.perf_counter() - started:6.1f} s] {message}"))
        say(f"  [{time.perf_counter() - started:6.1f} s] {len(built)} rollups built")


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(k, 0):,} {k}" for k in ("reps", "leads", "deals",
                                                            "activities"))


@dataclass(frozen=True)
class BenchUser:
    username: str
    role: str
    rep_id: str | None = None
    team: str | None = None
    page_rep: str = ""  # whose rep page this user opens: their own, or one they may see


def role_counts(text: str, users: int) -> list[str]:
    """'head:4,team_lead:8,rep:8' to one role per user, the roles interleaved in proportion
    (so that fewer users keep the mix), cycled if there are more users than listed."""
    keyed: list[tuple[float, int, str]] = []
    for order, part in enumerate(text.split(",")):
        name, _sep, count = part.strip().partition(":")
        if name not in ROLES:
            raise SystemExit(f"--roles: unknown role {name!r}; use {', '.join(ROLES)}")
        n = int(count or 1)
        keyed += [(i / n, order, name) for i in range(n)]
    roles = [name for _share, _order, name in sorted(keyed)]
    return [roles[i % len(roles)] for i in range(users)]


def add_users(workspace: Path, roles: list[str]) -> list[BenchUser]:
    """One user per simulated user: team leads of real teams, reps of real, active reps."""
    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from saleskpi.domain.settings import Settings
    from saleskpi.service.auth import add_user
    from saleskpi.store.analytics import AnalyticsStore
    from saleskpi.store.state import engine_for
    from saleskpi.store.state.users import User

    settings = Settings(workspace=workspace)
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        rows = store.fetch("SELECT id, team, role FROM reps WHERE left_at IS NULL "
                           "AND team IS NOT NULL ORDER BY id")
    teams = sorted({team for _id, team, _role in rows})
    reps = [rep for rep, _team, role in rows if role == "rep"]
    rng = random.Random(SEED)
    rng.shuffle(teams)
    rng.shuffle(reps)
    with Session(engine_for(settings.state_url)) as session, session.begin():
        session.execute(delete(User).where(User.username.like("bench_%")))
    users = []
    team_of = {rep: team for rep, team, _role in rows}
    for index, role in enumerate(roles):
        rep = reps[index % len(reps)] if role == "rep" else None
        team = teams[index % len(teams)] if role == "team_lead" else None
        page_rep = rep or next((r for r in reps if team_of[r] == team), reps[index % len(reps)])
        user = BenchUser(f"bench_{index + 1:02d}_{role}", role, rep_id=rep, team=team,
                         page_rep=page_rep)
        add_user(settings, user.username, PASSWORD, role, rep_id=user.rep_id, team=user.team)
        users.append(user)
    return users


def kpis_of_pages() -> list[str]:
    from saleskpi.service.compare import DEFAULT_KPIS
    from saleskpi.surfaces.web.overview import HEADLINE, TREND

    return list(dict.fromkeys((*HEADLINE, *TREND, *DEFAULT_KPIS)))


# --------------------------------------------------------------------------- the server


def serve(workspace: Path, port: int, cache_seconds: float | None) -> None:
    """The child process: the app as ``saleskpi serve`` runs it (one uvicorn worker, the
    background refresh on), plus a counter of scorecards."""
    import uvicorn

    from saleskpi.domain.settings import Settings
    from saleskpi.service.core import SalesKpiService
    from saleskpi.surfaces.server import create_app

    settings = Settings(workspace=workspace)
    if cache_seconds is not None:
        settings = settings.model_copy(update={"cache_seconds": cache_seconds})
    app = create_app(settings, refresh=True)
    service: SalesKpiService = app.state.service
    lock = threading.Lock()
    stats = {"calls": 0, "seconds": 0.0, "errors": 0}
    original = service.scorecard

    def counted(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        except Exception:
            with lock:
                stats["errors"] += 1
            raise
        finally:
            with lock:
                stats["calls"] += 1
                stats["seconds"] += time.perf_counter() - started

    service.scorecard = counted  # type: ignore[method-assign]

    @app.get("/_bench/stats")
    def bench_stats() -> dict[str, Any]:
        refresher = getattr(app.state, "refresher", None)
        cache = service.results.stats
        with lock:
            return {**stats, "cache_hits": cache.hits, "cache_misses": cache.misses,
                    "cache_waits": cache.waits, "cache_seconds": service.settings.cache_seconds,
                    "refreshed": refresher.computed if refresher else 0,
                    "refresh_idle": bool(refresher and refresher.wait_idle(0))}

    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(workspace: Path, cache_seconds: float | None
                 ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve", "--workspace",
            str(workspace), "--port", str(port)]
    if cache_seconds is not None:
        argv += ["--cache-seconds", repr(cache_seconds)]
    process = subprocess.Popen(argv)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not answer /health within 60 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- clients


def sign_in(base: str, user: BenchUser, timeout: float) -> httpx.Client:
    """A client signed in through the login form, as a browser would."""
    client = httpx.Client(base_url=base, timeout=timeout, follow_redirects=False)
    form = client.get("/login").text
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    if not match:
        raise SystemExit("no CSRF field on /login")
    response = client.post("/login", data={"username": user.username, "password": PASSWORD,
                                           "csrf": match.group(1)})
    if response.status_code != 303:
        raise SystemExit(f"{user.username} could not sign in: {response.status_code}")
    return client


def view_params(view: str, end: dt.date) -> dict[str, str]:
    """The filters of a view: the whole range, or the last full month before ``end``."""
    if view == "all":
        return {}
    last = end.replace(day=1) - dt.timedelta(days=1)
    return {"from": last.replace(day=1).isoformat(), "to": last.isoformat()}


def request_of(page: str, view: str, end: dt.date, user: BenchUser
               ) -> tuple[str, list[tuple[str, str]]]:
    params = list(view_params(view, end).items())
    if page == "overview":
        return "/", params
    if page in ("compare", "leaderboard", "funnel"):
        return f"/{page}", params
    if page == "rep":
        return f"/reps/{user.page_rep}", params
    return "/api/v1/scorecard", [*(("kpi", k) for k in API_KPIS), ("by", "rep"), *params]


@dataclass
class Sample:
    user: str
    role: str
    page: str
    view: str
    started: float
    ms: float
    status: int  # 0: no answer (timeout or connection error)
    error: str = ""


def timed_get(client: httpx.Client, user: BenchUser, page: str, view: str,
              end: dt.date, origin: float) -> Sample:
    path, params = request_of(page, view, end, user)
    started = time.perf_counter()
    try:
        response = client.get(path, params=httpx.QueryParams(tuple(params)))
        status, error = response.status_code, ""
        if status != 200:
            error = f"HTTP {status}: " + _reason(response.text)
    except httpx.HTTPError as exc:
        status, error = 0, type(exc).__name__
    ms = (time.perf_counter() - started) * 1000
    return Sample(user.username, user.role, page, view, started - origin, ms, status, error)


def _reason(body: str) -> str:
    """A short reason from an error page or problem JSON."""
    try:
        data = json.loads(body)
        return str(data.get("detail") or data.get("title") or data)[:120]
    except ValueError:
        text = re.sub(r"<[^>]+>", " ", body)
        return " ".join(text.split())[:120]


def server_stats(base: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(base + "/_bench/stats", timeout=30).json()
    return stats


def alone(base: str, users: list[BenchUser], end: dt.date, timeout: float
          ) -> list[dict[str, Any]]:
    """One user of each role opens each (page, view) twice, alone: cold, then again."""
    results = []
    for role in ROLES:
        user = next((u for u in users if u.role == role), None)
        if user is None:
            continue
        client = sign_in(base, user, timeout)
        for attempt in ("cold", "again"):
            for page in PAGES:
                for view in VIEWS:
                    before = server_stats(base)
                    sample = timed_get(client, user, page, view, end, time.perf_counter())
                    after = server_stats(base)
                    results.append({
                        "role": role, "attempt": attempt, "page": page, "view": view,
                        "ms": round(sample.ms, 1), "status": sample.status,
                        "scorecards": after["calls"] - before["calls"],
                        "cache_hits": after["cache_hits"] - before["cache_hits"],
                        "scorecard_ms": round((after["seconds"] - before["seconds"]) * 1000, 1),
                        "error": sample.error})
                row = results[-1]
                say(f"  {role:<9} {attempt:<5} {page:<8} {view:<10} {row['ms']:>8.0f} ms  "
                    f"{row['scorecards']:>2} / {row['cache_hits']:>2} / "
                    f"{row['scorecard_ms']:>8.0f} ms  {row['status']} {row['error']}")
        client.close()
    return results


def kpi_times(base: str, user: BenchUser, timeout: float) -> list[dict[str, Any]]:
    """Each KPI of the pages alone through the API: head of sales, whole range."""
    client = sign_in(base, user, timeout)
    results = []
    for kpi in kpis_of_pages():
        for by in ((), ("rep",)):
            before = server_stats(base)
            started = time.perf_counter()
            response = client.get("/api/v1/scorecard",
                                  params=[("kpi", kpi), *(("by", b) for b in by)])
            ms = (time.perf_counter() - started) * 1000
            after = server_stats(base)
            results.append({"kpi": kpi, "by": ",".join(by) or "-", "ms": round(ms, 1),
                            "status": response.status_code,
                            "cached": after["cache_hits"] > before["cache_hits"]})
    client.close()
    return results


def wait_for_refresh(base: str, limit: float) -> dict[str, Any]:
    """Until the server's background refresh has nothing left to compute."""
    say("\nWaiting for the server's background refresh to finish…")
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        stats = server_stats(base)
        if stats["refresh_idle"]:
            break
        time.sleep(1)
    wall = time.perf_counter() - started
    say(f"  {'idle' if stats['refresh_idle'] else 'STILL BUSY'} after {wall:.0f} s; "
        f"{stats['refreshed']} scorecards refreshed so far")
    return {"wall_s": wall, "idle": stats["refresh_idle"], "refreshed": stats["refreshed"]}


def warm(base: str, users: list[BenchUser], end: dt.date, timeout: float) -> dict[str, Any]:
    """Yesterday's use: every user opens each (page, view) once, one request at a time.

    The server saves what was asked (recent-questions.json in the workspace) and its
    background refresh keeps those answers computed; so a dashboard in daily use
    starts each morning warm, and this is the state the timed load measures. The
    first visits' times are the cost of a question nobody asked before.
    """
    say(f"\nFirst visits: {len(users)} users × {len(PAGES) * len(VIEWS)} requests, "
        "one at a time…")
    started = time.perf_counter()
    samples = []
    for user in users:
        client = sign_in(base, user, timeout)
        for page in PAGES:
            for view in VIEWS:
                samples.append(timed_get(client, user, page, view, end, started))
        client.close()
    wall = time.perf_counter() - started
    stats = server_stats(base)
    failed = sum(s.status != 200 for s in samples)
    say(f"  done in {wall:.0f} s ({failed} failed); the server computed "
        f"{stats['cache_misses']} scorecards so far")
    first = print_table("first visits by page", {p: [s for s in samples if s.page == p]
                                                 for p in PAGES})
    return {"users": len(users), "failed": failed, "wall_s": wall, "pages": first}


def load(base: str, users: list[BenchUser], end: dt.date, duration: float, requests: int,
         timeout: float, think: float) -> tuple[list[Sample], float]:
    """Every user in its own thread, all starting together; returns samples and wall time."""
    clients = [sign_in(base, u, timeout) for u in users]
    samples: list[Sample] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(users) + 1)
    origin = 0.0

    def run(index: int) -> None:
        user, client = users[index], clients[index]
        rng = random.Random(f"{SEED}:{index}")
        cycle = [(p, v) for p in PAGES for v in VIEWS]
        barrier.wait()
        deadline = origin + duration
        done = 0
        while done < requests and time.perf_counter() < deadline:
            if done % len(cycle) == 0:
                rng.shuffle(cycle)
            page, view = cycle[done % len(cycle)]
            sample = timed_get(client, user, page, view, end, origin)
            with lock:
                samples.append(sample)
            done += 1
            if think > 0:  # a person reads the page before the next click
                time.sleep(rng.uniform(0.5, 1.5) * think)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(users))]
    for thread in threads:
        thread.start()
    origin = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join(duration + timeout + 60)
    wall = time.perf_counter() - origin
    for client in clients:
        client.close()
    return samples, wall


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: list[Sample]) -> dict[str, Any]:
    """Latency of the answered requests (HTTP 200); failures are counted apart, since a
    failure can come back fast and would flatter the percentiles."""
    ms = [s.ms for s in samples if s.status == 200]
    return {"n": len(samples), "ok": len(ms), "errors": len(samples) - len(ms),
            "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
            "max": max(ms, default=float("nan")),
            "mean": statistics.fmean(ms) if ms else float("nan")}


def print_table(title: str, groups: dict[str, list[Sample]]) -> dict[str, Any]:
    say(f"{title:<24} {'n':>5} {'errors':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} "
        f"{'max ms':>9}")
    result = {}
    for name, group in groups.items():
        s = summary(group)
        result[name] = s
        say(f"  {name:<22} {s['n']:>5} {s['errors']:>6} {s['p50']:>9.0f} {s['p95']:>9.0f} "
            f"{s['p99']:>9.0f} {s['max']:>9.0f}")
    return result


def report(samples: list[Sample], wall: float, users: int) -> dict[str, Any]:
    by_page = {p: [s for s in samples if s.page == p] for p in PAGES}
    by_view = {f"{p} / {v}": [s for s in samples if s.page == p and s.view == v]
               for p in PAGES for v in VIEWS}
    by_role = {r: [s for s in samples if s.role == r] for r in ROLES
               if any(s.role == r for s in samples)}
    say(f"{len(samples)} requests by {users} users in {wall:.1f} s "
        f"({len(samples) / wall:.2f} requests/s); latency of the answered ones (HTTP 200):")
    result = {"pages": print_table("page", by_page),
              "views": print_table("page / view", by_view),
              "roles": print_table("role", by_role),
              "overall": print_table("overall", {"all requests": samples})["all requests"]}
    errors = Counter(s.error for s in samples if s.status != 200)
    if errors:
        say("Errors:")
        for error, count in errors.most_common(10):
            say(f"  {count:>5} × {error}")
    result["errors"] = dict(errors)
    result["throughput"] = len(samples) / wall if wall else 0.0
    result["wall_s"] = wall
    return result


def verdict(overall: dict[str, Any]) -> str:
    p95, errors = overall["p95"], overall["errors"]
    failed = f"; {errors} of {overall['n']} requests failed" if errors else ""
    if p95 < GOAL_P95_MS and not errors:
        return f"p95 {p95:.0f} ms < {GOAL_P95_MS:.0f} ms: goal met"
    if p95 < GOAL_P95_MS:
        return f"p95 {p95:.0f} ms < {GOAL_P95_MS:.0f} ms, but the goal is MISSED{failed}"
    return (f"p95 {p95:.0f} ms ≥ {GOAL_P95_MS:.0f} ms: goal MISSED by {p95 - GOAL_P95_MS:.0f} ms "
            f"({p95 / GOAL_P95_MS:.1f}× the goal){failed}")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=DEFAULT_SIZE,
                        help="demo company size (525: about 1M deals)")
    parser.add_argument("--end", type=dt.date.fromisoformat, default=DEFAULT_END,
                        help="the demo data ends before this day (fixed: reproducible)")
    parser.add_argument("--workspace", type=Path,
                        help="default: <tmp>/saleskpi-web-<size>")
    parser.add_argument("--rebuild", action="store_true", help="build the workspace again")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--roles", default="head:4,team_lead:8,rep:8",
                        help="role mix, cycled over the users")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="stop starting requests after this many seconds")
    parser.add_argument("--requests", type=int, default=60, help="at most this many per user")
    parser.add_argument("--timeout", type=float, default=180.0, help="per request, seconds")
    parser.add_argument("--cache-seconds", type=float, default=None,
                        help="the service's scorecard cache in the server (default: the "
                        "server's own; 1e-9 turns it off in effect)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean seconds a user waits between requests (uniform, ±50%%; "
                        "0: back to back)")
    parser.add_argument("--no-warm", action="store_true",
                        help="start the timed load at once: no first visits before it, no "
                        "waiting for the background refresh")
    parser.add_argument("--refresh-limit", type=float, default=1800.0,
                        help="wait at most this long for the background refresh")
    parser.add_argument("--skip-alone", action="store_true",
                        help="skip the requests one at a time and the per-KPI times")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workspace: Path = args.workspace or Path(tempfile.gettempdir()) / f"saleskpi-web-{args.size:g}"
    if args.serve:
        serve(workspace, args.port, args.cache_seconds)
        return

    info = machine()
    say(f"Machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB, "
        f"Python {info['python']}, DuckDB {info['duckdb']}, {info['date']}")
    built = build_workspace(workspace, args.size, args.end, args.rebuild)
    if args.build_only:
        return
    users = add_users(workspace, role_counts(args.roles, args.users))
    say(f"{len(users)} users: " + ", ".join(f"{n} {r}" for r, n in
                                            Counter(u.role for u in users).items()))
    process, base = start_server(workspace, args.cache_seconds)
    results: dict[str, Any] = {"machine": info, "workspace": str(workspace), "build": built,
                               "options": {k: str(v) for k, v in vars(args).items()}}
    try:
        stats = server_stats(base)
        say(f"Server: pid {process.pid}, scorecard cache {stats['cache_seconds']:g} s")
        if not args.skip_alone:
            say("\nOne request at a time (ms; scorecards computed / cache hits / ms in them):")
            started, busy_before = time.perf_counter(), machine_busy_s()
            cpu_before, own_before = cpu_seconds(process.pid), own_cpu_s()
            rows = alone(base, users, args.end, args.timeout)
            results["alone"] = rows
            others = ((machine_busy_s() - busy_before) - (cpu_seconds(process.pid) - cpu_before)
                      - (own_cpu_s() - own_before))
            share = max(0.0, others) / (time.perf_counter() - started) / (os.cpu_count() or 1)
            results["alone_other_processes_load"] = share
            say(f"  (other processes of the machine kept {share:.0%} of its cores busy)")
            say("\nEach KPI alone through the API (head of sales, whole range):")
            head = next((u for u in users if u.role == "head"), users[0])
            kpis = kpi_times(base, head, args.timeout)
            for row in kpis:
                say(f"  {row['kpi']:<28} by {row['by']:<4} {row['ms']:>8.0f} ms  {row['status']}"
                    + (" (from the cache)" if row["cached"] else ""))
            results["kpis"] = kpis
        if not args.no_warm:
            results["warm"] = warm(base, users, args.end, args.timeout)
            results["refresh"] = wait_for_refresh(base, args.refresh_limit)
        before, cpu_before = server_stats(base), cpu_seconds(process.pid)
        busy_before, own_before = machine_busy_s(), own_cpu_s()
        say(f"\nLoad: {len(users)} users, up to {args.requests} requests each or "
            f"{args.duration:g} s, {args.think:g} s between a user's requests on average…")
        samples, wall = load(base, users, args.end, args.duration, args.requests,
                             args.timeout, args.think)
        after, cpu_after = server_stats(base), cpu_seconds(process.pid)
        # CPU the rest of the machine used meanwhile: other processes slow the server down.
        others = ((machine_busy_s() - busy_before) - (cpu_after - cpu_before)
                  - (own_cpu_s() - own_before))
        results["load"] = report(samples, wall, len(users))
        results["samples"] = [asdict(s) for s in samples]
        computed = after["calls"] - before["calls"]
        hits = after["cache_hits"] - before["cache_hits"]
        misses = after["cache_misses"] - before["cache_misses"]
        busy = (cpu_after - cpu_before) / wall / (os.cpu_count() or 1)
        server = {"scorecard_calls": computed, "cache_hits": hits, "cache_misses": misses,
                  "scorecard_errors": after["errors"] - before["errors"],
                  "scorecard_s": after["seconds"] - before["seconds"],
                  "cpu_s": cpu_after - cpu_before, "cpu_busy": busy,
                  "peak_mib": peak_rss_mib(process.pid),
                  "clients_cpu_s": own_cpu_s() - own_before,
                  "other_processes_load": max(0.0, others) / wall / (os.cpu_count() or 1)}
        results["server"] = server
        say(f"Server during the load: {computed} scorecard calls ({hits} answers from the "
            f"cache, {misses} computed, {server['scorecard_errors']} failed), "
            f"{server['scorecard_s']:.0f} s inside them "
            f"(summed over threads); CPU {server['cpu_s']:.0f} s = {busy:.0%} of "
            f"{os.cpu_count()} cores; peak memory {server['peak_mib']:,.0f} MiB")
        say(f"Clients used {server['clients_cpu_s']:.0f} CPU s; other processes of the machine "
            f"kept {server['other_processes_load']:.0%} of its cores busy meanwhile")
        results["verdict"] = verdict(results["load"]["overall"])
        say(results["verdict"])
    finally:
        stop_server(process)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        say(f"Measurements written to {args.json}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(f"Benchmark process peak memory {own:,.0f} MiB")


if __name__ == "__main__":
    main()
