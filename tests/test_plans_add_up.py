"""Plans that add up, and pacing by working days (issue 13, item 2).

A small company: r1 and r2 in North, r3 and r4 in South. Plans are set per rep with
the CLI; a team's and the company's plan must be the hand-summed rep plans, on the
CLI and on the overview page. Pacing numbers are counted by hand from the fixture.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.auth import add_user
from saleskpi.surfaces.server import create_app
from tests.backends import BackendChoice
from tests.test_web import PASSWORD, read, sign_in

REPS = "id,name,team\nr1,Ann,North\nr2,Bob,North\nr3,Cid,South\nr4,Dee,South\n"
# Rep deals_won plans for the current month, and one set on its own for team South.
REP_PLANS = {"r1": 5, "r2": 7, "r3": 3, "r4": 1}
SOUTH_PLAN = 10
ON_CLICKHOUSE = True  # every test here also runs on ClickHouse (chdb): conftest.backend
# January 2024 (Monday 1st, a holiday here): r1 wins deals on these days.
JANUARY_WINS = {dt.date(2024, 1, 2): 1, dt.date(2024, 1, 3): 2, dt.date(2024, 1, 9): 1,
                dt.date(2024, 1, 11): 3, dt.date(2024, 1, 15): 1}
HOLIDAY = dt.date(2024, 1, 1)


def _deals(today: dt.date) -> str:
    rows = ["id,rep_id,status,amount,created_at,closed_at"]
    first = today.replace(day=1)
    rows += [f"m{i},r{i % 4 + 1},won,10,{first},{first}" for i in range(6)]
    n = 0
    for day, wins in JANUARY_WINS.items():
        for _ in range(wins):
            n += 1
            rows.append(f"j{n},r1,won,10,{day},{day}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory, run_cli: Any,
            backend: BackendChoice) -> Path:
    root = tmp_path_factory.mktemp("plans")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    (data / "deals.csv").write_text(_deals(dt.date.today()), encoding="utf-8")
    ws = root / "ws"
    save_workspace_settings(Settings(workspace=ws), **backend.settings())
    assert run_cli(ws, "import", data).returncode == 0
    for rep, value in REP_PLANS.items():
        assert run_cli(ws, "target", "set", "deals_won", value, "--rep", rep).returncode == 0
    assert run_cli(ws, "target", "set", "deals_won", SOUTH_PLAN, "--team", "South"
                   ).returncode == 0
    assert run_cli(ws, "target", "set", "deals_won", 20, "--rep", "r1", "--start",
                   "2024-01-01").returncode == 0
    assert run_cli(ws, "settings", "--holidays", HOLIDAY.isoformat()).returncode == 0
    add_user(Settings(workspace=ws), "p_admin", PASSWORD, "admin")
    return ws


def _lines(run_cli: Any, ws: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(ws, "plan", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    lines: list[dict[str, Any]] = result.json()["lines"]
    return lines


def test_team_and_company_plans_are_the_sums_of_the_reps(run_cli: Any, company: Path) -> None:
    lines = _lines(run_cli, company)
    plans = {(line["level"], line["team"] or line["rep_id"]): line for line in lines
             if line["kpi"] == "deals_won"}
    north = plans[("team", "North")]
    assert north["plan"] == 5 + 7 and north["plan_source"] == "sum_of_reps"
    company_line = plans[("company", None)]
    assert company_line["plan"] == 5 + 7 + 3 + 1
    # South has its own plan: both are shown, with the difference.
    south = plans[("team", "South")]
    assert (south["plan"], south["sum_of_reps"], south["difference"]) == (10, 4, 6)
    assert south["plan_source"] == "set"
    # Plan vs actual names whose each line is.
    assert plans[("rep", "r2")]["rep_name"] == "Bob"


def test_the_overview_shows_the_summed_plans(company: Path) -> None:
    app = create_app(Settings(workspace=company))
    client: TestClient = sign_in(app, "p_admin")

    def plan(**params: str) -> float | None:
        page = read(client.get("/", params=params).text)
        row = next(r for r in page.rows("headline") if r[1].attrs.get("data-kpi") == "deals_won")
        return row[4].value

    assert plan() == sum(REP_PLANS.values())
    assert plan(team="North") == REP_PLANS["r1"] + REP_PLANS["r2"]
    assert plan(team="South") == SOUTH_PLAN
    assert plan(rep="r3") == REP_PLANS["r3"]


def _working_days(first: dt.date, last: dt.date) -> list[dt.date]:
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return [d for d in days if d.weekday() < 5 and d != HOLIDAY]


def test_pacing_counts_working_days_and_holidays(run_cli: Any, company: Path) -> None:
    january = _working_days(dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    assert len(january) == 22  # 23 weekdays less New Year's Day
    early = next(line for line in _lines(run_cli, company, "--at", "2024-01-03")
                 if line["rep_id"] == "r1")
    assert early["working_days"] == 22 and early["working_days_elapsed"] == 2
    assert early["expected"] == pytest.approx(20 * 2 / 22)
    assert early["needed_per_working_day"] == pytest.approx((20 - 3) / 20)
    # Two working days of 22: no projection yet; from the sixth working day on.
    assert early["projection"] is None
    assert early["projection_from"] == january[math.ceil(22 * 0.25) - 1].isoformat()

    later = next(line for line in _lines(run_cli, company, "--at", "2024-01-15")
                 if line["rep_id"] == "r1")
    gone = [d for d in january if d <= dt.date(2024, 1, 15)]
    daily = [JANUARY_WINS.get(d, 0) for d in gone]
    actual = sum(daily)
    left = 22 - len(gone)
    assert later["actual"] == actual == 8
    projection = actual + actual / len(gone) * left
    margin = 1.96 * statistics.stdev(daily) * math.sqrt(left)
    assert later["projection"] == pytest.approx(projection)
    assert later["projection_low"] == pytest.approx(max(actual, projection - margin))
    assert later["projection_high"] == pytest.approx(projection + margin)


def test_a_plans_days_are_cut_from_the_companys_by_rep(company: Path) -> None:
    """``service.sums`` (the days of a plan's projection): a rep's and a team's days are
    cut from the company's by rep and day, and are the hand-counted wins of the fixture;
    nobody is handed another scope's figures."""
    from saleskpi.domain.query import KpiQuery, Scope
    from saleskpi.service.core import SalesKpiService, SumsQuestion
    from saleskpi.service.refresh import question_from_json, question_to_json

    # With answers kept (the server's way), a scope's figures are cut, not computed.
    service = SalesKpiService(Settings(workspace=company).model_copy(
        update={"cache_seconds": 600}))
    r1, r2 = (service.find_rep(rep) for rep in ("r1", "r2"))
    assert r1 is not None and r2 is not None
    january = KpiQuery(("deals_won", "revenue"), by=("rep",), period="day",
                       start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 31))
    own = service.sums(january, Scope(rep_ids=frozenset({r1.rep})))
    assert own.keys == ("rep", "period")
    wins = {(r1.rep, day.isoformat()): {"deals_won": float(n), "revenue": 10.0 * n}
            for day, n in JANUARY_WINS.items()}
    assert {k: v for k, v in own.values.items() if any(v.values())} == wins
    scoped = SalesKpiService(Settings(workspace=company)).sums(  # no cache: computed
        january, Scope(rep_ids=frozenset({r1.rep})))
    assert {k: v for k, v in scoped.values.items() if any(v.values())} == wins
    # Bob won nothing in January; the team lead of North sees only North's reps.
    assert not any(any(v.values()) for v in service.sums(
        january, Scope(rep_ids=frozenset({r2.rep}))).values.values())
    north = service.sums(january, Scope(teams=frozenset({"North"})))
    assert {k[0] for k in north.values} <= {r1.rep, r2.rep}
    assert {k: v for k, v in north.values.items() if any(v.values())} == wins
    south = service.sums(january, Scope(teams=frozenset({"South"})))
    assert not any(any(v.values()) for v in south.values.values())
    # Four scopes, one company-wide answer computed: by rep (each rep is in one team,
    # so a team's days are its members' rows of it, not a second answer by rep and team).
    assert (service.day_sums.stats.misses, service.day_sums.stats.hits) == (1, 3)
    # The company's days, by day only: the same wins.
    company_days = service.sums(KpiQuery(("deals_won",), period="day",
                                         start=dt.date(2024, 1, 1),
                                         end=dt.date(2024, 1, 31)))
    assert {k: v["deals_won"] for k, v in company_days.values.items() if v["deals_won"]} == {
        (day.isoformat(),): float(n) for day, n in JANUARY_WINS.items()}
    # The background refresh keeps the question across a restart as what it is.
    question = SumsQuestion(january, Scope(rep_ids=frozenset({r1.rep})))
    assert question_from_json(question_to_json(question, 1.0)) == (question, 1.0)
