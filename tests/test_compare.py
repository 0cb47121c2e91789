"""Comparison table and leaderboard against a hand-counted team (UTC, USD).

Four reps in two teams. March 2024 is the month compared; February and January
are there for the leaderboard's previous periods. Every expected number below
was counted by hand from the fixture; the comments show the counting.

March 2024       calls  meetings  conv     won  revenue  win rate  avg deal  response  ≤5 min
Anna  (North)    10     4         4/10     2    4000     2/4       2000      3 min     2/2
Boris (North)    6      3         3/6      1    2000     1/1       2000      10 min    0/1
Chen  (South)    4      1         1/4      3    3000     3/4       1000      5 min     1/1
=Dana (South)    0      0         —        0    0        —         —         —         —
team average     6.667  2.667     0.38333  2    3000     0.75      1666.67   6 min     0.6667
  (over the reps active in March: Anna, Boris, Chen; Dana did nothing and does not count)
total            20     8         8/20     6    9000     6/9       1500      4.5 min   3/4

Revenue: January Anna 10000; February Anna 1000, Boris 5000, Chen 3000.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from saleskpi.domain.conditions import ConditionError
from saleskpi.domain.conditions import parse_threshold as parse_condition
from saleskpi.domain.query import KpiQuery, Scope
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.compare import (
    DEFAULT_KPIS,
    Leaderboard,
    against_average,
    compare,
    leaderboard,
    previous_range,
    rank,
)
from saleskpi.service.core import SalesKpiService
from tests.conftest import CliResult

NOW = dt.datetime(2024, 12, 1)
MARCH = {"start": dt.date(2024, 3, 1), "end": dt.date(2024, 3, 31)}
MARCH_ARGS = ("--from", "2024-03-01", "--to", "2024-03-31")

REPS = """id,name,team
a1,Anna Avery,North
b1,Boris Bell,North
c1,Chen Cole,South
d1,=Dana Dale,South
"""
# Each lead's first contact is an outbound call: 2, 4, 10 and 5 (= 300 s) minutes.
LEADS = """id,created_at,rep_id,source
LA1,2024-03-04 09:00:00,a1,website
LA2,2024-03-05 09:00:00,a1,website
LB1,2024-03-04 10:00:00,b1,ads
LC1,2024-03-04 11:00:00,c1,referral
"""
DEALS = """id,rep_id,status,created_at,amount,currency,closed_at
DA1,a1,won,2024-03-01 09:00:00,1000,USD,2024-03-10 12:00:00
DA2,a1,won,2024-03-01 09:00:00,3000,USD,2024-03-20 12:00:00
DA3,a1,lost,2024-03-01 09:00:00,500,USD,2024-03-11 12:00:00
DA4,a1,lost,2024-03-01 09:00:00,700,USD,2024-03-12 12:00:00
DB1,b1,won,2024-03-01 09:00:00,2000,USD,2024-03-15 12:00:00
DB3,b1,open,2024-03-01 09:00:00,900,USD,
DC1,c1,won,2024-03-01 09:00:00,1000,USD,2024-03-05 12:00:00
DC2,c1,won,2024-03-01 09:00:00,1000,USD,2024-03-06 12:00:00
DC3,c1,won,2024-03-01 09:00:00,1000,USD,2024-03-07 12:00:00
DC4,c1,lost,2024-03-01 09:00:00,400,USD,2024-03-08 12:00:00
DA5,a1,won,2024-02-01 09:00:00,1000,USD,2024-02-10 12:00:00
DB2,b1,won,2024-02-01 09:00:00,5000,USD,2024-02-12 12:00:00
DC5,c1,won,2024-02-01 09:00:00,3000,USD,2024-02-14 12:00:00
DA6,a1,won,2024-01-02 09:00:00,10000,USD,2024-01-31 12:00:00
"""


def _activities() -> str:
    lines = ["id,type,rep_id,occurred_at,lead_id,direction",
             "K1,call,a1,2024-03-04 09:02:00,LA1,out",
             "K2,call,a1,2024-03-05 09:04:00,LA2,out",
             "K3,call,b1,2024-03-04 10:10:00,LB1,out",
             "K4,call,c1,2024-03-04 11:05:00,LC1,out",
             # inbound: not a call made, and not a first contact
             "K5,call,c1,2024-03-20 10:00:00,,in"]
    # calls not tied to a lead, and meetings, one a day from March 6 and 18
    for rep, calls, meetings in (("a1", 8, 4), ("b1", 5, 3), ("c1", 3, 1)):
        lines += [f"{rep}C{i},call,{rep},2024-03-{6 + i:02d} 15:00:00,,out" for i in range(calls)]
        lines += [f"{rep}M{i},meeting,{rep},2024-03-{18 + i:02d} 15:00:00,,"
                  for i in range(meetings)]
    return "\n".join(lines) + "\n"


def write_fixture(root: Path) -> Path:
    """The canonical CSV files in ``root/data`` and a UTC/USD workspace in ``root/ws``."""
    data = root / "data"
    data.mkdir(parents=True)
    for name, text in (("reps", REPS), ("leads", LEADS), ("activities", _activities()),
                       ("deals", DEALS)):
        (data / f"{name}.csv").write_text(text, encoding="utf-8")
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD")
    return workspace


@pytest.fixture(scope="module")
def workspace_with_team(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("team")
    workspace = write_fixture(root)
    svc = SalesKpiService(Settings(workspace=workspace))
    report = svc.import_path(root / "data", mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    return workspace


@pytest.fixture(scope="module")
def service(workspace_with_team: Path) -> SalesKpiService:
    return SalesKpiService(Settings(workspace=workspace_with_team))


def march(service: SalesKpiService, *kpis: str, threshold: float = 0.10,
          scope: Scope = Scope(), **query: object):
    return compare(service, KpiQuery(tuple(kpis), **{**MARCH, **query}),  # type: ignore[arg-type]
                   scope, threshold, now=NOW)


def by_name(comparison) -> dict[str, object]:
    return {row.name: row for row in comparison.rows}


# -- marks against the team average ---------------------------------------------------------


def test_the_fixture_counts_match_the_scorecard(service: SalesKpiService) -> None:
    card = service.scorecard(KpiQuery(DEFAULT_KPIS, by=("rep",), **MARCH), now=NOW)
    values = {r.keys["rep"]: {k: v.value for k, v in r.values.items()} for r in card.rows}
    assert values["a1"]["calls"] == 10 and values["b1"]["calls"] == 6
    assert values["c1"]["calls"] == 4 and values["d1"]["calls"] == 0  # K5 is inbound
    assert [values[r]["meetings"] for r in ("a1", "b1", "c1", "d1")] == [4, 3, 1, 0]
    assert [values[r]["revenue"] for r in ("a1", "b1", "c1", "d1")] == [4000, 2000, 3000, 0]
    assert [values[r]["lead_response_time"] for r in ("a1", "b1", "c1")] == [
        pytest.approx(3), pytest.approx(10), pytest.approx(5)]
    assert [values[r]["speed_to_lead_5min"] for r in ("a1", "b1", "c1")] == [1, 0, 1]
    assert values["d1"]["lead_response_time"] is None


def test_default_kpis_every_rep_and_the_average_row(service: SalesKpiService) -> None:
    comparison = march(service)
    assert comparison.kpis == list(DEFAULT_KPIS)
    # Reps in name order; Dana, who did nothing, is a row too.
    assert [r.name for r in comparison.rows] == ["=Dana Dale", "Anna Avery", "Boris Bell",
                                                 "Chen Cole"]
    average = comparison.average(None)
    assert average is not None
    mean = {k: v.value for k, v in average.values.items()}
    # Dana did nothing in March: not active, so not in the average
    assert mean["calls"] == pytest.approx(20 / 3)  # (10 + 6 + 4) / 3
    assert mean["meetings"] == pytest.approx(8 / 3)  # (4 + 3 + 1) / 3
    # rates: the mean over reps that have one (Dana has none)
    assert mean["call_to_meeting_conversion"] == pytest.approx((0.4 + 0.5 + 0.25) / 3)
    assert mean["win_rate"] == pytest.approx(0.75)  # (0.5 + 1 + 0.75) / 3
    assert mean["average_deal_size"] == pytest.approx(5000 / 3)
    assert mean["lead_response_time"] == pytest.approx(6)  # (3 + 10 + 5) / 3
    assert mean["revenue"] == 3000  # (4000 + 2000 + 3000) / 3
    total = comparison.total(None)
    assert total is not None
    assert total.values["calls"].value == 20
    assert (total.values["win_rate"].numerator, total.values["win_rate"].denominator) == (6, 9)
    assert total.values["lead_response_time"].value == pytest.approx(4.5)  # median of 2 4 5 10


def test_marks_follow_higher_is_better(service: SalesKpiService) -> None:
    rows = by_name(march(service))
    anna, boris, chen, dana = (rows[n] for n in ("Anna Avery", "Boris Bell", "Chen Cole",
                                                 "=Dana Dale"))
    calls = {r.name: (r.cells["calls"].vs_average, r.cells["calls"].mark)
             for r in (anna, boris, chen, dana)}
    assert calls == {"Anna Avery": (pytest.approx(0.5), "better"),  # 10 vs 20/3
                     "Boris Bell": (pytest.approx(-0.1), None),  # -10%: not beyond 10%
                     "Chen Cole": (pytest.approx(-0.4), "worse"),
                     "=Dana Dale": (pytest.approx(-1.0), "worse")}
    # Lower is better: Anna answers in 3 min against 6 (-50%), Boris in 10 (+67%).
    assert anna.cells["lead_response_time"].position == "below"
    assert anna.cells["lead_response_time"].mark == "better"
    assert boris.cells["lead_response_time"].position == "above"
    assert boris.cells["lead_response_time"].mark == "worse"
    assert boris.cells["lead_response_time"].vs_average == pytest.approx(4 / 6)
    assert chen.cells["lead_response_time"].mark == "better"  # 5 vs 6: -16.7%
    # within 10%: no mark; equal to the average: no mark
    assert anna.cells["call_to_meeting_conversion"].vs_average == pytest.approx(0.4 / 1.15 * 3 - 1)
    assert anna.cells["call_to_meeting_conversion"].mark is None
    assert chen.cells["win_rate"].vs_average == pytest.approx(0)
    assert chen.cells["win_rate"].mark is None
    # no value: no mark, no difference
    assert dana.cells["win_rate"].value is None
    assert (dana.cells["win_rate"].vs_average, dana.cells["win_rate"].mark) == (None, None)
    assert boris.cells["revenue"].mark == "worse"  # 2000 vs 3000: -33.3%
    assert chen.cells["revenue"].mark is None  # 3000 vs 3000


def test_strengths_and_weaknesses(service: SalesKpiService) -> None:
    rows = by_name(march(service))
    # Anna: meetings +50%, within 5 min +50% (2/2 vs 2/3), response -50% (lower is
    # better); calls +50% too, but 10 / (20/3) - 1 is a hair under 0.5 in floating point
    assert rows["Anna Avery"].strengths == ["meetings", "speed_to_lead_5min",
                                            "lead_response_time"]
    assert rows["Anna Avery"].weaknesses == ["win_rate"]  # 0.5 vs 0.75
    # Boris: win rate +33%, conversion +30%, deal size +20%, meetings +12.5%;
    # contacted within 5 min 0 vs 0.67 (-100%), response +67% (lower is better), deals -50%
    assert rows["Boris Bell"].strengths == ["win_rate", "call_to_meeting_conversion",
                                            "average_deal_size"]
    assert rows["Boris Bell"].weaknesses == ["speed_to_lead_5min", "lead_response_time",
                                             "deals_won"]
    # Chen: within 5 min +50% (1 / (2/3) - 1, a hair over 0.5), deals +50% (3 vs 2),
    # response -16.7%; meetings -62.5%, calls -40%, deal size -40%, conversion -35%
    assert rows["Chen Cole"].strengths == ["speed_to_lead_5min", "deals_won",
                                           "lead_response_time"]
    assert rows["Chen Cole"].weaknesses == ["meetings", "calls", "average_deal_size"]
    assert rows["=Dana Dale"].strengths == []
    assert rows["=Dana Dale"].weaknesses == ["calls", "meetings", "deals_won"]


def test_threshold_is_strict_and_team_filter_changes_the_average(
        service: SalesKpiService) -> None:
    north = march(service, "calls", "meetings", where=(("team", ("North",)),))
    assert [r.name for r in north.rows] == ["Anna Avery", "Boris Bell"]
    average = north.average(None)
    assert average is not None and average.values["calls"].value == 8  # (10 + 6) / 2
    assert north.rows[0].cells["calls"].mark == "better"  # +25%
    assert north.rows[1].cells["calls"].mark == "worse"  # -25%
    assert north.rows[0].cells["meetings"].vs_average == pytest.approx(0.5 / 3.5)
    # exactly at the threshold is not "more than" it
    strict = march(service, "calls", threshold=0.25, where=(("team", ("North",)),))
    assert [r.cells["calls"].mark for r in strict.rows] == [None, None]
    loose = march(service, "calls", threshold=0.0)
    assert all(r.cells["calls"].mark for r in loose.rows)
    with pytest.raises(ValueError, match="threshold"):
        march(service, "calls", threshold=-0.1)


def test_scope_limits_rows_and_average(service: SalesKpiService) -> None:
    south = march(service, "revenue", scope=Scope(teams=frozenset({"South"})))
    assert [r.rep for r in south.rows] == ["d1", "c1"]
    average = south.average(None)
    # Dana, who did nothing, does not count: Chen's 3000 alone
    assert average is not None and average.values["revenue"].value == 3000


def test_a_rep_is_compared_with_their_team_average_without_seeing_it(
        service: SalesKpiService) -> None:
    """Anna (North) sees her own row against North's average: (10+6)/2 calls, (4000+2000)/2."""
    anna = march(service, "calls", "revenue", scope=Scope(rep_ids=frozenset({"a1"})))
    assert [r.rep for r in anna.rows] == ["a1"]
    average = anna.average(None)
    assert average is not None
    assert average.values["calls"].value == 8
    assert average.values["revenue"].value == 3000
    cells = anna.rows[0].cells
    assert cells["calls"].vs_average == pytest.approx(10 / 8 - 1)  # 25 % above her team
    assert "b1" not in str(anna.to_dict())  # Boris's own figures never reach her


