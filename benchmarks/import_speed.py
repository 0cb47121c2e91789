"""Import speed: `saleskpi import` of canonical CSV files against DuckDB's own read_csv.

Writes the demo company's canonical CSV files (``saleskpi.sources.demo``) at each
``--size`` (34: ~2M activities, 170: ~10M), then in rounds, each approach in a fresh
process one after the other:

- ``read_csv``: DuckDB reads every file into a table of a new database file (the
  reference: ``CREATE TABLE <entity> AS SELECT * FROM read_csv(<file>)``);
- ``import``: ``saleskpi import <folder>`` (the product's command, start-up included)
  into an empty workspace;
- ``again``: the same import into the same workspace (nothing changes);
- ``python`` (``--python-path``): the import with the fast path off, as before it;
- ``base import`` and ``base again`` (``--baseline-src <folder>``): the same two imports
  by another version of the code (e.g. ``git archive <commit> src | tar -x -C <dir>``),
  into a workspace of their own, in the same round.

Prints wall time, peak memory (max RSS) and the ratio to ``read_csv`` within each round,
and the CPU seconds other processes used meanwhile (the machine is shared).

    python benchmarks/import_speed.py --sizes 34 170 --rounds 2
    python benchmarks/import_speed.py --sizes 2 --rounds 1 --python-path   # a quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine_load import machine_busy_s

END = dt.date(2026, 1, 1)
SEED = 42
TIMEZONE = "Europe/Kyiv"
MARKER = ".import-speed.json"

REFERENCE = """
import duckdb, sys
from pathlib import Path
con = duckdb.connect(sys.argv[2])
for path in sorted(Path(sys.argv[1]).glob("*.csv")):
    con.execute(f'CREATE TABLE "{path.stem}" AS SELECT * FROM read_csv(?)', [str(path)])
