"""Rollups benchmark: questions answered from the rollups against the raw rows.

Usage::

    python benchmarks/rollups.py [--size 10] [--workspace DIR] [--rounds 3]

1. Builds (or reuses) a DuckDB workspace holding the demo company at ``--size``
   (170 gives about 1M leads and 10M activities); the import builds the rollups.
2. Each round runs every question twice back to back, from the rollups and from
   the raw rows (``Engine(use_rollups=...)``), each with its SQL already compiled
   (a first visit pays the database's work, not Ibis's), and checks both give the
   same numbers. Ratios are per round; the machine's load is recorded.
3. Times one sync-like write (the latest 1% of the activities moved a day and to
   another rep) with and without rollup maintenance, each in its own transaction that
   is rolled back, so both write the same rows.

See docs/benchmarks.md ("Rollups").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from machine_load import machine_busy_s
from saleskpi.domain.query import KpiQuery, Scorecard
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings
from saleskpi.engine.scorecard import Engine
from saleskpi.service.core import SalesKpiService
from saleskpi.service.demo import build_demo
from saleskpi.store import rollups
from saleskpi.store.backend import open_store
from saleskpi.store.journal import StateChanges
from saleskpi.store.loader import Loader

END = dt.date(2026, 11, 1)
SCORECARD = ("leads", "calls", "meetings", "emails", "deals_won", "revenue", "win_rate",
             "average_deal_size", "pipeline_volume", "pipeline_value", "time_to_close",
             "lead_to_opportunity", "call_to_meeting_conversion", "lead_response_time",
             "speed_to_lead_5min", "sales_cycle_length")
ACTIVITY = ("calls", "meetings", "emails", "call_to_meeting_conversion")


def questions(sources: list[str], teams: list[str]) -> dict[str, KpiQuery]:
    quarter = {"start": dt.date(2026, 7, 1), "end": dt.date(2026, 9, 30)}
    return {
        "scorecard: 16 KPIs by rep by month": KpiQuery(SCORECARD, by=("rep",), period="month"),
        "team by week, one source": KpiQuery(ACTIVITY, by=("team",), period="week",
                                             where=(("source", (sources[0],)),), **quarter),
        "rep by day, one team, a quarter": KpiQuery(
            ("calls", "emails", "deals_won", "revenue"), by=("rep",), period="day",
            where=(("team", (teams[0],)),), **quarter),
        "segment by month, a year": KpiQuery(
            ("leads", "deals_won", "revenue", "win_rate"), by=("segment",), period="month",
            start=dt.date(2025, 11, 1), end=dt.date(2026, 10, 31)),
        "source by quarter, all time": KpiQuery(("leads", "calls", "revenue"), by=("source",),
                                                period="quarter"),
    }


def values(card: Scorecard) -> dict[tuple[Any, ...], float | None]:
    return {(tuple(r.keys.items()), k): v.value for r in [*card.rows, *card.totals]
            for k, v in r.values.items()}


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=10)
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/saleskpi-bench-rollups"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(workspace=args.workspace)
    if not (args.workspace / "analytics.duckdb").exists():
        spent, _company = timed(lambda: build_demo(settings, size=args.size, seed=1, end=END))
        print(f"demo built in {spent:.1f} s")
    service = SalesKpiService(Settings(workspace=args.workspace))
    settings = service.settings
    with open_store(settings) as store:
        spent, built = timed(lambda: rollups.ensure(store, settings))
        print(f"rollups ensured in {spent:.2f} s ({len(built)} built)")
        counts = {t: store.count(t) for t in ("activities", "leads", "deals")}
        counts |= {s.name: store.count(s.name) for s in rollups.kept(store).values()}
    print(json.dumps(counts))
    with open_store(settings, read_only=True) as store:
        sources = sorted(str(s) for s in store.sources())
        teams = sorted(store.teams())
    asked = questions(sources, teams)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in asked}
    busy_before, wall_before = machine_busy_s(), time.perf_counter()
    with open_store(settings, read_only=True) as store:
        def engine(use: bool) -> Engine:
            return Engine(store, service.catalog, timezone=settings.timezone,
                          currency=settings.currency, use_rollups=use)

        for query in asked.values():  # compile every shape once, both ways
            engine(True).scorecard(query)
            engine(False).scorecard(query)
        for _round in range(args.rounds):
            for name, query in asked.items():
                rolled_s, rolled = timed(lambda q=query: engine(True).scorecard(q))
                raw_s, raw = timed(lambda q=query: engine(False).scorecard(q))
                left, right = values(raw), values(rolled)
                assert left.keys() == right.keys(), name
                for key, a in left.items():
                    b = right[key]
                    assert (a is None) == (b is None) and (
                        a is None or b is None or math.isclose(a, b, rel_tol=1e-9,
                                                               abs_tol=1e-9)), (name, key, a, b)
                results[name].append((rolled_s, raw_s))
    wall = time.perf_counter() - wall_before
    load = (machine_busy_s() - busy_before) / wall
    print(f"machine load during the questions: {load:.2f} busy cores of 2")
    print("| question | rollups (median s) | raw rows (median s) | raw ÷ rollups (per-round "
          "median) |")
    for name, runs in results.items():
        ratio = statistics.median(raw / rolled for rolled, raw in runs)
        print(f"| {name} | {statistics.median(r for r, _ in runs):.3f} | "
              f"{statistics.median(r for _, r in runs):.3f} | {ratio:.1f}× |")
    write_cost(settings, args.rounds)


def write_cost(settings: Settings, rounds: int) -> None:
    """A batch moving the latest 1% of the activities, with and without rollup upkeep."""
    timings: list[tuple[float, float]] = []
    with open_store(settings) as store:
        kept = rollups.kept(store)
        total = store.count("activities")
        moved = max(1, total // 100)
        batch = (f"SELECT id, type, (SELECT min(id) FROM reps) AS rep_id, "
                 f"occurred_at + INTERVAL 1 DAY AS occurred_at, lead_id, deal_id, account_id, "
                 f"direction, outcome, duration_s, selling, datasource, custom, 0 AS _row, "
                 f"'bench' AS _file "
                 f"FROM activities ORDER BY occurred_at DESC LIMIT {moved}")
        for _round in range(rounds):
            for maintained in (True, False):
                store.con.execute(f"CREATE OR REPLACE TEMP TABLE stage_activities AS {batch}")
                report = ImportReport(source="demo")
                loader = Loader(store, "demo", report)
                loader.staged = ["activities"]
                report.entities["activities"] = loader._count(ENTITIES["activities"])
                original = rollups.kept
                if not maintained:
                    rollups.kept = lambda _store: {}  # type: ignore[assignment]
                try:
                    store.con.execute("BEGIN TRANSACTION")
                    started = time.perf_counter()
                    loader.write_staged(StateChanges())
                    spent = time.perf_counter() - started
                    store.con.execute("ROLLBACK")
                finally:
                    rollups.kept = original  # type: ignore[assignment]
                    store.con.execute("DROP TABLE IF EXISTS stage_activities")
                if maintained:
                    timings.append((spent, 0.0))
                else:
                    timings[-1] = (timings[-1][0], spent)
        print(f"write of {moved} moved activities (of {total}), {len(kept)} rollups: "
              f"with maintenance {statistics.median(t for t, _ in timings):.2f} s, without "
              f"{statistics.median(t for _, t in timings):.2f} s, ratio "
              f"{statistics.median(t / u for t, u in timings):.2f}×")


if __name__ == "__main__":
    main()
