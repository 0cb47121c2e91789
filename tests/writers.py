"""Helpers of the tests where several writers and readers share one workspace: the
environment of a saleskpi subprocess, another process holding the store as its
writer, and waiting for what a subprocess says."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import SRC_DIR


def environment(**extra: str) -> dict[str, str]:
    """This process's environment for a subprocess that imports saleskpi from ``src``,
    in English (its messages are asserted), with ``extra`` set."""
    env = dict(os.environ, SALESKPI_LANG="en", **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC_DIR), env.get("PYTHONPATH", "")) if p)
    return env


@contextlib.contextmanager
def writing(workspace: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the workspace's store as its writer (an import in
    progress, on whichever backend the workspace names) until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; "
         "from saleskpi.domain.settings import Settings; "
         "from saleskpi.store.backend import open_store; "
         "s = open_store(Settings(workspace=Path(sys.argv[1]))); "
         "print('writing', flush=True); sys.stdin.read(); s.close()",
         str(workspace)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)


def wait_for_line(stream: object, text: str) -> str:
    """Read ``stream`` (a process's stderr) until a line holds ``text``; that line."""
    assert hasattr(stream, "readline")
    while True:
        line = stream.readline()
        assert line, f"the process ended without saying {text!r}"
        if text in line:
            return str(line)
