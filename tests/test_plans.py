"""Targets, plan vs actual and reverse planning, on a hand-counted company in Europe/Kyiv.

The company (``company_folder``): team North (r1 Alice, r2 Bob, r3 Carol) and team
South (r4 Dan). Timestamps without an offset are Kyiv wall-clock time (UTC+2 in
winter, UTC+3 from 2024-03-31).

History, the three full months before April 2024 (2024-01-01 – 2024-03-31):

    rep      calls  meetings  won  revenue   call→meeting  meeting→won  call→won
    r1 Alice   20       5      1    1 000    5/20 = 0.25   1/5 = 0.20   1/20 = 0.05
    r2 Bob     20       8      2    4 000    8/20 = 0.40   2/8 = 0.25
    r3 Carol   20       6      3    3 000    6/20 = 0.30   3/6 = 0.50
    r4 Dan     10       5      5    4 000    (South)
    North      60      19      6    8 000    19/60         6/19
    company    70      24     11   12 000

r1's 20 calls include one at 2024-01-01 00:30 Kyiv (still January there); not counted:
a call at 2023-12-31 23:30 (December), an inbound call in February, a lost deal.
North medians over its reps: call→meeting median(0.25, 0.40, 0.30) = 0.30;
meeting→won median(0.20, 0.25, 0.50) = 0.25.

April 2024 (30 days; 22 working days), up to the end of 2024-04-10 (10 of 30 days):
r1 6 calls (one at 04-01 00:10, one at 04-10 23:50; not the one at 04-11 00:10),
1 deal won (1 000; not the one closed 04-12); r2 12 calls, 2 deals won (500 + 1 500);
r3 nothing; r4 3 calls and 1 deal lost. So North made 6 + 12 + 0 = 18 calls, the
company won 3 deals for 3 000, and its win rate is 3 / (3 + 1) = 0.75.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import sqlite3
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.planning import Rate, plan_activity, working_days
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.domain.targets import TargetRecord, effective
from saleskpi.service.attainment import compare, elapsed_share
from saleskpi.service.core import SalesKpiService
from saleskpi.service.planner import (
    ReverseRequest,
    find_rep,
    funnel_counts,
    history_window,
    peer_rates,
    plan_vs_actual,
    reverse_plan,
)
from tests.backends import BackendChoice, facts_snapshot

AT = dt.date(2024, 4, 10)
ON_CLICKHOUSE = True  # every test here also runs on ClickHouse (chdb): conftest.backend
SOURCE = "crm"

REPS = """id,name,team
r1,Alice,North
r2,Bob,North
r3,Carol,North
r4,Dan,South
"""

TARGETS = """kpi,period_start,period_end,value,rep_id,team
deals_won,2024-04-01,2024-04-30,6,r1,North
calls,2024-04-01,2024-04-30,30,r2,
calls,2024-04-01,2024-04-30,60,,North
revenue,2024-04-01,2024-04-30,6000,,
deals_won,2024-03-01,2024-03-31,4,r1,
"""

# Calls, meetings and won deals per rep in 2024-01 .. 2024-03, besides the edge rows.
HISTORY = {
    "r1": (19, 5, [1000]),
    "r2": (20, 8, [2000, 2000]),
    "r3": (20, 6, [1000, 1000, 1000]),
    "r4": (10, 5, [800] * 5),
}
MONTHS = ("2024-01", "2024-02", "2024-03")


def _activities() -> str:
    rows = ["id,type,rep_id,occurred_at,direction"]

    def add(kind: str, rep: str, when: str, direction: str = "") -> None:
        rows.append(f"A{len(rows)},{kind},{rep},{when},{direction}")

    for rep, (calls, meetings, _won) in HISTORY.items():
        for i in range(calls):
            add("call", rep, f"{MONTHS[i % 3]}-{2 + i // 3:02d} 10:00:00", "out")
        for i in range(meetings):
            add("meeting", rep, f"{MONTHS[i % 3]}-{12 + i // 3:02d} 15:00:00")
    add("call", "r1", "2024-01-01 00:30:00", "out")  # January in Kyiv: counted
    add("call", "r1", "2023-12-31 23:30:00", "out")  # December: outside the history
    add("call", "r1", "2024-02-14 10:00:00", "in")  # inbound: not a call made
    # April
    add("call", "r1", "2024-04-01 00:10:00", "out")
    for day in range(2, 6):
        add("call", "r1", f"2024-04-{day:02d} 11:00:00", "out")
    add("call", "r1", "2024-04-10 23:50:00", "out")  # end of the --at day: counted
    add("call", "r1", "2024-04-11 00:10:00", "out")  # after it: not counted
    for i in range(12):
        add("call", "r2", f"2024-04-{1 + i % 10:02d} 09:{i:02d}:00", "out")
    for day in (1, 2, 3):
        add("call", "r4", f"2024-04-{day:02d} 12:00:00", "out")
    return "\n".join(rows) + "\n"


def _deals() -> str:
    rows = ["id,rep_id,status,created_at,closed_at,amount,currency"]

    def add(rep: str, status: str, closed: str, amount: int) -> None:
        rows.append(f"D{len(rows)},{rep},{status},2023-12-01 10:00:00,{closed},{amount},USD")

    for rep, (_calls, _meetings, won) in HISTORY.items():
        for i, amount in enumerate(won):
            add(rep, "won", f"{MONTHS[i % 3]}-20 10:00:00", amount)
    add("r1", "lost", "2024-02-21 10:00:00", 700)
    add("r1", "won", "2024-04-02 10:00:00", 1000)
    add("r1", "won", "2024-04-12 10:00:00", 9000)  # after --at
    add("r2", "won", "2024-04-03 10:00:00", 500)
    add("r2", "won", "2024-04-05 10:00:00", 1500)
    add("r4", "lost", "2024-04-04 10:00:00", 300)
    return "\n".join(rows) + "\n"


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    return folder


def make_service(workspace: Path) -> SalesKpiService:
    return SalesKpiService(Settings(workspace=workspace))


def sqlite_targets(workspace: Path) -> list[tuple[Any, ...]]:
    path = workspace / "state.sqlite"
    if not path.exists():
        return []
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT * FROM targets ORDER BY id").fetchall()
    finally:
        con.close()


def counts(report: dict[str, Any], entity: str) -> tuple[int, int, int, int]:
    c = report["entities"][entity]
    return c["inserted"], c["updated"], c["unchanged"], c["rejected"]


@pytest.fixture(scope="module")
def company_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("plans") / "data", {
        "reps.csv": REPS, "activities.csv": _activities(), "deals.csv": _deals(),
        "targets.csv": TARGETS,
    })


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory, company_folder: Path,
            backend: BackendChoice) -> Path:
    """A workspace with the company and its targets imported (do not change it: copy),
    on each backend."""
    workspace = tmp_path_factory.mktemp("plans-ws") / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            **backend.settings())
    assert Settings(workspace=workspace).backend == backend.name
    report = make_service(workspace).import_path(company_folder, mapping=None, source=SOURCE,
                                                 dry_run=False)
    assert report.ok, report.errors
    assert report.entities["targets"].inserted == 5
    return workspace


@pytest.fixture
def own_company(company: Path, tmp_path: Path, backend: BackendChoice) -> Path:
    """A copy of ``company`` that a test may change (with a copy of its database)."""
    copy = Path(shutil.copytree(company, tmp_path / "ws"))
    backend.copy_workspace(copy)
    return copy


# ---------------------------------------------------------------- the article, pure


def test_article_example_one_rate() -> None:
    # 50 sales at 5% of calls: 50 / 0.05 = 1,000 calls; 1,000 / 21 = 47.6 -> 48 a day.
    plan = plan_activity("deals_won", 50, [Rate("call_to_won", Fraction("0.05"))], 21)
    calls = plan.calls
    assert (calls.exact, calls.per_period) == (1000, 1000)
    assert round(float(calls.per_day_exact), 1) == 47.6
    assert calls.per_day == 48
    assert plan.need("meetings") is None
    data = plan.to_dict()
    assert data["funnel"] == "direct"
    assert data["needs"][-1] == {"what": "calls", "per_period": 1000, "per_period_exact": 1000,
                                 "per_day": 48, "per_day_exact": 47.619048}


def test_article_example_two_steps() -> None:
    # 15% of calls become meetings, 1 meeting in 3 a sale: 50 / (1/3) = 150 meetings,
    # 150 / 0.15 = 1,000 calls (exactly: no float 1000.0000001 rounded up to 1001).
    plan = plan_activity("deals_won", 50, [Rate("call_to_meeting", Fraction("0.15")),
                                           Rate("meeting_to_won", Fraction(1, 3))], 21)
    meetings = plan.need("meetings")
    assert meetings is not None
    assert (meetings.exact, meetings.per_period, meetings.per_day) == (150, 150, 8)  # 7.1
    assert (plan.calls.exact, plan.calls.per_period, plan.calls.per_day) == (1000, 1000, 48)
    assert plan.funnel == "two_step"
    assert plan.improvement is None  # no team to compare with


def test_revenue_goal_is_turned_into_deals_with_the_deal_size() -> None:
    # 5,500 / 1,000 a deal = 5.5 -> 6 deals (half a deal is no sale); 6 / 0.05 = 120 calls.
    plan = plan_activity("revenue", 5500, [Rate("call_to_won", Fraction(1, 20))], 20,
                         deal_size=Fraction(1000))
    assert plan.needs[0].per_period == 6
    assert plan.calls.per_period == 120
    assert plan.calls.per_day == 6


@pytest.mark.parametrize(("first", "last", "days"), [
    ("2024-03-01", "2024-03-31", 21),  # starts on a Friday: as in the article
    ("2024-04-01", "2024-04-30", 22),
    ("2024-05-01", "2024-05-31", 23),
    ("2024-02-01", "2024-02-29", 21),  # leap year
    ("2021-02-01", "2021-02-28", 20),
    ("2024-06-01", "2024-06-30", 20),
    ("2024-04-08", "2024-04-14", 5),  # a week
    ("2024-04-13", "2024-04-13", 0),  # a Saturday
])
def test_working_days_of_a_period(first: str, last: str, days: int) -> None:
    assert working_days(dt.date.fromisoformat(first), dt.date.fromisoformat(last)) == days


def test_improvement_picks_the_step_that_saves_most_calls() -> None:
    # r1 of the fixture: 10 deals at 1/4 call->meeting and 1/5 meeting->won need
    # 10 / (1/5) = 50 meetings and 50 / (1/4) = 200 calls.
    # At the North median call->meeting 3/10: 50 / 0.3 = 166.7 -> 167 calls (33 fewer);
    # at the median meeting->won 1/4: 40 meetings, 40 / 0.25 = 160 calls (40 fewer).
    rates = [Rate("call_to_meeting", Fraction(1, 4)), Rate("meeting_to_won", Fraction(1, 5))]
    team = {"call_to_meeting": [Fraction(1, 4), Fraction(2, 5), Fraction(3, 10)],
            "meeting_to_won": [Fraction(1, 5), Fraction(1, 4), Fraction(1, 2)]}
    plan = plan_activity("deals_won", 10, rates, 22, team_rates=team)
    assert plan.calls.per_period == 200
    options = {o.step: (o.team_median, o.calls, o.calls_saved) for o in plan.options}
    assert options == {"call_to_meeting": (Fraction(3, 10), 167, 33),
                       "meeting_to_won": (Fraction(1, 4), 160, 40)}
    assert plan.improvement is not None
    assert plan.improvement.step == "meeting_to_won"
    # 200 / 22 = 9.1 -> 10 a day; 160 / 22 = 7.3 -> 8 a day: 2 fewer a day.
    assert plan.improvement.calls_saved_per_day == 2


# ---------------------------------------------------------------- plan vs actual, pure


def test_compare_higher_and_lower_is_better() -> None:
    # 10 of 30 days gone: 1 deal of 6 runs at 1 * 30 / 10 = 3 by the month's end.
    deals = compare(6, 1, higher_is_better=True, cumulative=True, elapsed_days=10,
                    period_days=30)
    assert (deals.attainment, deals.gap, deals.projection, deals.projected_attainment) == (
        pytest.approx(1 / 6), 5, 3, 0.5)
    # Response time: plan 30 minutes, actual 60 -> 30 / 60 = 50%; no run rate for a median.
    response = compare(30, 60, higher_is_better=False, cumulative=False, elapsed_days=10,
                       period_days=30)
    assert (response.attainment, response.gap, response.projection) == (0.5, -30, 60)
    assert elapsed_share(dt.date(2024, 4, 1), dt.date(2024, 4, 30), AT) == (10, 30)


def test_latest_target_wins_when_two_sources_set_it() -> None:
    def target(id_: int, source: str, value: float, hour: int) -> TargetRecord:
        return TargetRecord(id_, source, "calls", dt.date(2024, 4, 1), dt.date(2024, 4, 30),
                            "r1", None, value, dt.datetime(2024, 4, 1, hour))

    chosen = effective([target(1, "crm", 30, 9), target(2, "manual", 40, 10)])
    assert [(t.source, t.value) for t in chosen] == [("manual", 40)]


# ---------------------------------------------------------------- history


def test_history_rates_with_their_counts(company: Path) -> None:
    service = make_service(company)
    first, last = history_window(AT, 3)
    assert (first, last) == (dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    r1 = funnel_counts(service, first, last, rep_id="r1")
    assert (r1.calls, r1.meetings, r1.deals_won, r1.revenue) == (20, 5, 1, 1000)
    rates = {r.key: (r.value, r.numerator, r.denominator) for r in r1.rates()}
    assert rates == {"call_to_meeting": (Fraction(1, 4), 5, 20),
                     "meeting_to_won": (Fraction(1, 5), 1, 5),
                     "call_to_won": (Fraction(1, 20), 1, 20)}
    north = funnel_counts(service, first, last, team="North")
    assert (north.calls, north.meetings, north.deals_won) == (60, 19, 6)
    company_wide = funnel_counts(service, first, last)
    assert (company_wide.calls, company_wide.meetings, company_wide.deals_won,
            company_wide.revenue) == (70, 24, 11, 12000)
    peers = peer_rates(service, first, last, team="North")
    assert sorted(peers["call_to_meeting"]) == [Fraction(1, 4), Fraction(3, 10), Fraction(2, 5)]
    assert sorted(peers["meeting_to_won"]) == [Fraction(1, 5), Fraction(1, 4), Fraction(1, 2)]


def test_reverse_plan_from_a_reps_history(company: Path) -> None:
    service = make_service(company)
    rep = find_rep(service, "Alice")
    assert rep is not None and (rep.id, rep.team) == ("r1", "North")
    plan = reverse_plan(service, ReverseRequest("deals_won", Fraction(10), AT, rep=rep))
    assert plan.working_days == 22
    assert (plan.need("meetings").per_period, plan.calls.per_period) == (50, 200)  # type: ignore[union-attr]
    assert plan.improvement is not None and plan.improvement.step == "meeting_to_won"
    assert plan.improvement.calls == 160
    data = plan.to_dict()
    assert data["history"]["from"] == "2024-01-01" and data["history"]["to"] == "2024-03-31"
    # Revenue 5,500 at r1's own average deal of 1,000 -> 6 deals -> 30 meetings -> 120 calls.
    money = reverse_plan(service, ReverseRequest("revenue", Fraction(5500), AT, rep=rep))
    assert money.deal_size == 1000
    assert [n.per_period for n in money.needs] == [6, 30, 120]


# ---------------------------------------------------------------- plan vs actual


# April 2024: 22 working days (no holidays set), 8 gone by the 10th, 14 left; 8 of 22 is
# past a quarter, so each KPI that adds up is projected: actual + actual / 8 × 14.
WORKING, GONE, LEFT = 22, 8, 14


def test_plan_vs_actual_in_process(company: Path) -> None:
    lines = plan_vs_actual(make_service(company), AT)
    got = {(line.target.kpi, line.target.level, line.who): (
        line.target.source, line.result.actual, line.result.attainment, line.result.gap,
        line.result.projection, line.sum_of_reps) for line in lines}
    assert got == {
        # Alice: 1 of 6 deals; projected 1 + 14/8 = 2.75
        ("deals_won", "rep", "Alice"): ("crm", 1, pytest.approx(1 / 6), 5,
                                        pytest.approx(2.75), None),
        # North set its own calls plan (60); its reps' plans add up to Bob's 30.
        ("calls", "team", "North"): ("crm", 18, 0.3, 42, pytest.approx(49.5), 30),
        ("calls", "rep", "Bob"): ("crm", 12, 0.4, 18, pytest.approx(33), None),
        ("revenue", "company", None): ("crm", 3000, 0.5, 3000, pytest.approx(8250), None),
        # No deals plan for North or the company: the sum of the reps' (Alice's 6). North
        # won 1 + 2 deals, the company 3 (Dan lost his).
        ("deals_won", "team", "North"): ("sum_of_reps", 3, 0.5, 3, pytest.approx(8.25), 6),
        ("deals_won", "company", None): ("sum_of_reps", 3, 0.5, 3, pytest.approx(8.25), 6),
        # The company's calls plan: Bob's 30 (North's own plan is a team's, not a rep's);
        # 18 + 3 calls.
        ("calls", "company", None): ("sum_of_reps", 21, 0.7, 9, pytest.approx(57.75), 30),
    }
    # Furthest behind first: actual against expected by now (plan × 8 / 22).
    assert [(line.target.kpi, line.who) for line in lines[:3]] == [
        ("deals_won", "Alice"), ("calls", "North"), ("calls", "Bob")]
    alice = lines[0]
    assert alice.pace is not None
    assert (alice.pace.working_days, alice.pace.elapsed, alice.pace.left) == (WORKING, GONE,
                                                                              LEFT)
    assert alice.pace.expected == pytest.approx(6 * GONE / WORKING)
    assert alice.pace.needed_per_day == pytest.approx(5 / LEFT)


def test_plan_vs_actual_of_one_rep_or_team(company: Path) -> None:
    service = make_service(company)
    bob = plan_vs_actual(service, AT, level="rep", who="r2")
    assert [(ln.target.kpi, ln.who, ln.result.actual) for ln in bob] == [("calls", "Bob", 12)]
    north = plan_vs_actual(service, AT, level="team", who="North")
    assert sorted((ln.target.kpi, ln.who, ln.result.actual) for ln in north) == [
        ("calls", "North", 18), ("deals_won", "North", 3)]  # deals: the sum of its reps'
    assert plan_vs_actual(service, AT, level="team", who="South") == []
    # Targets name reps by source id; the kept list turns that into a name.
    assert service.rep_names()["r1"] == "Alice"


def test_plan_cli_with_attainment_gap_and_run_rate(run_cli, own_company: Path) -> None:
    # A rate target set by hand: win rate 80%; actual 3 won / 4 closed = 75%, no run rate.
    result = run_cli(own_company, "target", "set", "win_rate", "80%", "--start", "2024-04-15")
    assert result.returncode == 0, result.stderr
    result = run_cli(own_company, "plan", "--at", "2024-04-10", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = result.json()
    assert data["at"] == "2024-04-10"
    rows = {(x["kpi"], x["level"], x["rep_id"] or x["team"]): (
        x["plan"], x["actual"], x["attainment"], x["gap"], x["projection"],
        x["projected_attainment"]) for x in data["lines"]}
    assert rows == {
        ("deals_won", "rep", "r1"): (6, 1, 0.166667, 5, 2.75, 0.458333),
        ("calls", "team", "North"): (60, 18, 0.3, 42, 49.5, 0.825),
        # A rate has no run rate: its projection is the current value.
        ("win_rate", "company", None): (0.8, 0.75, 0.9375, 0.05, 0.75, 0.9375),
        ("calls", "rep", "r2"): (30, 12, 0.4, 18, 33, 1.1),
        ("revenue", "company", None): (6000, 3000, 0.5, 3000, 8250, 1.375),
        ("deals_won", "team", "North"): (6, 3, 0.5, 3, 8.25, 1.375),
        ("deals_won", "company", None): (6, 3, 0.5, 3, 8.25, 1.375),
        ("calls", "company", None): (30, 21, 0.7, 9, 57.75, 1.925),
    }
    assert [(x["kpi"], x["rep_id"] or x["team"]) for x in data["lines"][:3]] == [
        ("deals_won", "r1"), ("calls", "North"), ("win_rate", None)]
    win_rate = data["lines"][2]
    assert (win_rate["numerator"], win_rate["denominator"], win_rate["run_rate"]) == (3, 4, False)
    assert (data["lines"][0]["elapsed_days"], data["lines"][0]["period_days"]) == (10, 30)

    by_rep = run_cli(own_company, "plan", "--at", "2024-04-10", "--by", "rep", "--format",
                     "json").json()
    assert [x["rep_id"] for x in by_rep["lines"]] == ["r1", "r2"]
    table = run_cli(own_company, "plan", "--at", "2024-04-10", "--by", "team")
    assert table.returncode == 0, table.stderr
    assert "North" in table.stdout and "30.0%" in table.stdout and "Bob" not in table.stdout

    # The same lines as CSV, in the same order, with the JSON's names as columns.
    as_csv = run_cli(own_company, "plan", "--at", "2024-04-10", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    lines = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {(x["kpi"], x["level"], x["rep_id"] or x["team"] or None): (
        x["plan"], x["actual"], x["attainment"], x["gap"], x["projection"],
        x["projected_attainment"]) for x in lines} == {
        key: tuple(str(v) for v in value) for key, value in rows.items()}
    assert [x["kpi"] for x in lines] == [x["kpi"] for x in data["lines"]]
    # r1's deals: what a working day still needs in calls and meetings, as columns.
    first = data["lines"][0]["activity_per_working_day"]
    assert (lines[0]["activity_per_working_day.calls"],
            lines[0]["activity_per_working_day.meetings"]) == (
        str(first["calls"]), str(first["meetings"]))

    # One team's lines: its own and its reps' (r2's target names no team: Bob is in
    # North), with the figures of the whole plan above: the Σ still sums every rep.
    def picked(*args: str) -> dict[tuple[str, str, str | None], tuple[object, ...]]:
        found = run_cli(own_company, "plan", "--at", "2024-04-10", "--format", "json", *args)
        assert found.returncode == 0, found.stderr
        return {(x["kpi"], x["level"], x["rep_id"] or x["team"]): (
            x["plan"], x["actual"], x["attainment"], x["gap"], x["projection"],
            x["projected_attainment"]) for x in found.json()["lines"]}

    assert picked("--team", "North") == {
        key: value for key, value in rows.items() if key[2] in ("North", "r1", "r2")}
    assert picked("--rep", "Bob") == {("calls", "rep", "r2"): rows[("calls", "rep", "r2")]}
    assert picked("--team", "South") == {}  # Dan's team has no targets
    typo = run_cli(own_company, "plan", "--team", "Nort")
    assert typo.returncode == 2 and "did you mean North" in typo.stderr


# ---------------------------------------------------------------- CLI: targets


def test_target_list_as_csv_imports_again_unchanged(run_cli, own_company: Path,
                                                    tmp_path: Path) -> None:
    # A target with a field of its own (a custom column of targets.csv) besides the five.
    folder = write_folder(tmp_path / "more", {"targets.csv": (
        "kpi,period_start,period_end,value,rep_id,team,note\n"
        "calls,2024-05-01,2024-05-31,25,r1,North,new hire ramp\n")})
    assert run_cli(own_company, "import", folder, "--source", SOURCE).returncode == 0
    listed = run_cli(own_company, "target", "list", "--format", "csv")
    assert listed.returncode == 0, listed.stderr
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert list(rows[0]) == ["kpi", "period_start", "period_end", "value", "rep_id", "team",
                             "note"]
    # The five targets of TARGETS and the one above, as stored (the JSON lists them too).
    as_json = run_cli(own_company, "target", "list", "--format", "json").json()["targets"]
    assert sorted((r["kpi"], r["period_start"], r["value"], r["rep_id"], r["team"], r["note"])
                  for r in rows) == sorted(
        (t["kpi"], t["period_start"], str(t["value"]), t["rep_id"] or "", t["team"] or "",
         "new hire ramp" if t["period_start"] == "2024-05-01" else "") for t in as_json)
    assert len(rows) == 6
    # Imported again into their source, the file changes nothing, logs nothing.
    history = len(run_cli(own_company, "target", "history", "--limit", "1000",
                          "--format", "json").json()["changes"])
    again = write_folder(tmp_path / "again", {"targets.csv": listed.stdout})
    report = run_cli(own_company, "import", again, "--source", SOURCE, "--format", "json")
    assert report.returncode == 0, report.stderr
    assert report.json()["entities"]["targets"] == {
        "inserted": 0, "updated": 0, "unchanged": 6, "rejected": 0}
    assert len(run_cli(own_company, "target", "history", "--limit", "1000",
                       "--format", "json").json()["changes"]) == history
    # For Excel on Windows (settings --csv-bom): a byte order mark first, the same rows
    # after it; the file so written imports unchanged too.
    assert run_cli(own_company, "settings", "--csv-bom").returncode == 0
    marked = run_cli(own_company, "target", "list", "--format", "csv")
    assert marked.returncode == 0, marked.stderr
    assert marked.stdout == "\ufeff" + listed.stdout
    bom = write_folder(tmp_path / "bom", {"targets.csv": marked.stdout})
    report = run_cli(own_company, "import", bom, "--source", SOURCE, "--format", "json")
    assert report.returncode == 0, report.stderr
    assert report.json()["entities"]["targets"]["unchanged"] == 6
    assert run_cli(own_company, "settings", "--no-csv-bom").returncode == 0
    assert run_cli(own_company, "target", "list", "--format", "csv").stdout == listed.stdout


def test_target_list_names_a_misspelled_kpi_or_team(run_cli, own_company: Path) -> None:
    kpi = run_cli(own_company, "target", "list", "--kpi", "deals_wn")
    assert kpi.returncode != 0
    assert "unknown KPI 'deals_wn'" in kpi.stderr and "deals_won" in kpi.stderr
    team = run_cli(own_company, "target", "list", "--team", "Nort")
    assert team.returncode != 0
    assert "unknown team 'Nort'" in team.stderr and "North" in team.stderr
    # A team no imported rep is in may still have targets: they are listed.
    east = run_cli(own_company, "target", "set", "calls", "40", "--team", "East", "--start",
                   "2024-04-01")
    assert east.returncode == 0, east.stderr
    assert "no rep of team 'East' in the data yet." in east.stdout + east.stderr
    # A name close to a known team's is taken for a typo: refused, naming the team and
    # how to set it all the same; nothing stored.
    typo = run_cli(own_company, "target", "set", "calls", "40", "--team", "Nrth")
    assert typo.returncode == 2
    said = " ".join(typo.stderr.split())
    assert "unknown team 'Nrth': no rep of the data is in it; did you mean North?" in said
    assert "--new-team" in said
    assert "Nrth" not in run_cli(own_company, "target", "list").stdout
    meant = run_cli(own_company, "target", "set", "calls", "40", "--team", "Nrth",
                    "--new-team")
    assert meant.returncode == 0, meant.stderr
    assert "no rep of team 'Nrth' in the data yet." in meant.stdout + meant.stderr
    east = run_cli(own_company, "target", "list", "--team", "East", "--format", "json")
    assert east.returncode == 0, east.stderr
    assert [(t["kpi"], t["team"], t["value"]) for t in east.json()["targets"]] == [
        ("calls", "East", 40)]
    # Deleting by a misspelled KPI names the closest; a known one with nothing stored
    # is "no such target" (exit 1), as before.
    gone = run_cli(own_company, "target", "delete", "calsl", "--team", "North", "--start",
                   "2024-04-01")
    assert gone.returncode == 2 and "did you mean calls?" in gone.stderr
    none = run_cli(own_company, "target", "delete", "calls", "--team", "North", "--start",
                   "2023-04-01")
    assert none.returncode == 1 and "no such target" in none.stderr
    # Known names with nothing stored: no targets, no error.
    empty = run_cli(own_company, "target", "list", "--kpi", "meetings", "--team", "South",
                    "--format", "json")
    assert empty.returncode == 0, empty.stderr
    assert empty.json()["targets"] == []


def test_target_set_and_list(run_cli, own_company: Path) -> None:
    def set_(*args: str) -> dict[str, Any]:
        result = run_cli(own_company, "target", "set", *args, "--format", "json")
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = result.json()
        return data

    first = set_("calls", "40", "--rep", "Bob", "--start", "2024-05-20")
    assert (first["change"], first["rep_id"], first["period_start"], first["period_end"],
            first["source"]) == ("inserted", "r2", "2024-05-01", "2024-05-31", "manual")
    assert set_("calls", "40", "--rep", "r2", "--start", "2024-05-01")["change"] == "unchanged"
    assert set_("calls", "45", "--rep", "r2", "--start", "2024-05-31")["change"] == "updated"
    team = set_("meetings", "12", "--team", "South", "--period", "week", "--start",
                "2024-05-15")
    assert (team["level"], team["period_start"], team["period_end"]) == (
        "team", "2024-05-13", "2024-05-19")

    listed = run_cli(own_company, "target", "list", "--at", "2024-05-15", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [(t["kpi"], t["level"], t["rep_id"], t["team"], t["value"])
            for t in listed.json()["targets"]] == [("calls", "rep", "r2", None, 45),
                                        ("meetings", "team", None, "South", 12)]
    everything = run_cli(own_company, "target", "list", "--format", "json").json()["targets"]
    assert len(everything) == 5 + 2

    table = run_cli(own_company, "target", "list", "--rep", "Bob")
    assert "Bob (r2)" in table.stdout and "45" in table.stdout

    bad = run_cli(own_company, "target", "set", "deal_won", "5")
    assert bad.returncode == 2 and "deal_won" in bad.stderr
    gone = run_cli(own_company, "target", "delete", "calls", "--rep", "r2", "--start",
                   "2024-05-01")
    assert gone.returncode == 0, gone.stderr
    assert len(run_cli(own_company, "target", "list", "--format", "json").json()["targets"]) == 6


# ---------------------------------------------------------------- CLI: reverse planning


def test_reverse_cli_reproduces_the_article(run_cli, workspace: Path) -> None:
    # No data at all: planning a new team with rates given by hand. March 2024 has
    # 21 working days, as in the article.
    one = run_cli(workspace, "plan", "reverse", "--goal", "deals_won=50", "--rate",
                  "call_to_won=0.05", "--at", "2024-03-15", "--format", "json")
    assert one.returncode == 0, one.stderr
    data = one.json()
    assert data["working_days"] == 21
    calls = data["needs"][-1]
    assert (calls["what"], calls["per_period"], calls["per_day"]) == ("calls", 1000, 48)
    assert round(calls["per_day_exact"], 1) == 47.6

    two = run_cli(workspace, "plan", "reverse", "--goal", "deals_won=50", "--rate",
                  "call_to_meeting=15%", "--rate", "meeting_to_won=1/3", "--working-days",
                  "21")
    assert two.returncode == 0, two.stderr
    text = " ".join(two.stdout.replace("│", " ").split())
    assert "150 7.1 → 8" in text
    assert "1 000 47.6 → 48" in text

    half = run_cli(workspace, "plan", "reverse", "--goal", "deals_won=50", "--rate",
                   "call_to_meeting=0.15")
    assert half.returncode == 2 and "meeting_to_won" in half.stderr


def test_reverse_cli_from_history(run_cli, company: Path) -> None:
    result = run_cli(company, "plan", "reverse", "--goal", "deals_won=10", "--rep", "r1",
                     "--at", "2024-04-10", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = result.json()
    assert data["rep_id"] == "r1" and data["working_days"] == 22
    assert data["rates"] == [
        {"key": "call_to_won", "value": 0.05, "origin": "history", "numerator": 1,
         "denominator": 20},
        {"key": "call_to_meeting", "value": 0.25, "origin": "history", "numerator": 5,
         "denominator": 20},
        {"key": "meeting_to_won", "value": 0.2, "origin": "history", "numerator": 1,
         "denominator": 5},
    ]
    assert [(n["what"], n["per_period"], n["per_day"]) for n in data["needs"]] == [
        ("deals_won", 10, 1), ("meetings", 50, 3), ("calls", 200, 10)]
    assert data["improvement"]["step"] == "meeting_to_won"
    assert data["improvement"]["calls_saved"] == 40

    # Team North: 19/60 and 6/19 are both above the reps' medians (0.30, 0.25):
    # 12 deals / (6/19) = 38 meetings, 38 / (19/60) = 120 calls; nothing to improve.
    team = run_cli(company, "plan", "reverse", "--goal", "deals_won=12", "--team", "North",
                   "--at", "2024-04-10")
    assert team.returncode == 0, team.stderr
    text = " ".join(team.stdout.replace("│", " ").split())
    assert "38 1.7 → 2" in text and "120 5.5 → 6" in text
    assert "19/60" in text and "6/19" in text
    assert "at or above the team median" in text


# ---------------------------------------------------------------- import


def test_reimporting_targets_changes_nothing(run_cli, own_company: Path,
                                             company_folder: Path) -> None:
    before_sqlite = sqlite_targets(own_company)
    before_facts = facts_snapshot(own_company)
    assert len(before_sqlite) == 5
    assert before_facts["targets"] == []  # targets live in SQLite, not with the facts
    result = run_cli(own_company, "import", company_folder, "--source", SOURCE, "--format",
                     "json")
    assert result.returncode == 0, result.stderr
    report = result.json()
    assert counts(report, "targets") == (0, 0, 5, 0)
    assert counts(report, "activities")[:2] == (0, 0)
    assert sqlite_targets(own_company) == before_sqlite
    assert facts_snapshot(own_company) == before_facts


def test_changed_target_is_updated(own_company: Path, tmp_path: Path) -> None:
    changed = TARGETS.replace("calls,2024-04-01,2024-04-30,30,r2,",
                              "calls,2024-04-01,2024-04-30,35,r2,")
    folder = write_folder(tmp_path / "changed", {"reps.csv": REPS, "targets.csv": changed})
    report = make_service(own_company).import_path(folder, mapping=None, source=SOURCE,
                                                   dry_run=False)
    assert report.ok, report.errors
    counts_ = report.entities["targets"]
    assert (counts_.inserted, counts_.updated, counts_.unchanged) == (0, 1, 4)
    values = {(row[2], row[5]): row[7] for row in sqlite_targets(own_company)}
    assert values[("calls", "r2")] == 35


def test_an_import_logs_each_new_and_changed_target(own_company: Path, tmp_path: Path) -> None:
    """New targets and the log are written in one statement each (``upsert_many``): the
    same rows, in the file's order, as one ORM row at a time wrote them."""
    # r2's calls change (30 -> 35); r3's calls are new; r4's appear twice, the later wins.
    changed = (TARGETS.replace("calls,2024-04-01,2024-04-30,30,r2,",
                               "calls,2024-04-01,2024-04-30,35,r2,")
               + "calls,2024-04-01,2024-04-30,40,r3,North\n"
               + "meetings,2024-04-01,2024-04-30,7,r4,\n")
    folder = write_folder(tmp_path / "changed", {"reps.csv": REPS, "targets.csv": changed})
    state = sqlite3.connect(own_company / "state.sqlite")
    try:
        logged = state.execute("SELECT max(id) FROM target_changes").fetchone()[0] or 0
        report = make_service(own_company).import_path(folder, mapping=None, source=SOURCE,
                                                       dry_run=False)
        assert report.ok, report.errors
        counts_ = report.entities["targets"]
        assert (counts_.inserted, counts_.updated, counts_.unchanged) == (2, 1, 4)
        log = state.execute(
            "SELECT actor, action, kpi, period_start, period_end, rep_id, team, old_value, "
            "new_value, source FROM target_changes WHERE id > ? ORDER BY id", [logged]
        ).fetchall()
        stored = state.execute(
            "SELECT kpi, rep_id, team, value, source FROM targets WHERE rep_id IN "
            "('r2', 'r3', 'r4') ORDER BY rep_id").fetchall()
    finally:
        state.close()
    actor = f"import:{SOURCE}"
    assert log == [
        (actor, "imported", "calls", "2024-04-01", "2024-04-30", "r2", None, 30.0, 35.0,
         SOURCE),
        (actor, "imported", "calls", "2024-04-01", "2024-04-30", "r3", "North", None, 40.0,
         SOURCE),
        (actor, "imported", "meetings", "2024-04-01", "2024-04-30", "r4", None, None, 7.0,
         SOURCE),
    ]
    assert stored == [("calls", "r2", None, 35.0, SOURCE), ("calls", "r3", "North", 40.0, SOURCE),
                      ("meetings", "r4", None, 7.0, SOURCE)]