con.close()
"""

EMPTY_STORE = """
from saleskpi.domain.settings import Settings
from saleskpi.store.backend import open_store
open_store(Settings()).close()
"""

PYTHON_PATH = """
import sys
from pathlib import Path
from saleskpi.domain.settings import Settings
from saleskpi.sources.ingest.run import import_path
settings = Settings(workspace=Path(sys.argv[2]), timezone=sys.argv[3])
report = import_path(settings, Path(sys.argv[1]), fast=False)
assert report.ok, report.errors[:5]
"""


def write_company(size: float, folder: Path) -> dict[str, int]:
    """The demo company as canonical CSV files (dates as dates, times in UTC)."""
    marker = folder / MARKER
    wanted = {"size": size, "seed": SEED, "end": END.isoformat()}
    if marker.exists() and json.loads(marker.read_text())["made"] == wanted:
        return dict(json.loads(marker.read_text())["rows"])
    import duckdb

    from saleskpi.domain.schema import ENTITIES, ColumnType
    from saleskpi.sources.demo import generate_company

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    frames = generate_company(size, seed=SEED, end=END, timezone=TIMEZONE)
    con = duckdb.connect()
    rows = {}
    for name, frame in frames.items():
        dates = {c.name for c in ENTITIES[name].columns if c.type is ColumnType.DATE}
        columns = ", ".join(f'CAST("{c}" AS DATE) AS "{c}"' if c in dates else f'"{c}"'
                            for c in frame.columns)
        con.register("frame", frame)
        con.execute(f"COPY (SELECT {columns} FROM frame) TO '{folder / (name + '.csv')}' "
                    "(HEADER, DELIMITER ',', TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S')")
        con.unregister("frame")
        rows[name] = len(frame)
    marker.write_text(json.dumps({"made": wanted, "rows": rows}))
    return rows


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak memory in MiB, CPU seconds) of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"{' '.join(command)} failed:\n"
                         f"{process.stderr.read().decode() if process.stderr else ''}")
    peak_mib = usage.ru_maxrss / (1024 if sys.platform != "darwin" else 1024 * 1024)
    return wall, peak_mib, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[34, 170])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) /
                        "saleskpi-import-speed", help="where the CSV files and workspaces go")
    parser.add_argument("--python-path", action="store_true",
                        help="also time the import with the fast path off")
    parser.add_argument("--baseline-src", type=Path,
                        help="also time the imports by the code in this src folder")
    args = parser.parse_args()
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    saleskpi = [sys.executable, "-m", "saleskpi"]
    results = []
    for size in args.sizes:
        folder = args.dir / f"csv-{size:g}"
        print(f"size {size:g}: writing canonical CSV files to {folder} ...", flush=True)
        rows = write_company(size, folder)
        megabytes = sum(p.stat().st_size for p in folder.glob("*.csv")) / 2**20
        print(f"  {rows['activities']:,} activities, {rows['deals']:,} deals, "
              f"{rows['leads']:,} leads; {megabytes:,.0f} MiB of CSV", flush=True)
        for round_no in range(1, args.rounds + 1):
            work = args.dir / "work"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            workspace = work / "workspace"
            busy, started = machine_busy_s(), time.perf_counter()
            measured: dict[str, tuple[float, float, float]] = {}
            measured["read_csv"] = timed(
                [sys.executable, "-c", REFERENCE, str(folder), str(work / "ref.duckdb")], env)
            run_env = {**env, "SALESKPI_WORKSPACE": str(workspace),
                       "SALESKPI_TIMEZONE": TIMEZONE}
            # An empty store, as any earlier import or `saleskpi demo` leaves one (see
            # benchmarks/README.md for a workspace's very first import).
            subprocess.run([sys.executable, "-c", EMPTY_STORE], env=run_env, check=True)
            measured["import"] = timed([*saleskpi, "import", str(folder)], run_env)
            measured["again"] = timed([*saleskpi, "import", str(folder)], run_env)
            if args.baseline_src is not None:
                base_env = {**run_env, "SALESKPI_WORKSPACE": str(work / "base-workspace"),
                            "PYTHONPATH": str(args.baseline_src.resolve())}
                subprocess.run([sys.executable, "-c", EMPTY_STORE], env=base_env, check=True)
                measured["base import"] = timed([*saleskpi, "import", str(folder)], base_env)
                measured["base again"] = timed([*saleskpi, "import", str(folder)], base_env)
            if args.python_path:
                slow = work / "python-path"
                slow.mkdir()
                measured["python"] = timed([sys.executable, "-c", PYTHON_PATH, str(folder),
                                            str(slow), TIMEZONE], env)
            elapsed = time.perf_counter() - started
            # CPU the machine spent on anything but the timed processes.
            others = max(0.0, machine_busy_s() - busy - sum(c for *_x, c in measured.values()))
            reference, _peak, reference_cpu = measured["read_csv"]
            line = ", ".join(f"{name} {wall:.1f} s ({wall / reference:.1f}x; CPU {cpu:.1f} s, "
                             f"{cpu / reference_cpu:.1f}x; {peak:,.0f} MiB)"
                             for name, (wall, peak, cpu) in measured.items())
            print(f"  round {round_no}: {line}; other processes ~{others / elapsed:.1f} "
                  f"cores busy", flush=True)
            results.append({"size": size, "round": round_no, "load": others / elapsed,
                            **{k: {"s": w, "mib": m, "cpu_s": c}
                               for k, (w, m, c) in measured.items()}})
        mine = [r for r in results if r["size"] == size]
        ratio = statistics.median(r["import"]["s"] / r["read_csv"]["s"] for r in mine)
        again = statistics.median(r["again"]["s"] / r["read_csv"]["s"] for r in mine)
        print(f"  median ratio to read_csv: import {ratio:.1f}x, again {again:.1f}x", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"results": results, "benchmark_peak_kib": peak}))


if __name__ == "__main__":
    main()
