"""Alerts are evaluated after every import and every sync; a broken rule never fails one.

Syncs run against the fake Pipedrive of tests/fakes on 127.0.0.1; each run's outcome
is read back from SQLite with plain SQL. The import uses the company of
``tests/alerts_world.py``, whose deals D1 (North) and D2 (South) are stuck (more than
10 days in a stage) at any date after mid-October 2026.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.settings import Settings
from saleskpi.service.syncs import run_sync
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.http import ConnectorError
from tests.alerts_world import REPS, STUCK, build_company, copy_company, write_rules
from tests.fakes.pipedrive import FakePipedrive
from tests.test_connector_pipedrive import FAST, credentials, make_settings

SYNCS = {"name": "syncs", "kind": "data_stale", "owner": "head",
         "recipients": {"roles": ["head"]}, "hours": None, "sync_failures": True}


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        return list(con.execute(sql))


@pytest.fixture
def fake() -> Any:
    yield from FakePipedrive(page_limit=100).serve()


def test_a_failing_sync_is_logged_and_alerted_and_then_resolved(
        workspace: Path, fake: FakePipedrive) -> None:
    settings = make_settings(workspace)
    write_rules(settings, SYNCS)
    CredentialStore(settings).put("pipedrive", credentials(fake, token="not-the-token"))
    with pytest.raises(ConnectorError):
        run_sync(settings, "pipedrive", options=FAST)
    assert query(settings, "SELECT crm, ok, batches FROM sync_runs") == [("pipedrive", 0, 0)]
    assert query(settings, "SELECT rule, subject, status FROM alert_states") == [
        ("syncs", "sync:pipedrive", "firing")]
    assert query(settings, "SELECT trigger, before, after FROM alert_log "
                           "WHERE before IS NOT after OR before IS NULL") == [
        ("sync:pipedrive", None, "firing")]
    CredentialStore(settings).put("pipedrive", credentials(fake))
    report = run_sync(settings, "pipedrive", options=FAST)
    assert report.batches > 0
    assert query(settings, "SELECT ok FROM sync_runs ORDER BY id") == [(0,), (1,)]
    assert query(settings, "SELECT status FROM alert_states") == [("resolved",)]


def test_an_unconnected_crm_is_no_failing_sync(workspace: Path) -> None:
    settings = make_settings(workspace)
    write_rules(settings, SYNCS)
    with pytest.raises(ConnectorError):
        run_sync(settings, "pipedrive", options=FAST)
    assert query(settings, "SELECT count(*) FROM sync_runs") == [(0,)]
    assert query(settings, "SELECT count(*) FROM alert_states") == [(0,)]


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_company(tmp_path_factory.mktemp("alerts-hooks") / "ws")


def test_an_import_evaluates_the_rules(run_cli: Any, company: Path, tmp_path: Path) -> None:
    settings = copy_company(company, tmp_path / "ws")
    write_rules(settings, STUCK)
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "reps.csv").write_text(REPS + "r5,Eve Fox,South\n", encoding="utf-8")
    result = run_cli(settings.workspace, "import", folder, "--source", "crm")
    assert result.returncode == 0, result.stderr
    assert sorted(query(settings, "SELECT subject, status FROM alert_states")) == [
        ("deal:crm:D1:qualified:2026-09-20T07:00:00", "firing"),
        ("deal:crm:D2:new:2026-10-01T09:00:00", "firing")]
    assert {t for (t,) in query(settings, "SELECT trigger FROM alert_log")} == {"import:crm"}


def test_broken_rules_do_not_fail_an_import(run_cli: Any, company: Path,
                                            tmp_path: Path) -> None:
    settings = copy_company(company, tmp_path / "ws")
    # Past the editor's checks: a KPI the catalogue does not have makes the check fail.
    (settings.workspace / "alerts.yaml").write_text(
        "rules:\n  - {name: calls, kind: kpi_threshold, owner: head, "
        "recipients: {roles: [head]}, kpi: phone_calls, below: 20}\n", encoding="utf-8")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "reps.csv").write_text(REPS, encoding="utf-8")
    result = run_cli(settings.workspace, "import", folder, "--source", "crm")
    assert result.returncode == 0, result.stderr
    (settings.workspace / "alerts.yaml").write_text("rules: [", encoding="utf-8")
    result = run_cli(settings.workspace, "import", folder, "--source", "crm")
    assert result.returncode == 0, result.stderr
    assert query(settings, "SELECT count(*) FROM alert_states") == [(0,)]


def test_the_servers_alert_job_evaluates_due_rules_and_imports(company: Path,
                                                              tmp_path: Path) -> None:
    import time

    from saleskpi.service.alert_scheduler import AlertJob
    from saleskpi.service.core import SalesKpiService
    from saleskpi.surfaces.server import background_jobs, create_app

    settings = copy_company(company, tmp_path / "ws")
    write_rules(settings, {**STUCK, "every": "1h"})
    job = AlertJob(SalesKpiService(settings, shared_writer=True))
    job.run_once()
    job.run_once()  # within the hour: not due again
    assert query(settings, "SELECT trigger, count(*) FROM alert_log WHERE before IS NULL "
                           "GROUP BY trigger") == [("schedule", 2)]
    assert len(query(settings, "SELECT rule FROM alert_rule_runs")) == 1
    # saleskpi serve: one runner, the alert job a thread of it beside syncs and reports;
    # a fresh copy of the company, where nothing was evaluated yet.
    settings = copy_company(company, tmp_path / "served")
    write_rules(settings, {**STUCK, "every": "1h"})
    app = create_app(settings)
    runner = background_jobs(app, settings, sync_minutes=0)
    service = app.state.service
    assert service.after_import == [runner.jobs["alerts"].run.__self__.after_import]
    runner.start()
    try:
        assert any(t.name == "saleskpi-alerts" for t in threading.enumerate())
        # An import through the server's service: the alerts follow in the job's thread.
        folder = tmp_path / "more"
        folder.mkdir()
        (folder / "reps.csv").write_text(REPS + "r5,Eve Fox,South\n", encoding="utf-8")
        report = service.import_path(folder, mapping=None, source="crm", dry_run=False)
        assert report.ok, report.errors
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not query(
                settings, "SELECT 1 FROM alert_log WHERE trigger = 'import:crm'"):
            time.sleep(0.1)
        assert sorted(query(settings, "SELECT subject, status FROM alert_states")) == [
            ("deal:crm:D1:qualified:2026-09-20T07:00:00", "firing"),
            ("deal:crm:D2:new:2026-10-01T09:00:00", "firing")]
    finally:
        runner.stop()
