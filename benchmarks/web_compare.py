"""The comparison page's own Python time, with every scorecard cached.

Usage::

    python benchmarks/web_compare.py [--workspace /tmp/saleskpi-compare] [--repeat 7]

Builds (once; a marker file records it) a workspace with the demo company's 458 reps
(``generate_company(525, months=1)``: the reps of the 1M-deal company of
docs/web-latency.md, one month of their data, so it builds in about a minute), signs a
head of sales in (in-process ``TestClient``, no network) and times ``/compare`` for the
whole range: once cold, then ``--repeat`` times with every scorecard in the cache
(``cache_seconds`` a day). What is left is the page's Python: building the table's
cells, formatting the numbers, Jinja; the report splits the cached time into the
comparison (``saleskpi.service.compare``, scorecards from the cache), building the table and
rendering the template.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

SIZE = 525.0
MONTHS = 1
SEED = 42
END = dt.date(2026, 11, 1)
MARKER = ".saleskpi-web-compare.json"
PASSWORD = "bench-password-1"
VIEWS = {"whole range, page 1": {}, "sorted by revenue": {"sort": "revenue"},
         "last page": {"page": "10"},
         # Every rep's cells built (and formatted), without Jinja: the Formatter's share.
         "CSV download": {"export": "comparison", "format": "csv"}}


def build(workspace: Path) -> None:
    from saleskpi.domain.settings import Settings, save_workspace_settings
    from saleskpi.service.auth import add_user
    from saleskpi.sources.demo import generate_company
    from saleskpi.sources.ingest.run import import_frames

    wanted = {"size": SIZE, "months": MONTHS, "seed": SEED, "end": END.isoformat()}
    marker = workspace / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return
    workspace.mkdir(parents=True, exist_ok=True)
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="USD")
    settings = Settings(workspace=workspace)
    started = time.perf_counter()
    frames = generate_company(SIZE, seed=SEED, end=END, months=MONTHS,
                              timezone=settings.timezone, currency=settings.currency)
    report = import_frames(settings, frames, source="demo")
    assert report.ok, report.errors
    add_user(settings, "bench_head", PASSWORD, "head")
    print(f"built {len(frames['reps'])} reps in {time.perf_counter() - started:.0f} s")
    marker.write_text(json.dumps(wanted))


def time_parts() -> dict[str, list[float]]:
    """Wrap the compare page's steps to record their times (ms), by step."""
    from saleskpi.surfaces.web import deps, rankings

    spent: dict[str, list[float]] = {"compare": [], "table": [], "render": []}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name].append((time.perf_counter() - started) * 1000)
        return wrapper

    rankings.compare = timed("compare", rankings.compare)  # type: ignore[assignment]
    rankings.comparison_table = timed(  # type: ignore[assignment]
        "table", rankings.comparison_table)
    deps.render = timed("render", deps.render)  # type: ignore[assignment]
    return spent


def sign_in(client: TestClient) -> None:
    form = client.get("/login").text
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    assert match
    response = client.post("/login", follow_redirects=False, data={
        "username": "bench_head", "password": PASSWORD, "csrf": match.group(1)})
    assert response.status_code == 303, response.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/saleskpi-compare"))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    build(args.workspace)

    from saleskpi.domain.settings import Settings
    from saleskpi.surfaces.server import create_app

    settings = Settings(workspace=args.workspace, cache_seconds=86_400)
    spent = time_parts()
    client = TestClient(create_app(settings))
    sign_in(client)
    for name, params in VIEWS.items():
        for times in spent.values():
            times.clear()
        started = time.perf_counter()
        first = client.get("/compare", params=params)
        cold = time.perf_counter() - started
        assert first.status_code == 200, first.text[:300]
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.get("/compare", params=params)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200
        rows = (response.text.count('data-row="item"') if "export" not in params
                else response.text.count("\n") - 3)  # less the header, average, total
        parts = ", ".join(f"{part} {statistics.median(ms[-args.repeat:]):.0f}"
                          for part, ms in spent.items() if ms)
        print(f"{name}: cold {cold * 1000:.0f} ms; cached: median "
              f"{statistics.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms "
              f"({rows} rep rows, {len(response.content) / 1024:.0f} KiB); "
              f"median ms of {parts}")


if __name__ == "__main__":
    main()
