"""Shared fixtures: run the CLI as a user would, in a fresh workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SRC_DIR = Path(__file__).resolve().parents[1] / "src"


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as one JSON object (fails the test with the output if it is not)."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            pytest.fail(
                f"stdout of {' '.join(self.args)} is not JSON ({exc}); exit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout[:3000]}\n--- stderr ---\n{self.stderr[-3000:]}"
            )


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(workspace, "import", path, ...)`` runs ``python -m saleskpi`` in a subprocess."""

    def _run(workspace: Path, *args: object, timeout: float = 900) -> CliResult:
        env = dict(os.environ, SALESKPI_LANG="en")
        # Works from a plain checkout too (the package need not be pip-installed).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SRC_DIR), env.get("PYTHONPATH", "")) if p
        )
        argv = [sys.executable, "-m", "saleskpi", "--workspace", str(workspace)]
        argv += [str(a) for a in args]
        proc = subprocess.run(
            argv, capture_output=True, text=True, encoding="utf-8", env=env, timeout=timeout
        )
        return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)

    return _run


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace folder (the CLI creates its files there)."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws
