"""saleskpi demo: a company, its scorecard, and a sign-in per role for the dashboard."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from rich.console import Console

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings
from saleskpi.service.auth import authenticate
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.cli.commands.data import run_demo


def test_demo_prints_a_scorecard_and_working_sign_ins(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    run_demo(settings, size=0.3, seed=3, console=console, status_console=Console(
        file=io.StringIO()), end=dt.date(2026, 6, 15))
    printed = buffer.getvalue()
    assert "Scorecard for 2026-05-01" in printed and "Team average" in printed
    settings = Settings(workspace=tmp_path / "ws")
    assert settings.timezone == "Europe/Kyiv"
    for username, role in (("admin", "admin"), ("head", "head"), ("lead", "team_lead"),
                           ("rep", "rep")):
        assert f"{username} / {username}-demo-pass" in printed
        principal = authenticate(settings, username, f"{username}-demo-pass")
        assert principal is not None and principal.role == role
    rep = authenticate(settings, "rep", "rep-demo-pass")
    assert rep is not None and rep.rep_id
    mine = SalesKpiService(settings).scorecard(KpiQuery(("calls",), by=("rep",)), rep.scope)
    assert [r.keys["rep"] for r in mine.rows] == [rep.rep_id]
    # Running the demo again replaces the company and keeps the users.
    run_demo(settings, size=0.3, seed=3, console=Console(file=io.StringIO()),
             status_console=Console(file=io.StringIO()), quiet=True, end=dt.date(2026, 6, 15))
    assert authenticate(settings, "head", "head-demo-pass") is not None
