"""CLI start-up: how long a saleskpi command takes as a whole process.

Usage::

    python benchmarks/cli_startup.py [--runs 9] [--workspace DIR] [--baseline SRC] [--json FILE]

1. Builds (or reuses) the demo company (``saleskpi demo --quiet``, size 1: 20 reps,
   6k leads) in a temporary workspace.
2. Runs each command as a new process ``--runs`` times after one warm-up run, and
   prints the minimum, median and maximum wall time, the median CPU time (user +
   system, from the operating system's accounting of the finished process) and the
   peak memory:
   - ``saleskpi --help``
   - ``saleskpi kpi win_rate revenue --by team``, first: the workspace's compiled
     SQL deleted before each run, so the process compiles the queries (with Ibis)
   - the same, repeated: the SQL compiled by an earlier process is read from the
     workspace (``cache/sql/``)
   - ``saleskpi kpis``
3. Compares the medians with the goals: --help under 0.3 s, a repeated kpi under 0.6 s.

``--baseline SRC`` also times another checkout's ``src`` folder (e.g. ``git archive``
of an older commit) with the same installed libraries, in alternation with this one
(this, baseline, this, baseline...), and prints the median of the ratios of each
pair: how the "before" figures in docs/benchmarks.md were taken. On a shared
machine, quote medians and ratios; a wide min-max range means it was busy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from machine_load import machine_busy_s

KPI_ARGS = ("kpi", "win_rate", "revenue", "--by", "team")
GOALS = {"help": 0.3, "kpi (repeat)": 0.6}


@dataclass
class Timing:
    name: str
    command: str
    code: str  # "current" or "baseline"
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)

    def row(self) -> str:
        goal = GOALS.get(self.name) if self.code == "current" else None
        median = statistics.median(self.walls)
        verdict = "" if goal is None else f"< {goal} s {'met' if median < goal else 'NOT met'}"
        label = self.command + ("  [baseline]" if self.code == "baseline" else "")
        return (f"{label:<62} {min(self.walls):6.3f} {median:8.3f} {max(self.walls):6.3f} "
                f"{statistics.median(self.cpus):6.3f} {max(self.peaks):8.1f}  {verdict}")


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak resident MiB and exit code of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def measure(name: str, shown: str, argv: list[str], envs: dict[str, dict[str, str]],
            runs: int, before_each: Path | None = None) -> list[Timing]:
    """One timing per code version, their runs in alternation.

    ``before_each``: a folder deleted before every run (the compiled SQL, for a first run).
    """
    timings = {code: Timing(name, shown, code) for code in envs}
    for index in range(runs + 1):  # the first round warms the disk cache: not counted
        for code, env in envs.items():
            if before_each is not None:
                shutil.rmtree(before_each, ignore_errors=True)
            wall, cpu, peak, exit_code = run_once(argv, env)
            if index == 0:
                continue
            timing = timings[code]
            timing.walls.append(wall)
            timing.cpus.append(cpu)
            timing.peaks.append(peak)
            timing.exit_codes.append(exit_code)
    return list(timings.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="counted runs per command")
    parser.add_argument("--workspace", type=Path, help="reuse or build the demo here")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout's src folder, timed in alternation with this one")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args()

    env = dict(os.environ, SALESKPI_LANG="en")
    env.pop("SALESKPI_WORKSPACE", None)
    envs = {"current": env}
    if args.baseline is not None:
        envs["baseline"] = dict(env, PYTHONPATH=os.pathsep.join(
            p for p in (str(args.baseline.resolve()), env.get("PYTHONPATH", "")) if p))
    # The console script, as users run it (python -m saleskpi adds runpy's own time).
    # Against a baseline both run as ``python -m saleskpi``: the console script names one
    # version's entry module, which another version may not have.
    script = Path(sys.executable).with_name("saleskpi")
    saleskpi = ([str(script)] if script.exists() and args.baseline is None
                else [sys.executable, "-m", "saleskpi"])

    temporary = None
    workspace = args.workspace
    if workspace is None:
        temporary = Path(tempfile.mkdtemp(prefix="saleskpi-cli-"))
        workspace = temporary / "ws"
    try:
        if not (workspace / "analytics.duckdb").exists():
            started = time.perf_counter()
            subprocess.run([*saleskpi, "--workspace", str(workspace), "demo", "--quiet"],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            print(f"demo company built in {time.perf_counter() - started:.1f} s: {workspace}")
        compiled_sql = workspace / "cache" / "sql"
        ws = ["--workspace", str(workspace)]
        busy_before, clock_before = machine_busy_s(), time.monotonic()
        kpi = "saleskpi " + " ".join(KPI_ARGS)
        timings = [
            *measure("help", "saleskpi --help", [*saleskpi, "--help"], envs, args.runs),
            *measure("kpi (first)", kpi + "  (first)", [*saleskpi, *ws, *KPI_ARGS], envs,
                     args.runs, before_each=compiled_sql),
            *measure("kpi (repeat)", kpi + "  (repeat)", [*saleskpi, *ws, *KPI_ARGS], envs,
                     args.runs),
            *measure("kpis", "saleskpi kpis", [*saleskpi, *ws, "kpis"], envs, args.runs),
        ]
        elapsed = time.monotonic() - clock_before
        others = max(0.0, machine_busy_s() - busy_before - sum(sum(t.cpus) for t in timings))
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; {args.runs} runs per command after a warm-up"
          + (f"; baseline {args.baseline} in alternation" if args.baseline else ""))
    print(f"{'command (each run a new process)':<62} {'min s':>6} {'median s':>8} "
          f"{'max s':>6} {'CPU s':>6} {'peak MiB':>8}  goal")
    for t in timings:
        print(t.row())
        if any(t.exit_codes):
            print(f"  exit codes: {t.exit_codes}")
    if args.baseline is not None:
        print("\nthis ÷ baseline, median of the pairs' ratios (wall time):")
        for current, baseline in zip(timings[::2], timings[1::2], strict=True):
            ratios = [a / b for a, b in zip(current.walls, baseline.walls, strict=True)]
            print(f"  {current.command:<60} {statistics.median(ratios):.2f}")
    share = others / (elapsed * (os.cpu_count() or 1)) if elapsed else 0.0
    print(f"\nOther processes used {share:.0%} of the machine's CPU meanwhile"
          + (": the timings are noisy." if share > 0.15 else "."))
    if args.json is not None:
        args.json.write_text(json.dumps({"timings": [asdict(t) for t in timings],
                                         "others_cpu_share": share}, indent=2) + "\n",
                             encoding="utf-8")


if __name__ == "__main__":
    main()
