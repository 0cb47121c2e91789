"""The funnel: the engine's Ibis expressions against the hand-written DuckDB SQL they replaced.

    python benchmarks/funnel.py [--size 170] [--workspace DIR] [--repeat 5] [--json FILE]

1. Builds (or reuses) the demo company at ``--size``, as ``scorecard.py`` does (the
   same workspace, marker and options).
2. Asks five funnel questions (the team; by rep; by rep over a quarter, as of its
   end; one team; by rep over the last month, as of its end: the funnel page's) of
   the engine (``saleskpi.engine.funnel.compute_funnel``) and of
   the hand-written SQL (``funnel_reference_sql.py``: the funnel before it became
   Ibis expressions), on one read-only store. Each approach first answers every
   question once cold (the engine compiles its SQL: the workspace's compiled SQL is
   deleted first), then ``--repeat`` rounds time each question with both approaches,
   alternating which goes first.
3. Checks that both give the same report (floats to a relative 1e-9) and prints the
   median time per question and approach, and the engine ÷ hand-written ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from machine_load import machine_busy_s
from scorecard import DEFAULT_END, analytics_path, build_workspace, say

QUESTIONS: dict[str, dict[str, Any]] = {
    "team": {},
    "by rep": {"by_rep": True},
    "by rep, Q3, as of its end": {"by_rep": True, "start": dt.date(2026, 7, 1),
                                  "end": dt.date(2026, 9, 30), "as_of": dt.date(2026, 9, 30)},
    "one team": {"team": True},
    # The funnel page's question: the last full month before the data's end, by rep.
    "by rep, last month": {"by_rep": True, "start": dt.date(2026, 10, 1),
                           "end": dt.date(2026, 10, 31),
                           "as_of": dt.date(2026, 10, 31)},
}


def _same(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two reports (``to_dict()``) differ; floats to a relative 1e-9."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _same(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, int | float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=float, default=170)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workspace", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    workspace = args.workspace or Path(tempfile.gettempdir()) / f"saleskpi-bench-{args.size:g}"
    workspace.mkdir(parents=True, exist_ok=True)
    build_workspace(workspace, args.size, args.seed, DEFAULT_END)

    import funnel_reference_sql as reference
    import saleskpi.engine.funnel as engine_funnel
    from saleskpi.domain.funnel import FunnelOptions
    from saleskpi.domain.query import Scope
    from saleskpi.domain.settings import Settings
    from saleskpi.store.analytics import AnalyticsStore

    settings = Settings(workspace=workspace)
    shutil.rmtree(settings.compiled_sql_dir, ignore_errors=True)
    now = dt.datetime.combine(DEFAULT_END, dt.time())
    store = AnalyticsStore(analytics_path(workspace), read_only=True)
    team = store.fetch("SELECT team FROM reps WHERE team IS NOT NULL ORDER BY team LIMIT 1")[0][0]
    counts = {t: store.count(t) for t in ("deals", "stage_changes")}
    say(f"Store: {counts['deals']:,} deals, {counts['stage_changes']:,} stage changes")

    def options(question: str) -> FunnelOptions:
        asked = dict(QUESTIONS[question])
        if asked.pop("team", False):
            asked["where"] = (("team", (team,)),)
        return FunnelOptions(**asked)

    approaches: dict[str, Callable[[FunnelOptions], Any]] = {
        "engine": lambda o: engine_funnel.compute_funnel(store, settings, Scope(), o, now=now),
        "hand-written SQL": lambda o: reference.compute_funnel(store, settings, Scope(), o,
                                                               now=now),
    }

    def timed(approach: str, question: str) -> tuple[float, float, Any]:
        cpu = time.process_time()
        start = time.perf_counter()
        report = approaches[approach](options(question))
        return time.perf_counter() - start, time.process_time() - cpu, report

    results: dict[str, Any] = {"size": args.size, "counts": counts, "cold": {}, "times": {},
                               "cpu": {}, "differences": {}}
    say("Cold (the first answer in the process; the engine compiles its SQL):")
    for approach in approaches:
        total = 0.0
        for question in QUESTIONS:
            elapsed, _cpu, _report = timed(approach, question)
            total += elapsed
            results["cold"].setdefault(approach, {})[question] = elapsed
        say(f"  {approach:<17} {total:6.2f} s for the {len(QUESTIONS)} questions")

    machine_start, own_start, wall_start = machine_busy_s(), time.process_time(), time.time()
    for index in range(args.repeat):
        order = list(approaches) if index % 2 == 0 else list(reversed(approaches))
        line = []
        for question in QUESTIONS:
            reports = {}
            for approach in order:
                elapsed, cpu, reports[approach] = timed(approach, question)
                results["times"].setdefault(approach, {}).setdefault(question, []).append(elapsed)
                results["cpu"].setdefault(approach, {}).setdefault(question, []).append(cpu)
            diffs = _same(reports["engine"].to_dict(), reports["hand-written SQL"].to_dict())
            if diffs:
                results["differences"][question] = diffs[:20]
            line.append(f"{question}: " + " / ".join(
                f"{results['times'][a][question][-1]:.2f}" for a in approaches))
        say(f"Round {index + 1}/{args.repeat} (engine / hand-written s): " + "; ".join(line))
    others = (machine_busy_s() - machine_start) - (time.process_time() - own_start)
    load = max(0.0, others / ((os.cpu_count() or 1) * (time.time() - wall_start)))
    results["background_load"] = load

    say("")
    say("Medians over the rounds; CPU is this process's (DuckDB's threads included): on a")
    say("busy machine it says more than the wall time, which waits for a core.")
    say(f"{'question':<28} {'engine s':>9} {'hand-written s':>15} {'engine ÷ SQL':>13} "
        f"{'CPU s: engine':>14} {'hand-written':>13} {'engine ÷ SQL':>13}")
    ratios, cpu_ratios = [], []
    for question in QUESTIONS:
        wall = {a: results["times"][a][question] for a in approaches}
        cpu = {a: results["cpu"][a][question] for a in approaches}
        within = statistics.median(e / s for e, s in zip(
            wall["engine"], wall["hand-written SQL"], strict=True))
        cpu_within = statistics.median(e / s for e, s in zip(
            cpu["engine"], cpu["hand-written SQL"], strict=True))
        ratios.append(within)
        cpu_ratios.append(cpu_within)
        say(f"{question:<28} {statistics.median(wall['engine']):9.2f} "
            f"{statistics.median(wall['hand-written SQL']):15.2f} {within:12.2f}× "
            f"{statistics.median(cpu['engine']):14.2f} "
            f"{statistics.median(cpu['hand-written SQL']):13.2f} {cpu_within:12.2f}×")
    total = {a: sum(statistics.median(t) for t in results["times"][a].values())
             for a in approaches}
    total_cpu = {a: sum(statistics.median(t) for t in results["cpu"][a].values())
                 for a in approaches}
    ratio = total["engine"] / total["hand-written SQL"]
    cpu_ratio = total_cpu["engine"] / total_cpu["hand-written SQL"]
    results |= {"median_total_s": total, "ratio": ratio, "ratios_within_rounds": ratios,
                "median_total_cpu_s": total_cpu, "cpu_ratio": cpu_ratio,
                "cpu_ratios_within_rounds": cpu_ratios}
    say(f"{'all five (sum of medians)':<28} {total['engine']:9.2f} "
        f"{total['hand-written SQL']:15.2f} {ratio:12.2f}× {total_cpu['engine']:14.2f} "
        f"{total_cpu['hand-written SQL']:13.2f} {cpu_ratio:12.2f}×")
    say(f"Other processes used {load:.0%} of the machine's CPU meanwhile"
        + (" (noisy: quote idle runs only)" if load > 0.15 else ""))
    if results["differences"]:
        say("The reports DIFFER:")
        for question, diffs in results["differences"].items():
            say(f"  {question}: " + "; ".join(diffs))
    else:
        say("Both give the same report for every question.")
    store.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if results["differences"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