def test_a_comparison_without_totals_has_the_same_rows_and_average(
        service: SalesKpiService) -> None:
    """A rep's page asks without total rows (a question of its own): the same rows and
    the same team average, no totals."""
    query = KpiQuery(("calls", "revenue"), **MARCH)  # type: ignore[arg-type]
    north = Scope(teams=frozenset({"North"}))
    full = compare(service, query, north, now=NOW)
    bare = compare(service, query, north, now=NOW, totals=False)
    assert full.totals and not bare.totals
    assert bare.rows == full.rows and bare.averages == full.averages
    average = bare.average(None)
    assert average is not None and average.values["calls"].value == 8


def test_against_average_edge_cases() -> None:
    assert against_average(None, 5, higher_is_better=True, threshold=0.1) == (None, None, None)
    assert against_average(5, None, higher_is_better=True, threshold=0.1) == (None, None, None)
    assert against_average(0, 0, higher_is_better=True, threshold=0.1) == (0.0, None, None)
    # average 0, value not: no finite relative difference, still clearly beyond it
    assert against_average(2, 0, higher_is_better=False, threshold=0.1) == (
        None, "above", "worse")
    # a negative average: relative to its size
    assert against_average(-5, -10, higher_is_better=True, threshold=0.1) == (
        pytest.approx(0.5), "above", "better")
    assert against_average(1.1, 1.0, higher_is_better=True, threshold=0.1)[2] is None


