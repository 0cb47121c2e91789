"""Month to date by default, the period stated, the same days of the month before, partial
periods flagged (issue 13, item 1). Dates are relative to today (UTC: the company's zone)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.periods import shift_months

# Each test reads today when it starts (a run may cross midnight after collection).
TODAY = MONTH = BEFORE = dt.date.min


def deals() -> list[tuple[str, int, dt.date]]:
    """Won deals (rep, amount, day closed): this month on its first day; last month on its
    first day (inside "the same days") and after today's day of month (outside them)."""
    return [("r1", 100, MONTH), ("r2", 40, MONTH), ("r1", 10, BEFORE), ("r2", 70, BEFORE),
            ("r2", 500, shift_months(TODAY, -1) + dt.timedelta(days=1)),
            ("r1", 7, shift_months(MONTH, -12))]


@pytest.fixture
def company(run_cli: Any, workspace: Path, tmp_path: Path) -> Path:
    global TODAY, MONTH, BEFORE
    TODAY = dt.datetime.now(dt.UTC).date()
    MONTH = TODAY.replace(day=1)
    BEFORE = shift_months(MONTH, -1)
    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,Ann,North\nr2,Bob,North\n",
                                   encoding="utf-8")
    rows = ["id,rep_id,status,amount,created_at,closed_at"]
    rows += [f"d{i},{rep},won,{amount},{day},{day}" for i, (rep, amount, day) in
             enumerate(deals())]
    (data / "deals.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert run_cli(workspace, "import", data).returncode == 0
    return workspace


def test_the_scorecard_is_month_to_date_and_says_so(run_cli: Any, company: Path) -> None:
    result = run_cli(company, "kpi", "revenue", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = result.json()
    assert data["range"] == {"name": "mtd", "from": MONTH.isoformat(),
                             "to": TODAY.isoformat(), "partial": True}
    assert (data["from"], data["to"]) == (MONTH.isoformat(), TODAY.isoformat())
    assert data["rows"][0]["revenue"]["value"] == 140
    table = run_cli(company, "kpi", "revenue")
    assert f"Period: {MONTH} – {TODAY} (month to date, not over yet)" in table.stdout
    every = run_cli(company, "kpi", "revenue", "--range", "all", "--format", "json").json()
    assert every["rows"][0]["revenue"]["value"] == 100 + 40 + 10 + 70 + 500 + 7


def test_trends_flag_the_partial_period(run_cli: Any, company: Path) -> None:
    data = run_cli(company, "kpi", "revenue", "--period", "month", "--format", "json").json()
    flags = {row["period"]: row["partial"] for row in data["rows"]}
    assert flags[MONTH.isoformat()] is True
    assert flags[BEFORE.isoformat()] is False


def test_the_leaderboard_compares_the_same_days_of_last_month(run_cli: Any,
                                                              company: Path) -> None:
    data = run_cli(company, "leaderboard", "revenue", "--format", "json").json()
    same_days = shift_months(TODAY, -1)
    assert data["previous"] == {"from": BEFORE.isoformat(), "to": same_days.isoformat(),
                                "rule": "to_date"}
    # Ann 100 now (10 then), Bob 40 now (70 then; his 500 came after those days).
    assert [(r["rep"], r["rank"], r["previous_rank"]) for r in data["rows"]] == [
        ("r1", 1, 2), ("r2", 2, 1)]
    year = run_cli(company, "leaderboard", "revenue", "--against", "last_year",
                   "--format", "json").json()
    assert year["previous"]["rule"] == "last_year"
    assert year["previous"]["from"] == shift_months(MONTH, -12).isoformat()
    # A year ago only Ann had revenue (Bob 0, still a value: second).
    assert [(r["rep"], r["previous_rank"], r["previous_value"]) for r in year["rows"]] == [
        ("r1", 1, 7), ("r2", 2, 0)]
    wrong = run_cli(company, "leaderboard", "revenue", "--against", "yesterday")
    assert wrong.returncode == 2 and "previous or last_year" in wrong.stderr
