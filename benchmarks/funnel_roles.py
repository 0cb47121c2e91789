"""The funnel page's first question for a head of sales, a team lead and a rep, two code versions.

    python benchmarks/funnel_roles.py --workspace DIR [--base-src OTHER/src] [--rounds 3]
        [--from 2026-10-01 --to 2026-10-31] [--kept]

The question is the funnel page's (``surfaces/web/funnel.py``): by rep, from
``--from`` to ``--to`` (company days), the open pipeline as of ``--to``; the head
sees everyone, the lead the first team, the rep the first rep of that team. Each
round runs one fresh process per code version (this checkout's ``src``, and
``--base-src`` when given), alternating which goes first; each process learns the
stage order (timed apart: the server keeps it per data version), compiles the three
shapes (not timed: the server keeps compiled SQL in the workspace), then asks each
role once and prints wall and CPU milliseconds, and the share of the machine other
processes used meanwhile. The reports of both versions must be the same (floats to a
relative 1e-9); the script exits 1 when they differ.

``--kept``: this checkout's process first keeps every deal's events for the data (as
the server does after each write, ``saleskpi.service.kept_funnel``; timed apart,
built anew each round), and the head's question reads them. With ``--base-src`` set
to this checkout's own ``src``, that compares the kept events with the live query.

The workspace is opened read-only (its compiled SQL folder is written): use a copy
of a benchmark's workspace, e.g. ``web_latency.py --size 525 --build-only``'s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from funnel import _same
from machine_load import machine_busy_s

HERE = Path(__file__).resolve().parent
ROLES = ("head", "lead", "rep")


def ask(workspace: Path, start: dt.date, end: dt.date, kept: bool = False) -> dict[str, Any]:
    """In this process: the stage order, then each role's first funnel question."""
    from saleskpi.catalog.funnel import load_funnel_config
    from saleskpi.domain.funnel import FunnelOptions
    from saleskpi.domain.query import Scope
    from saleskpi.domain.settings import Settings
    from saleskpi.engine import funnel
    from saleskpi.engine.shape import FunnelShape
    from saleskpi.store.analytics import AnalyticsStore

    busy, own, started = machine_busy_s(), time.process_time(), time.time()
    settings = Settings(workspace=workspace)
    store = AnalyticsStore(settings.analytics_path, read_only=True)
    config = load_funnel_config(workspace)
    wall, cpu = time.perf_counter(), time.process_time()
    orders = funnel.stage_orders(store, config, stored=settings.compiled_sql_dir)
    out: dict[str, Any] = {"order_ms": (time.perf_counter() - wall) * 1000,
                           "order_cpu_ms": (time.process_time() - cpu) * 1000}
    team, rep = store.fetch("SELECT team, id FROM reps WHERE team IS NOT NULL "
                            "ORDER BY team, id LIMIT 1")[0]
    scopes = {"head": Scope(), "lead": Scope(teams=frozenset([team])),
              "rep": Scope(rep_ids=frozenset([rep]))}
    options = FunnelOptions(by_rep=True, start=start, end=end, as_of=end)
    funnel._fill_order(store, orders)
    for where in ((), (("team", 1),), (("rep", 1),)):  # compiled beforehand, as kept
        shape = FunnelShape("funnel", tuple(config.won_names()), tuple(config.lost_names()),
                            dims=tuple(d for d, _n in where), filter_arity=where,
                            has_start=True, has_end=True, by_rep=True)
        funnel.compiled(store, shape, currency=settings.currency, zone=settings.timezone,
                        stored=settings.compiled_sql_dir)
    now = dt.datetime.combine(end + dt.timedelta(days=2), dt.time())
    folder = None
    if kept:
        import shutil

        from saleskpi.service.kept_funnel import keep
        from saleskpi.store.backend import data_version

        shutil.rmtree(settings.kept_funnel_dir, ignore_errors=True)
        version = data_version(settings)
        funnel.kept_key(store, settings, config, orders, version)  # compiled, not timed
        wall, cpu = time.perf_counter(), time.process_time()
        folder = keep(settings, store, config, orders, version)
        out["keep_ms"] = (time.perf_counter() - wall) * 1000
        out["keep_cpu_ms"] = (time.process_time() - cpu) * 1000
        shape = FunnelShape("funnel", tuple(config.won_names()), tuple(config.lost_names()),
                            has_start=True, has_end=True, by_rep=True, kept=True)
        funnel.compiled(store, shape, currency=settings.currency, zone=settings.timezone,
                        stored=settings.compiled_sql_dir)
    for role in ROLES:
        wall, cpu = time.perf_counter(), time.process_time()
        report = funnel.compute_funnel(store, settings, scopes[role], options, now=now,
                                       config=config, orders=orders, kept=folder)
        out[role] = {"ms": (time.perf_counter() - wall) * 1000,
                     "cpu_ms": (time.process_time() - cpu) * 1000,
                     "report": report.to_dict()}
    store.close()
    others = (machine_busy_s() - busy) - (time.process_time() - own)
    out["others"] = max(0.0, others / ((os.cpu_count() or 1) * (time.time() - started)))
    return out