# -- sorting and filtering -------------------------------------------------------------------


def test_sorting_best_first_by_default_and_no_value_last(service: SalesKpiService) -> None:
    comparison = march(service)
    names = lambda c: [r.name.split()[0] for r in c.rows]  # noqa: E731
    assert names(comparison.sorted_by("calls")) == ["Anna", "Boris", "Chen", "=Dana"]
    assert names(comparison.sorted_by("calls", descending=False)) == [
        "=Dana", "Chen", "Boris", "Anna"]
    # lower is better: fastest first; Dana has no value and stays last either way
    assert names(comparison.sorted_by("lead_response_time")) == [
        "Anna", "Chen", "Boris", "=Dana"]
    assert names(comparison.sorted_by("lead_response_time", descending=True)) == [
        "Boris", "Chen", "Anna", "=Dana"]
    # ties keep name order
    assert names(comparison.sorted_by("average_deal_size")) == [
        "Anna", "Boris", "Chen", "=Dana"]


def test_filtering_keeps_the_team_average(service: SalesKpiService) -> None:
    comparison = march(service)
    more = comparison.filtered([parse_condition("calls>5")])
    assert [r.name for r in more.rows] == ["Anna Avery", "Boris Bell"]
    assert more.average(None) == comparison.average(None)
    # a rep with no win rate meets no condition on it; 80% means 0.8
    low = comparison.filtered([parse_condition("win_rate < 80%")])
    assert [r.name for r in low.rows] == ["Anna Avery", "Chen Cole"]
    both = comparison.filtered([parse_condition("win_rate<=0.75"), parse_condition("calls>=5")])
    assert [r.name for r in both.rows] == ["Anna Avery"]


