"""A page's very first question: each (role, page, view) in a fresh app, nobody asked before.

Usage (the workspace built by ``web_latency.py --build-only``)::

    python benchmarks/first_visits.py --workspace /tmp/bench/ws525 [--rounds 2]
    python benchmarks/first_visits.py --workspace /tmp/bench/ws525 --pages funnel,leaderboard
    python benchmarks/first_visits.py --workspace /tmp/bench/ws525 --pages funnel --kept

For every role (head of sales, team lead, rep: the users ``web_latency.py`` makes),
page (by default the overview, comparison and a rep's page; ``--pages`` adds the
leaderboard and the funnel, whose SQL is not counted as "in SQL") and view (the
default range, the last full month), a new app is made (``create_app``: its answer
cache empty, as after a server start; the compiled SQL is read from the workspace's
files, as the server does) and one request is timed in-process, with the CPU seconds
the process used meanwhile (its DuckDB threads included) and the time spent in the
engine's SQL. ``web_latency.py``
asks its pages one role after another in one server, so the later roles find answers
the head's pages computed; here no page finds any. The apps made before are garbage,
collected before each request is timed (a server has one app; a collection falling in a
request charged it 0.3 s of CPU, depending on what the requests before left).

Prints one line per request and, per (role, page), the worst of its views over the
rounds, and how busy the rest of the machine was meanwhile.

``--kept``: first keep every deal's funnel events for the data, as a server's
background refresh does after each write (``saleskpi.service.kept_funnel``; timed and
printed), so that the head of sales's funnel reads them. Without it, whatever an
earlier run kept for the same data is removed first.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import time
from pathlib import Path
from typing import Any

from machine_load import machine_busy_s
from web_latency import DEFAULT_END, PASSWORD, VIEWS, add_users, request_of, role_counts

PAGES = ("overview", "compare", "rep", "leaderboard", "funnel")
DEFAULT_PAGES = "overview,compare,rep"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pages", default=DEFAULT_PAGES,
                        help=f"comma-separated, of {', '.join(PAGES)} (default: %(default)s)")
    parser.add_argument("--kept", action="store_true",
                        help="keep the funnel's events first, as the server does after a write")
    args = parser.parse_args()
    unknown = set(args.pages.split(",")) - set(PAGES)
    if unknown:
        parser.error(f"unknown pages {sorted(unknown)}: use {', '.join(PAGES)}")
    from starlette.testclient import TestClient

    from saleskpi.domain.settings import Settings
    from saleskpi.engine import scorecard
    from saleskpi.surfaces.server import create_app

    users = add_users(args.workspace, role_counts("head:1,team_lead:1,rep:1", 3))
    in_sql = [0.0]
    run_group = scorecard.Engine._run_group

    def timed(self: Any, *a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return run_group(self, *a, **k)
        finally:
            in_sql[0] += time.perf_counter() - started

    scorecard.Engine._run_group = timed  # type: ignore[method-assign]
    keep_funnel(Settings(workspace=args.workspace), args.kept)
    worst: dict[tuple[str, str], float] = {}
    busy_before, wall_before, own_before = machine_busy_s(), time.perf_counter(), _own_cpu()
    for _round in range(args.rounds):
        for user in users:
            for page in args.pages.split(","):
                for view in VIEWS:
                    app = create_app(Settings(workspace=args.workspace), refresh=False)
                    with TestClient(app) as client:
                        form = client.get("/login").text
                        match = re.search(r'name="csrf" value="([^"]+)"', form)
                        assert match, "no CSRF field on /login"
                        client.post("/login", data={"username": user.username,
                                                    "password": PASSWORD,
                                                    "csrf": match.group(1)},
                                    follow_redirects=False)
                        path, params = request_of(page, view, DEFAULT_END, user)
                        # The apps made before are garbage: collected now, not in
                        # the middle of whichever request a collection would hit.
                        gc.collect()
                        in_sql[0] = 0.0
                        cpu, started = time.process_time(), time.perf_counter()
                        response = client.get(path, params=params)
                        ms = (time.perf_counter() - started) * 1000
                        cpu_ms = (time.process_time() - cpu) * 1000
                    assert response.status_code == 200, (path, response.status_code)
                    key = (user.role, page)
                    worst[key] = max(worst.get(key, 0.0), ms)
                    print(f"{user.role:<9} {page:<8} {view:<10} {ms:>7.0f} ms  CPU "
                          f"{cpu_ms:>6.0f} ms  in SQL {in_sql[0] * 1000:>6.0f} ms", flush=True)
    wall = time.perf_counter() - wall_before
    others = (machine_busy_s() - busy_before) - (_own_cpu() - own_before)
    print(f"other processes kept {max(0.0, others) / wall / (os.cpu_count() or 1):.0%} "
          f"of the machine's {os.cpu_count()} cores busy")
    for (role, page), ms in worst.items():
        print(f"worst {role:<9} {page:<8} {ms:>7.0f} ms")


def keep_funnel(settings: Any, kept: bool) -> None:
    """Keep the funnel's events for the data (``kept``), or remove any kept before."""
    import shutil

    from saleskpi.service.core import SalesKpiService

    shutil.rmtree(settings.kept_funnel_dir, ignore_errors=True)
    if kept:
        cpu, started = time.process_time(), time.perf_counter()
        SalesKpiService(settings).keep_funnel()
        print(f"kept the funnel's events in {time.perf_counter() - started:.1f} s "
              f"(CPU {time.process_time() - cpu:.1f} s; the stage order learned too "
              "unless kept before)", flush=True)


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


if __name__ == "__main__":
    main()
