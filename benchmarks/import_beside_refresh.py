"""An import of another process while the server's refresh keeps the funnel's events.

After every write the server's background refresh writes every deal's ordered stage
entries into ``cache/funnel/`` (seconds at a big company: 3-4 s at 10.6M activities,
10-12 s at a million deals). A DuckDB file is one process's to write only while no
other has it open, so an import that arrived meanwhile waited for that build. Now the
build stops when a writer of another process waits (``FactStore.giving_way``).

Per round, on a copy of a workspace built by ``benchmarks/scorecard.py`` (``--workspace``):

1. the build alone (``SalesKpiService.keep_funnel``, its folder deleted before);
2. ``saleskpi import`` of a one-rep folder in a fresh process, nothing else running;
3. the build started again in a thread of this process and, ``--after`` seconds into
   it, the same import: how long the import took, and when the build ended.

``--src`` runs this process (the build's side) on another version of the code (e.g.
``git archive <commit> src | tar -x -C <dir>``); the import is the installed
``saleskpi`` either way.

    python benchmarks/import_beside_refresh.py --workspace ws170 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

BUILDER = textwrap.dedent("""
    import json, os, shutil, subprocess, sys, threading, time
    from pathlib import Path
    from saleskpi.domain.settings import Settings
    from saleskpi.service.core import SalesKpiService

    workspace, cli = Path(sys.argv[1]), sys.argv[2]
    after, rounds = float(sys.argv[3]), int(sys.argv[4])
    folder = workspace.parent / "one-rep"
    folder.mkdir(exist_ok=True)

    def imported(n):
        (folder / "reps.csv").write_text(f"id,name,team\\nx{n},Extra {n},North\\n")
        started = time.monotonic()
        done = subprocess.run([cli, "-w", str(workspace), "import", str(folder),
                               "--source", "extra"], capture_output=True, text=True,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        assert done.returncode == 0, done.stderr
        return time.monotonic() - started

    def fresh():
        shutil.rmtree(workspace / "cache" / "funnel", ignore_errors=True)
        return SalesKpiService(Settings(workspace=workspace))

    for n in range(rounds):
        service = fresh()
        started = time.monotonic()
        assert service.keep_funnel()
        build = time.monotonic() - started
        shutil.rmtree(workspace / "cache" / "funnel", ignore_errors=True)
        alone = imported(f"a{n}")
        service = fresh()
        ended = {}

        def keep():
            begun = time.monotonic()
            ended["built"] = service.keep_funnel()
            ended["after"] = time.monotonic() - begun

        thread = threading.Thread(target=keep)
        thread.start()
        time.sleep(after)
        beside = imported(f"b{n}")
        thread.join()
        print(json.dumps({"round": n, "build_alone_s": round(build, 2),
                          "import_alone_s": round(alone, 2),
                          "import_beside_build_s": round(beside, 2),
                          "build_ended_after_s": round(ended["after"], 2),
                          "build_finished": ended["built"]}), flush=True)
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, required=True,
                        help="a workspace built by benchmarks/scorecard.py (copied, not changed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--after", type=float, default=1.0,
                        help="seconds into the build at which the import starts")
    parser.add_argument("--src", type=Path, help="run the build from this src folder")
    args = parser.parse_args()
    cli = shutil.which("saleskpi")
    if cli is None:
        sys.exit("saleskpi is not installed in this environment")
    with tempfile.TemporaryDirectory(prefix="saleskpi-beside-") as tmp:
        workspace = Path(tmp) / "ws"
        shutil.copytree(args.workspace, workspace)
        env = dict(os.environ)
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        print(f"code: {args.src or 'installed'}; workspace: a copy of {args.workspace}")
        subprocess.run([sys.executable, "-c", BUILDER, str(workspace), cli, str(args.after),
                        str(args.rounds)], env=env, check=True)


if __name__ == "__main__":
    main()