def test_parse_condition() -> None:
    condition = parse_condition(" revenue >= 1000.5 ")
    assert (condition.kpi, condition.op, condition.value) == ("revenue", ">=", 1000.5)
    assert parse_condition("win_rate<50%").value == pytest.approx(0.5)
    for bad in ("calls", "calls=5", "calls>five", "5>calls", "calls>5;drop"):
        with pytest.raises(ConditionError, match="KPI<VALUE"):
            parse_condition(bad)


# -- JSON and CSV ----------------------------------------------------------------------------


def test_json_shape(service: SalesKpiService) -> None:
    data = march(service, "calls", "win_rate", "lead_response_time").to_dict()
    assert set(data) == {"kpis", "period", "from", "to", "where", "timezone", "currency",
                         "threshold", "higher_is_better", "rows", "averages", "totals"}
    assert data["kpis"] == ["calls", "win_rate", "lead_response_time"]
    assert data["from"] == "2024-03-01" and data["threshold"] == 0.1
    assert data["higher_is_better"] == {"calls": True, "win_rate": True,
                                        "lead_response_time": False}
    boris = next(r for r in data["rows"] if r["rep"] == "b1")
    assert boris["rep_name"] == "Boris Bell" and boris["period"] is None
    win_rate = boris["values"]["win_rate"]
    assert {k: win_rate[k] for k in ("value", "numerator", "denominator", "unit", "vs_average",
                                     "mark")} == {
        "value": 1, "numerator": 1, "denominator": 1, "unit": "ratio",
        "vs_average": pytest.approx(1 / 3, abs=1e-6), "mark": "better"}
    # 1 of 1 is far from certain: the scorecard's 95% interval comes along
    assert win_rate["ci_low"] == pytest.approx(0.2065, abs=1e-4) and win_rate["ci_high"] == 1
    assert boris["values"]["calls"] == {  # 6 against 20/3: -10%, not beyond the 10%
        "value": 6, "numerator": None, "denominator": None, "unit": "count",
        "vs_average": pytest.approx(-0.1), "mark": None}
    assert boris["values"]["lead_response_time"]["mark"] == "worse"
    assert boris["strengths"] == ["win_rate"]
    assert boris["weaknesses"] == ["lead_response_time"]
    dana = next(r for r in data["rows"] if r["rep"] == "d1")
    assert {k: v for k, v in dana["values"]["win_rate"].items() if not k.startswith("ci_")} == {
        "value": None, "numerator": 0, "denominator": 0, "unit": "ratio", "vs_average": None,
        "mark": None}
    assert data["averages"][0]["values"]["calls"]["value"] == pytest.approx(20 / 3)
    assert data["totals"][0]["values"]["win_rate"]["numerator"] == 6


