"""Shared fixtures: run the CLI as a user would, in a fresh workspace.

``run_cli`` runs a command in this process (Typer's test runner): fast, and what
most CLI tests need. ``run_cli_process`` runs ``python -m saleskpi`` as a new
process, for the few tests (marked ``process``) of what only a process shows:
start-up, exit codes, imports.

Tests marked ``slow`` (the browser, the exhaustive check of scoped scorecards: see
``SLOW_TESTS``, measured with ``--durations``) are left out by
``python -m pytest -m "not slow"``.
"""

from __future__ import annotations

import contextvars
import importlib.util
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.backends import BackendChoice
from tests.fakes.clickhouse_http import ClickHouseHttpServer
from tests.postgres_server import PostgresServer, binaries

SRC_DIR = Path(__file__).resolve().parents[1] / "src"

# Slow tests by module (every test in it) or by test function, marked here so
# that the test files themselves stay as they are.
SLOW_TESTS: dict[str, set[str] | None] = {
    "test_browser.py": None,  # Chromium: minutes
    # every KPI, scoped both ways, for every role: 90 s
    "test_service_cache.py": {"test_every_kpi_cut_from_the_company_equals_the_scoped_computation"},
    "test_import_fuzz.py": None,  # 50 generated folders imported: 12 s idle, minutes busy
    "test_rollup_read.py": None,  # ~100 questions three ways on two companies: 45 s
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.name
        if module in SLOW_TESTS:
            names = SLOW_TESTS[module]
            function = getattr(item, "originalname", item.name)
            if names is None or function in names:
                item.add_marker(pytest.mark.slow)
        if "run_cli_process" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.process)


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
    """``run_cli(workspace, "import", path, ...)`` runs a saleskpi command in this process.

    Like a process: stdout and stderr apart, the exit code, SALESKPI_LANG=en, and an
    unexpected exception as a traceback on stderr with exit code 1. Each call starts
    afresh: the language (a ContextVar) is set in a copy of the context, the
    settings are dropped after the call, and the Rich consoles write to the
    runner's streams (they look up sys.stdout and sys.stderr on every print).
    """
    from typer.testing import CliRunner

    from saleskpi.surfaces.cli.app import reset_state
    from saleskpi.surfaces.cli.main import cli_app

    app = cli_app()
    runner = CliRunner()

    def _run(workspace: Path, *args: object, timeout: float = 900) -> CliResult:
        argv = ["--workspace", str(workspace), *(str(a) for a in args)]
        try:
            result = contextvars.copy_context().run(
                runner.invoke, app, argv, env={"SALESKPI_LANG": "en"}, prog_name="saleskpi")
        finally:
            reset_state()
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(result.exception))
        return CliResult(["saleskpi", *argv], result.exit_code, result.stdout, stderr)

    return _run


@pytest.fixture(scope="session")
def run_cli_process():
    """``run_cli_process(workspace, "kpi", ...)`` runs ``python -m saleskpi`` in a subprocess."""

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


# -- the analytics backends ------------------------------------------------------------
BACKENDS = ("duckdb", "postgres", "clickhouse", "clickhouse_http")
# Modules whose tests pass unchanged on ClickHouse (chdb) say so with
# ``ON_CLICKHOUSE = True``; elsewhere the clickhouse case is skipped with the reason.
# ``clickhouse_http`` is the same engine reached as a server is, through
# clickhouse-connect over HTTP (tests/fakes/clickhouse_http.py): modules that also
# run that way say ``ON_CLICKHOUSE_HTTP = True`` (a few: each is a second ClickHouse run).


def _need_clickhouse(*modules: str) -> None:
    """Skip (fail in CI) where a ClickHouse test's Python packages are missing."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{module} missing in CI: the clickhouse backend cannot be tested")
            pytest.skip(f"{module} not installed (pip install '.[clickhouse-tests]'): the "
                        "clickhouse backend's tests are skipped")


@pytest.fixture(scope="session")
def clickhouse_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHttpServer]:
    """ClickHouse's HTTP interface on 127.0.0.1 (chdb in a process of its own) for the run."""
    _need_clickhouse("chdb", "clickhouse_connect")
    server = ClickHouseHttpServer(tmp_path_factory.mktemp("clickhouse_http"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole run, stopped after it.

    Debian's ``postgresql`` package has the binaries (``.ci/run`` installs it). Where
    they or the driver are missing the PostgreSQL tests are skipped, except in CI
    (``CI=true``), where that is a failure.
    """
    found = binaries()
    driver = importlib.util.find_spec("psycopg") is not None
    if found is None or not driver:
        missing = ("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin: apt-get install "
                   "postgresql)" if found is None
                   else "the PostgreSQL driver (pip install '.[postgres]')")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} missing in CI: the postgres backend cannot be tested")
        pytest.skip(f"{missing} not installed: the postgres backend's tests are skipped")
    server = PostgresServer(found)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> BackendChoice:
    """Each backend in turn, for a module's workspaces (``BackendChoice.settings``)."""
    if request.param == "duckdb":
        return BackendChoice("duckdb")
    if request.param == "clickhouse":
        if not getattr(request.module, "ON_CLICKHOUSE", False):
            pytest.skip("not yet run on ClickHouse (docs/backends.md lists what is)")
        _need_clickhouse("chdb")
        return BackendChoice("clickhouse", folder=request.getfixturevalue(
            "tmp_path_factory").mktemp("chdb"))
    if request.param == "clickhouse_http":
        if not getattr(request.module, "ON_CLICKHOUSE_HTTP", False):
            pytest.skip("run over ClickHouse's HTTP interface only by the modules that say "
                        "ON_CLICKHOUSE_HTTP (docs/backends.md)")
        # named by the setting it makes (backend: clickhouse), as the chdb case
        return BackendChoice("clickhouse", http=request.getfixturevalue("clickhouse_http"))
    return BackendChoice("postgres", request.getfixturevalue("postgres_server"))