def run(src: Path, args: argparse.Namespace, kept: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--workspace", str(args.workspace), "--from",
         args.start.isoformat(), "--to", args.end.isoformat(), "--only",
         *(["--kept"] if kept else [])],
        env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the process of {src} failed:\n{done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--base-src", type=Path, help="another checkout's src to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--from", dest="start", type=dt.date.fromisoformat,
                        default=dt.date(2026, 10, 1))
    parser.add_argument("--to", dest="end", type=dt.date.fromisoformat,
                        default=dt.date(2026, 10, 31))
    parser.add_argument("--kept", action="store_true",
                        help="this checkout's head of sales reads the kept events")
    parser.add_argument("--only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(ask(args.workspace, args.start, args.end, args.kept), default=str))
        return
    versions = {"this": HERE.parent / "src"}
    if args.base_src:
        versions["base"] = args.base_src
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
    differ = False
    for index in range(args.rounds):
        order = list(versions) if index % 2 == 0 else list(reversed(versions))
        for name in order:
            result = run(versions[name], args, args.kept and name == "this")
            found[name].append(result)
            built = (f"kept in {result['keep_ms']:6.0f} ms ({result['keep_cpu_ms']:6.0f} CPU); "
                     if "keep_ms" in result else "")
            print(f"round {index + 1} {name:<5} order {result['order_ms']:7.0f} ms; {built}"
                  + "; ".join(f"{role} {result[role]['ms']:7.0f} ms "
                              f"({result[role]['cpu_ms']:6.0f} CPU)" for role in ROLES)
                  + f"; others {result['others']:.0%}", flush=True)
        if "base" in versions:
            for role in ROLES:
                diffs = _same(found["this"][-1][role]["report"],
                              found["base"][-1][role]["report"])
                if diffs:
                    differ = True
                    print(f"  {role}: the reports DIFFER: {'; '.join(diffs[:5])}")
    print("\nMedians (ms; CPU ms):")
    for name, results in found.items():
        print(f"  {name:<5} order {statistics.median(r['order_ms'] for r in results):7.0f} "
              f"({statistics.median(r['order_cpu_ms'] for r in results):6.0f}); "
              + "; ".join(f"{role} {statistics.median(r[role]['ms'] for r in results):7.0f} "
                          f"({statistics.median(r[role]['cpu_ms'] for r in results):6.0f})"
                          for role in ROLES))
    if "base" in versions:
        for role in ROLES:
            wall = statistics.median(t[role]["ms"] / b[role]["ms"]
                                     for t, b in zip(found["this"], found["base"], strict=True))
            cpu = statistics.median(t[role]["cpu_ms"] / b[role]["cpu_ms"]
                                    for t, b in zip(found["this"], found["base"], strict=True))
            print(f"  {role}: this ÷ base {wall:.2f}× wall, {cpu:.2f}× CPU (within rounds)")
        print("Both give the same reports." if not differ else "The reports DIFFER.")
    if differ:
        sys.exit(1)


if __name__ == "__main__":
    main()