def test_csv_is_one_table_and_safe(service: SalesKpiService) -> None:
    text = march(service, "calls", "win_rate").to_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["row", "rep", "rep_name", "calls", "calls_vs_average",
                             "calls_mark", "win_rate", "win_rate_numerator",
                             "win_rate_denominator", "win_rate_vs_average", "win_rate_mark",
                             "strengths", "weaknesses"]
    assert [r["row"] for r in rows] == ["rep", "rep", "rep", "rep", "average", "total"]
    dana = next(r for r in rows if r["rep"] == "d1")
    assert dana["rep_name"] == "'=Dana Dale"  # not run as a formula
    assert dana["calls_vs_average"] == "-1"  # numbers stay numbers
    assert dana["weaknesses"] == "calls"
    anna = next(r for r in rows if r["rep"] == "a1")
    assert (anna["calls"], anna["calls_mark"], anna["win_rate_mark"]) == ("10", "better", "worse")
    assert rows[-1]["win_rate_numerator"] == "6" and rows[-1]["calls"] == "20"


# -- leaderboard -----------------------------------------------------------------------------


def test_rank_ties_share_a_rank() -> None:
    assert rank({"a": 3, "b": 5, "c": 5, "d": 1, "e": None}, higher_is_better=True) == {
        "a": 3, "b": 1, "c": 1, "d": 4, "e": None}
    assert rank({"a": 3, "b": 5, "c": 5, "d": 1}, higher_is_better=False) == {
        "a": 2, "b": 3, "c": 3, "d": 1}
    assert rank({"a": 1 / 3, "b": 2 / 6}, higher_is_better=True) == {"a": 1, "b": 1}


