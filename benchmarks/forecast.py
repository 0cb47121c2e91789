"""Forecast benchmark: the forecast and its backtest on the Maven CRM export.

Usage::

    python benchmarks/forecast.py [--repeat 3] [--workspace DIR]

Imports tests/data/maven-crm (8,800 opportunities) into a temporary workspace (or
reuses ``--workspace``), then times, in this process, ``--repeat`` times each:

- the company's forecast as of 2017-09-15 (1000 futures, 2,300 open deals),
- the monthly backtest (7 months replayed, 500 futures each).

Prints wall and CPU seconds (min, median, max): on a shared machine the CPU time is
the figure to quote (docs/forecast.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService
from saleskpi.views.base import LOCAL
from saleskpi.views.forecast import BacktestParams, ForecastParams, backtest, forecast

MAVEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "maven-crm"


def timed(run: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workspace", type=Path)
    args = parser.parse_args()
    workspace = args.workspace or Path(tempfile.mkdtemp()) / "ws"
    settings = Settings(workspace=workspace)
    service = SalesKpiService(settings)
    if not settings.analytics_path.exists():
        report = service.import_path(MAVEN, mapping="maven-crm", source=None, dry_run=False)
        assert report.ok, report.errors
    asks: dict[str, Callable[[], object]] = {
        "forecast as of 2017-09-15": lambda: forecast(
            service, LOCAL, ForecastParams(at=dt.date(2017, 9, 15))),
        "monthly backtest": lambda: backtest(service, LOCAL, BacktestParams()),
    }
    print("what | wall s (min / median / max) | CPU s (min / median / max)")
    for name, run in asks.items():
        wall, cpu = timed(run, args.repeat)
        print(f"{name} | {spread(wall)} | {spread(cpu)}")


if __name__ == "__main__":
    main()
