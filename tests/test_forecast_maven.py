"""The backtest on the Maven CRM export (tests/data/maven-crm): it runs, and its actuals
and sample sizes are the export's own (counted from the CSV here)."""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

MAVEN = Path(__file__).parent / "data" / "maven-crm"
MONTHS = [dt.date(2017, m, 1) for m in range(6, 13)]  # 90 days after the first close


@pytest.fixture(scope="module")
def workspace(run_cli: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("maven-forecast") / "ws"
    done = run_cli(ws, "import", str(MAVEN), "--mapping", "maven-crm")
    assert done.returncode == 0, done.stderr
    return ws


def won_by_month() -> dict[str, float]:
    won: dict[str, float] = defaultdict(float)
    with (MAVEN / "sales_pipeline.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["deal_stage"] == "Won":
                won[row["close_date"][:7] + "-01"] += float(row["close_value"])
    return won


def reps_and_teams() -> tuple[int, int]:
    with (MAVEN / "sales_pipeline.csv").open(encoding="utf-8") as handle:
        agents = {row["sales_agent"] for row in csv.DictReader(handle)}
    with (MAVEN / "sales_teams.csv").open(encoding="utf-8") as handle:
        managers = {row["manager"] for row in csv.DictReader(handle)
                    if row["sales_agent"] in agents}
    return len(agents), len(managers)


@pytest.mark.slow
def test_monthly_backtest_on_maven(run_cli: Any, workspace: Path) -> None:
    done = run_cli(workspace, "forecast", "backtest", "--period", "month", "--format", "json")
    assert done.returncode == 0, done.stderr
    found = done.json()
    assert [p["start"] for p in found["periods"]] == [m.isoformat() for m in MONTHS]
    reps, teams = reps_and_teams()
    scores = {(s["method"], s["level"]): s for s in found["scores"]}
    for method in ("ours", "weighted_pipeline", "run_rate"):
        assert scores[(method, "company")]["periods"] == len(MONTHS)
        assert scores[(method, "team")]["periods"] == teams * len(MONTHS)
        assert scores[(method, "rep")]["periods"] == reps * len(MONTHS)
    assert ("commit", "company") not in scores  # the export has no forecasts entity
    won = won_by_month()
    for row in found["rows"]:
        if row["level"] == "company":
            assert row["actual"] == pytest.approx(won[row["period_start"]], abs=0.01)
    ours = scores[("ours", "company")]
    assert ours["calibration"] is not None and ours["accuracy"] is not None
    # Learning from open deals too keeps ours far below the weighted pipeline's bias.
    assert abs(ours["bias"]) < scores[("weighted_pipeline", "company")]["bias"]