def test_previous_range() -> None:
    def prev(a: str, b: str) -> tuple[str, str, str]:
        p = previous_range(dt.date.fromisoformat(a), dt.date.fromisoformat(b))
        return p.start.isoformat(), p.end.isoformat(), p.rule

    assert prev("2024-03-01", "2024-03-31") == ("2024-02-01", "2024-02-29", "months")
    assert prev("2024-04-01", "2024-06-30") == ("2024-01-01", "2024-03-31", "months")
    assert prev("2024-01-01", "2024-12-31") == ("2023-01-01", "2023-12-31", "months")
    assert prev("2024-03-05", "2024-03-11") == ("2024-02-27", "2024-03-04", "days")
    # A month to date: the same days of the month before (1-2 December: 1-2 November),
    # kept within the shorter month.
    assert prev("2024-03-01", "2024-03-01") == ("2024-02-01", "2024-02-01", "to_date")
    assert prev("2026-12-01", "2026-12-02") == ("2026-11-01", "2026-11-02", "to_date")
    assert prev("2024-03-01", "2024-03-30") == ("2024-02-01", "2024-02-29", "to_date")
    assert prev("2024-04-01", "2024-05-10") == ("2024-01-01", "2024-02-10", "to_date")
    # The same days a year before.
    last_year = previous_range(dt.date(2024, 2, 1), dt.date(2024, 2, 29), "last_year")
    assert (last_year.start, last_year.end, last_year.rule) == (
        dt.date(2023, 2, 1), dt.date(2023, 2, 28), "last_year")


def board(service: SalesKpiService, kpi: str, **query: object) -> Leaderboard:
    return leaderboard(service, KpiQuery((kpi,), **query), now=NOW)  # type: ignore[arg-type]


def standings(result: Leaderboard) -> list[tuple[object, ...]]:
    return [(r.name.split()[0], r.rank, r.previous_rank, r.rank_change) for r in result.rows]


def test_leaderboard_rank_change_against_the_previous_month(service: SalesKpiService) -> None:
    result = board(service, "revenue", **MARCH)
    assert result.previous is not None
    assert (result.previous.start, result.previous.end) == (dt.date(2024, 2, 1),
                                                            dt.date(2024, 2, 29))
    # March: Anna 4000, Chen 3000, Boris 2000, Dana 0.
    # February (not the 31 days before March 1, which would hold Anna's 10000 of Jan 31):
    # Boris 5000, Chen 3000, Anna 1000, Dana 0.
    assert standings(result) == [("Anna", 1, 3, 2), ("Chen", 1 + 1, 2, 0),
                                 ("Boris", 3, 1, -2), ("=Dana", 4, 4, 0)]
    assert result.rows[0].previous_value == 1000


