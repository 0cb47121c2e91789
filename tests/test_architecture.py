"""The layer contracts hold on the code, and they do catch what they are meant to catch.

The contracts live in pyproject.toml ([tool.importlinter]); CI runs ``lint-imports``.
Here they run on the real package and on copies of it with one bad import added,
so a contract that silently stopped checking would fail this test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "saleskpi"


def lint_imports(src: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts on the package under ``src``."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    env = dict(os.environ, PYTHONPATH=str(src))
    return subprocess.run([lint, "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """The package copied to ``tmp_path/src`` with ``line`` appended to ``module``."""
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "saleskpi",
                    ignore=shutil.ignore_patterns("__pycache__", "locales", "templates"))
    path = src / "saleskpi" / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return src


def test_the_package_keeps_its_contracts(tmp_path: Path) -> None:
    result = lint_imports(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    # A surface reaching below the service.
    ("surfaces/cli/commands/kpis", "import saleskpi.store.analytics  # noqa", "only through"),
    ("surfaces/web/overview", "import saleskpi.engine.scorecard  # noqa", "only through"),
    ("surfaces/api/routes", "import saleskpi.sources.connectors.sync  # noqa", "only through"),
    # A lower layer importing a higher one (and so a cycle).
    ("engine/compile", "import saleskpi.service.core  # noqa", "Layers"),
    ("catalog/load", "import saleskpi.engine.views  # noqa", "Layers"),
    # A cycle between siblings inside one layer.
    ("surfaces/api/routes", "import saleskpi.surfaces.server  # noqa", "No import cycles"),
])
def test_a_bad_import_breaks_a_contract(tmp_path: Path, module: str, line: str,
                                        broken: str) -> None:
    result = lint_imports(copy_with(tmp_path, module, line), tmp_path)
    assert result.returncode != 0, result.stdout
    broken_lines = [ln for ln in result.stdout.splitlines() if "BROKEN" in ln]
    assert any(broken in ln for ln in broken_lines), result.stdout