def test_bad_kpi_is_rejected_and_nothing_is_written(run_cli, own_company: Path,
                                                    tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "bad", {
        "reps.csv": REPS + "r5,Eve,South\n",
        "targets.csv": "kpi,period_start,period_end,value,rep_id,team\n"
                       "calls,2024-05-01,2024-05-31,50,r5,\n"
                       "deal_won,2024-05-01,2024-05-31,5,r5,\n",
    })
    before_sqlite = sqlite_targets(own_company)
    before_facts = facts_snapshot(own_company)
    result = run_cli(own_company, "import", folder, "--source", SOURCE, "--format", "json")
    assert result.returncode == 1
    report = result.json()
    assert report["ok"] is False
    located = [(e["file"], e["row"], e["column"]) for e in report["errors"]]
    assert located == [("targets.csv", 3, "kpi")]
    assert "deal_won" in report["errors"][0]["message"]
    assert sqlite_targets(own_company) == before_sqlite
    assert facts_snapshot(own_company) == before_facts


def test_a_failing_facts_write_rolls_back_the_targets(own_company: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from saleskpi.store.loader import Loader

    folder = write_folder(tmp_path / "new", {
        "reps.csv": REPS + "r5,Eve,South\n",
        "targets.csv": "kpi,period_start,period_end,value,rep_id,team\n"
                       "calls,2024-05-01,2024-05-31,50,r5,\n",
        "fx_rates.csv": "date,currency,rate\n2024-05-01,EUR,1.1\n",
    })
    before_sqlite = sqlite_targets(own_company)
    before_facts = facts_snapshot(own_company)
    original = Loader._write

    def failing(self: Loader, entity: Any) -> None:
        if entity.name == "fx_rates":  # written after the targets
            raise RuntimeError("disk full")
        original(self, entity)

    monkeypatch.setattr(Loader, "_write", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        make_service(own_company).import_path(folder, mapping=None, source=SOURCE,
                                              dry_run=False)
    assert sqlite_targets(own_company) == before_sqlite
    assert facts_snapshot(own_company) == before_facts


def test_a_failing_targets_write_rolls_back_the_facts(own_company: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import saleskpi.store.journal as journal

    folder = write_folder(tmp_path / "new", {
        "reps.csv": REPS + "r5,Eve,South\n",
        "targets.csv": "kpi,period_start,period_end,value,rep_id,team\n"
                       "calls,2024-05-01,2024-05-31,50,r5,\n",
    })
    before_sqlite = sqlite_targets(own_company)
    before_facts = facts_snapshot(own_company)

    def failing(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database is locked")

    # SQLite's side of the import's journaled write fails before anything commits.
    monkeypatch.setattr(journal, "apply_changes", failing)
    with pytest.raises(RuntimeError, match="locked"):
        make_service(own_company).import_path(folder, mapping=None, source=SOURCE,
                                              dry_run=False)
    assert sqlite_targets(own_company) == before_sqlite
    assert facts_snapshot(own_company) == before_facts


def test_dry_run_counts_targets_and_writes_nothing(own_company: Path, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "dry", {
        "reps.csv": REPS,
        "targets.csv": TARGETS + "calls,2024-05-01,2024-05-31,50,r1,\n",
    })
    before_sqlite = sqlite_targets(own_company)
    report = make_service(own_company).import_path(folder, mapping=None, source=SOURCE,
                                                   dry_run=True)
    assert report.ok, report.errors
    c = report.entities["targets"]
    assert (c.inserted, c.updated, c.unchanged) == (1, 0, 5)
    assert sqlite_targets(own_company) == before_sqlite