def test_leaderboard_ties_unranked_and_top(service: SalesKpiService) -> None:
    result = board(service, "average_deal_size", **MARCH)
    # Anna 4000/2 and Boris 2000/1 tie; Chen 3000/3; Dana has no deal: last, unranked.
    assert [(n, r) for n, r, *_ in standings(result)] == [
        ("Anna", 1), ("Boris", 1), ("Chen", 3), ("=Dana", None)]
    assert result.is_ratio
    assert (result.rows[0].value.numerator, result.rows[0].value.denominator) == (4000, 2)
    assert [r.name for r in result.top(1).rows] == ["Anna Avery", "Boris Bell"]
    assert [r.name for r in result.top(3).rows] == ["Anna Avery", "Boris Bell", "Chen Cole"]
    fastest = board(service, "lead_response_time", **MARCH)
    assert [(n, r) for n, r, *_ in standings(fastest)] == [
        ("Anna", 1), ("Chen", 2), ("Boris", 3), ("=Dana", None)]


def test_leaderboard_days_rule_and_no_range(service: SalesKpiService) -> None:
    # March 5-11 against Feb 27 - Mar 4, when nobody sold: all shared rank 1.
    # March 5-11: Chen 3000 (DC1-DC3), Anna 1000 (DA1), Boris and Dana 0.
    result = board(service, "revenue", start=dt.date(2024, 3, 5), end=dt.date(2024, 3, 11))
    assert result.previous is not None and result.previous.rule == "days"
    # (a tie is listed in name order: "=" sorts before letters)
    assert standings(result) == [("Chen", 1, 1, 0), ("Anna", 2, 1, -1), ("=Dana", 3, 1, -2),
                                 ("Boris", 3, 1, -2)]
    everything = board(service, "revenue")
    assert everything.previous is None
    assert [r.rank_change for r in everything.rows] == [None] * 4


def test_leaderboard_by_month_compares_each_month_with_the_one_before(
        service: SalesKpiService) -> None:
    result = board(service, "revenue", period="month", start=dt.date(2024, 2, 1),
                   end=dt.date(2024, 3, 31))
    assert result.previous is not None
    assert result.previous.to_dict() == {"from": "2024-01-01", "to": "2024-01-31",
                                         "rule": "period"}
    by_period: dict[str | None, list[tuple[object, ...]]] = {}
    for row, standing in zip(result.rows, standings(result), strict=True):
        by_period.setdefault(row.period, []).append(standing)
    # January: Anna 10000 first, the others share 2nd with 0.
    assert by_period["2024-02-01"] == [("Boris", 1, 2, 1), ("Chen", 2, 2, 0),
                                       ("Anna", 3, 1, -2), ("=Dana", 4, 2, -2)]
    assert by_period["2024-03-01"] == [("Anna", 1, 3, 2), ("Chen", 2, 2, 0),
                                       ("Boris", 3, 1, -2), ("=Dana", 4, 4, 0)]


def test_leaderboard_json_and_csv(service: SalesKpiService) -> None:
    result = board(service, "win_rate", **MARCH)
    data = result.to_dict()
    assert data["kpi"] == "win_rate" and data["higher_is_better"] is True
    assert data["previous"] == {"from": "2024-02-01", "to": "2024-02-29", "rule": "months"}
    # Boris 1/1, Chen 3/4, Anna 2/4; in February each won their only closed deal.
    assert [(r["rep"], r["rank"], r["numerator"], r["denominator"], r["previous_rank"],
             r["rank_change"]) for r in data["rows"]] == [
        ("b1", 1, 1, 1, 1, 0), ("c1", 2, 3, 4, 1, -1), ("a1", 3, 2, 4, 1, -2),
        ("d1", None, 0, 0, None, None)]
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert list(rows[0]) == ["rank", "rep", "rep_name", "win_rate", "win_rate_numerator",
                             "win_rate_denominator", "previous_rank", "rank_change"]
    assert rows[1]["rank_change"] == "-1"
    assert rows[3]["rep_name"] == "'=Dana Dale" and rows[3]["rank"] == ""


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["compare", "leaderboard"])
def test_help_has_an_example(run_cli, tmp_path: Path, command: str) -> None:
    result: CliResult = run_cli(tmp_path, command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout


def test_cli_compare_table_json_csv(run_cli, workspace_with_team: Path) -> None:
    table = run_cli(workspace_with_team, "compare", *MARCH_ARGS, "--sort", "revenue")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    order = [next(i for i, line in enumerate(lines) if name in line)
             for name in ("Anna Avery", "Chen Cole", "Boris Bell", "=Dana Dale")]
    assert order == sorted(order)  # revenue, best first
    anna = lines[order[0]]
    assert "10 ↑" in anna and "4 000 ↑" in anna  # calls, revenue (against 20/3 and 3000)
    assert "50.0% ↓ (2/4)" in anna  # win rate: worse, on few cases
    assert "Team average" in table.stdout and "Total" in table.stdout
    assert "lower is better" in table.stdout
    assert "Strengths and weaknesses" in table.stdout
    assert ("Anna Avery — strengths: Meetings +50%, Contacted within 5 min +50%, "
            "Lead response time −50%; weaknesses: Win rate −33%") in table.stdout

    data = run_cli(workspace_with_team, "compare", "calls", *MARCH_ARGS, "--where",
                   "team=North", "--filter", "win_rate>0.6", "--format", "json").json()
    assert data["kpis"] == ["calls", "win_rate"]  # the filter's KPI is shown too
    assert [r["rep_name"] for r in data["rows"]] == ["Boris Bell"]
    assert data["rows"][0]["values"]["calls"]["mark"] == "worse"  # 6 against North's 8
    assert data["averages"][0]["values"]["calls"]["value"] == 8

    text = run_cli(workspace_with_team, "compare", "calls", *MARCH_ARGS, "--sort", "calls",
                   "--asc", "--format", "csv")
    assert text.returncode == 0, text.stderr
    rows = list(csv.DictReader(io.StringIO(text.stdout)))
    assert [r["rep_name"] for r in rows if r["row"] == "rep"] == [
        "'=Dana Dale", "Chen Cole", "Boris Bell", "Anna Avery"]


def test_cli_compare_errors(run_cli, workspace_with_team: Path) -> None:
    bad = run_cli(workspace_with_team, "compare", "--filter", "calls=5")
    assert bad.returncode == 2 and "KPI<VALUE" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = run_cli(workspace_with_team, "compare", "--sort", "revenu")
    assert unknown.returncode == 2 and "unknown KPI 'revenu'" in unknown.stderr
    negative = run_cli(workspace_with_team, "compare", "--threshold", "-1")
    assert negative.returncode == 2 and "threshold" in negative.stderr


def test_cli_leaderboard(run_cli, workspace_with_team: Path) -> None:
    table = run_cli(workspace_with_team, "leaderboard", "revenue", *MARCH_ARGS)
    assert table.returncode == 0, table.stderr
    assert "2024-02-01 – 2024-02-29" in table.stdout
    anna = next(line for line in table.stdout.splitlines() if "Anna Avery" in line)
    assert "4 000" in anna and "↑2" in anna
    data = run_cli(workspace_with_team, "leaderboard", "average_deal_size", *MARCH_ARGS,
                   "--top", "1", "--format", "json").json()
    assert [(r["rep"], r["rank"]) for r in data["rows"]] == [("a1", 1), ("b1", 1)]
    text = run_cli(workspace_with_team, "leaderboard", "lead_response_time", "--period",
                   "month", *MARCH_ARGS, "--format", "csv")
    assert text.returncode == 0, text.stderr
    rows = list(csv.DictReader(io.StringIO(text.stdout)))
    assert [(r["rep"], r["period"], r["rank"]) for r in rows] == [
        ("a1", "2024-03-01", "1"), ("c1", "2024-03-01", "2"), ("b1", "2024-03-01", "3"),
        ("d1", "2024-03-01", "")]
