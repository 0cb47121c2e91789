"""Bonus plans: every amount here is computed by hand in the comments beside it.

The pure arithmetic first (``saleskpi.domain.bonus``), then the hand-counted company of
``tests/bonus_company.py`` (its docstring has the deals and targets) through the
service, the views, the CLI, the REST API, the page and the payroll workbook.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from saleskpi.domain.bonus import Measured, compute, round_money, what_if
from saleskpi.domain.bonus_plans import BonusPlanError, PlanVersion, parse_plans
from saleskpi.domain.errors import Forbidden, NotFound
from saleskpi.domain.query import Scope
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service import bonus as service_bonus
from saleskpi.service.auth import add_user, issue_token, list_users
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.surfaces.server import create_app
from saleskpi.views.base import LOCAL
from saleskpi.views.bonus import BonusParams, RepParams, bonuses, explain, whatif
from tests.bonus_company import PLANS_YAML, write_company

D = Decimal
PASSWORD = "bonus-test-password"


def version(text: str) -> PlanVersion:
    """One version of a plan written as YAML (the version's mapping only)."""
    plan = {"name": "p", "currency": "UAH", "versions": [yaml.safe_load(text)]}
    return parse_plans({"plans": [plan]}, "bonus_plans.yaml").plans[0].versions[0]


REVENUE = """
effective_from: 2025-01-01
components:
  - name: revenue_plan
    kpi: revenue
    target_bonus: 10000
    tier_mode: {mode}
    tiers: [{{from: 0, rate: 0.5}}, {{from: 80%, rate: 1}}]
    accelerator: {{multiplier: 1.5}}
    cap: 14000
"""


def revenue(actual: int, target: int = 100_000) -> dict[str, Measured]:
    return {"revenue": Measured("revenue", D(actual), D(target))}


def slices(result: Any) -> list[tuple[Any, ...]]:
    return [(line.kind, line.low, line.high, line.rate, line.multiplier, line.amount)
            for line in result.lines]


# -- the arithmetic ----------------------------------------------------------------------
def test_marginal_tiers_with_accelerator_and_cap() -> None:
    plan = version(REVENUE.format(mode="marginal"))
    # 130 %: 1 % of the 10 000 target bonus is 100. 0-80 % at 0.5: 80 × 0.5 × 100 = 4 000;
    # 80-100 % at 1: 20 × 100 = 2 000; 100-130 % at 1 × 1.5: 30 × 150 = 4 500. 10 500.
    result = compute(plan, revenue(130_000), "UAH")
    assert slices(result) == [("slice", 0, 80, D("0.5"), 1, D("4000.00")),
                              ("slice", 80, 100, 1, 1, D("2000.00")),
                              ("slice", 100, 130, 1, D("1.5"), D("4500.00"))]
    assert result.total == D("10500.00") and not result.cap_hit
    # 200 %: 4 000 + 2 000 + 100 × 150 = 21 000, capped at 14 000 (−7 000).
    capped = compute(plan, revenue(200_000), "UAH")
    assert slices(capped)[-1] == ("cap", None, None, None, None, D("-7000.00"))
    assert capped.total == D("14000.00") and capped.components[0].cap_hit
    # 90 %: 4 000 + 10 × 100 = 5 000.
    assert compute(plan, revenue(90_000), "UAH").total == D("5000.00")


def test_retroactive_tiers_with_accelerator_and_cap() -> None:
    plan = version(REVENUE.format(mode="retroactive"))
    # 90 %: the 80 % tier is reached, its rate 1 pays all 90 %: 90 × 100 = 9 000 (marginal
    # tiers paid 5 000 for the same).
    assert slices(compute(plan, revenue(90_000), "UAH")) == [
        ("slice", 0, 90, 1, 1, D("9000.00"))]
    # 70 %: only the first tier: 70 × 0.5 × 100 = 3 500.
    assert compute(plan, revenue(70_000), "UAH").total == D("3500.00")
    # 130 %: 0-100 % at 1 = 10 000; 100-130 % at 1 × 1.5 = 4 500; 14 500 capped at 14 000.
    result = compute(plan, revenue(130_000), "UAH")
    assert slices(result) == [("slice", 0, 100, 1, 1, D("10000.00")),
                              ("slice", 100, 130, 1, D("1.5"), D("4500.00")),
                              ("cap", None, None, None, None, D("-500.00"))]
    assert result.total == D("14000.00") and result.cap_hit


def test_decelerator_below_a_floor() -> None:
    nothing = version("""
effective_from: 2025-01-01
components:
  - {name: r, kpi: revenue, target_bonus: 10000, decelerator: {below: 50}}
""")
    # 45 %: 45 × 100 = 4 500 earned, below the 50 % floor nothing: −4 500.
    result = compute(nothing, revenue(45_000), "UAH")
    assert [(line.kind, line.amount) for line in result.lines] == [
        ("slice", D("4500.00")), ("decelerator", D("-4500.00"))]
    assert result.total == D("0.00")
    # At the floor it pays in full: 50 × 100 = 5 000.
    assert compute(nothing, revenue(50_000), "UAH").total == D("5000.00")
    reduced = version("""
effective_from: 2025-01-01
components:
  - {name: r, kpi: revenue, target_bonus: 10000, decelerator: {below: 50%, multiplier: 0.5}}
""")
    # 40 %: 40 × 100 = 4 000, halved: 2 000.
    assert compute(reduced, revenue(40_000), "UAH").total == D("2000.00")


def test_one_offs_and_the_total_cap() -> None:
    plan = version("""
effective_from: 2025-01-01
cap: 1000
one_offs:
  - {name: ten_deals, kpi: deals_won, at_least: 10, amount: 500}
  - {name: bigger_check, kpi: average_deal_size, growth_at_least: 15%, amount: 300}
  - {name: over_plan, kpi: revenue, attainment_at_least: 120, amount: 400}
""")

    def paid(deals: int, check: int, check_before: int, revenue_: int) -> list[Decimal]:
        measured = {"deals_won": Measured("deals_won", D(deals), whole=True),
                    "average_deal_size": Measured("average_deal_size", D(check),
                                                  previous=D(check_before)),
                    "revenue": Measured("revenue", D(revenue_), D(100_000))}
        return [line.amount for line in compute(plan, measured, "UAH").lines]

    # 10 deals: 500; 11 500 on 10 000 is +15 %: 300; 120 000 of 100 000 is 120 %: 400.
    # 1 200 is over the 1 000 cap: −200.
    assert paid(10, 11_500, 10_000, 120_000) == [D("500.00"), D("300.00"), D("400.00"),
                                                 D("-200.00")]
    # 9 deals, +14.99 %, 119.999 %: nothing.
    assert paid(9, 11_499, 10_000, 119_999) == [D("0.00")] * 3
    # No average deal the period before: growth cannot be measured, not paid.
    assert paid(10, 11_500, 0, 0)[1] == D("0.00")


def test_rounding_is_half_up_to_the_currencys_minor_unit() -> None:
    plan = version("""
effective_from: 2025-01-01
components:
  - {name: third, kpi: revenue, target_bonus: 1000}
  - {name: half_cent, kpi: calls, measure: value, tiers: [{from: 0, rate: 0.005}]}
""")
    measured = {"revenue": Measured("revenue", D(1), D(3)),
                "calls": Measured("calls", D(1), whole=True)}
    result = compute(plan, measured, "UAH")
    # 1 / 3 = 33.33…% × 10 (1 % of 1 000) = 333.333… → 333.33; 1 call × 0.005 = 0.005 →
    # 0.01 (half up, not to even).
    assert [c.amount for c in result.components] == [D("333.33"), D("0.01")]
    assert result.total == D("333.34")
    assert round_money(D("1000.5"), "JPY") == D("1001")  # yen have no minor unit


def test_a_plan_change_applies_from_its_date() -> None:
    plan = parse_plans(yaml.safe_load(PLANS_YAML), "bonus_plans.yaml").get("reps_monthly")
    assert plan is not None
    which = {day: plan.version_for(day) for day in (
        dt.date(2024, 12, 1), dt.date(2025, 6, 1), dt.date(2025, 7, 1), dt.date(2025, 8, 1))}
    # Before the first version nothing; July started before the change of 15 July, so the
    # old version pays all of July; August is the first month of the new one.
    assert which[dt.date(2024, 12, 1)] is None
    assert [which[dt.date(2025, m, 1)].effective_from for m in (6, 7, 8)] == [  # type: ignore[union-attr]
        dt.date(2025, 1, 1), dt.date(2025, 1, 1), dt.date(2025, 7, 15)]


@pytest.mark.parametrize(("change", "field", "problem"), [
    (("tier_mode", "stepwise"), "versions.0.components.0.tier_mode", "'marginal' or"),
    (("target_bonus", None), "versions.0.components.0", "needs target_bonus"),
    (("tiers", [{"from": 80, "rate": 1}, {"from": 50, "rate": 2}]),
     "versions.0.components.0", "must be above the one before"),
    (("tiers", [{"from": "eighty", "rate": 1}]), "versions.0.components.0", "tiers.0.from"),
    (("tierz", []), "versions.0.components.0.tierz", "Extra inputs"),
])
def test_a_wrong_plan_is_refused_naming_file_plan_and_field(
        change: tuple[str, Any], field: str, problem: str) -> None:
    data = yaml.safe_load(PLANS_YAML)
    key, value = change
    data["plans"][0]["versions"][0]["components"][0][key] = value
    with pytest.raises(BonusPlanError) as caught:
        parse_plans(data, "bonus_plans.yaml")
    message = caught.value.message
    assert message.startswith(f"bonus_plans.yaml: plan 'reps_monthly': {field}"), message
    assert problem in message


def test_what_if_names_the_next_tier_and_what_it_pays() -> None:
    plan = version("""
effective_from: 2025-01-01
components:
  - {name: deals, kpi: deals_won, target_bonus: 6000, tiers: [{from: 0, rate: 0.5},
     {from: 100, rate: 1}], decelerator: {below: 50}}
one_offs:
  - {name: ten, kpi: deals_won, at_least: 10, amount: 500}
""")
    # 5 of 12 deals: 41.67 %, below the 50 % floor: 0 now. The floor is the next step:
    # 50 % of 12 = 6 deals, 1 more; then 50 × 0.5 × 60 = 1 500.
    now = {"deals_won": Measured("deals_won", D(5), D(12), whole=True)}
    steps = what_if(plan, now, "UAH")
    assert [(s.kind, s.more, s.total_now, s.total_then) for s in steps] == [
        ("decelerator", 1, D("0.00"), D("1500.00")),
        # 10 deals, 5 more: 83.33 % × 0.5 × 60 = 2 500.00 (2 499.999… rounded) + 500.
        ("one_off", 5, D("0.00"), D("3000.00"))]
    # 7 deals: the next tier is 100 %: 12 deals, 5 more; then 100 × 0.5 × 60 = 3 000 and
    # the 10-deal one-off 500 too.
    later = {"deals_won": Measured("deals_won", D(7), D(12), whole=True)}
    tier = what_if(plan, later, "UAH")[0]
    assert (tier.kind, tier.needed, tier.more, tier.rate) == ("tier", 12, 5, 1)
    assert tier.total_then == D("3500.00")


def test_the_plan_to_copy_in_the_docs_pays_what_the_docs_say() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "motivation.md").read_text(
        encoding="utf-8")
    block = text.split("### A plan to copy", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    plan = parse_plans(yaml.safe_load(block), "docs/motivation.md").plans[0]
    version_ = plan.version_for(dt.date(2026, 9, 1))
    assert version_ is not None

    def total(revenue_: int, target: int, deals: int, check: int, before: int) -> Decimal:
        return compute(version_, {
            "revenue": Measured("revenue", D(revenue_), D(target)),
            "deals_won": Measured("deals_won", D(deals), whole=True),
            "average_deal_size": Measured("average_deal_size", D(check), previous=D(before))},
            "UAH").total

    # The docs' table: Alice 10 500 + 500 + 300; Bob 0; Carol 14 000 + 500.
    assert total(130_000, 100_000, 10, 13_000, 10_000) == D("11300.00")
    assert total(45_000, 100_000, 3, 15_000, 15_000) == D("0.00")
    assert total(100_000, 50_000, 20, 5_000, 5_000) == D("14500.00")


# -- the company -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The company of tests/bonus_company.py with its targets, plans and users (do not
    change it: copy it)."""
    root = tmp_path_factory.mktemp("bonus")
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="UAH")
    settings = Settings(workspace=workspace)
    report = SalesKpiService(settings).import_path(write_company(root / "data"),
                                                   mapping=None, source="crm", dry_run=False)
    assert report.ok, report.errors
    (workspace / "bonus_plans.yaml").write_text(PLANS_YAML, encoding="utf-8")
    add_user(settings, "head", PASSWORD, "head")
    add_user(settings, "lead_north", PASSWORD, "team_lead", team="North")
    add_user(settings, "rep_r1", PASSWORD, "rep", rep_id="r1")
    return workspace


def make_service(workspace: Path) -> SalesKpiService:
    return SalesKpiService(Settings(workspace=workspace))


def user(workspace: Path, username: str) -> Principal:
    return next(u for u in list_users(Settings(workspace=workspace)) if u.username == username)


def token(workspace: Path, username: str) -> str:
    return issue_token(Settings(workspace=workspace), user(workspace, username).user_id, "t")


def totals(view: Any) -> dict[tuple[str, str], Decimal]:
    return {(b.rep_id, b.plan): b.total for b in view.bonuses}


# June 2025, paid by the first version (marginal tiers; 1 % of target = 100):
#   r1 130 %: 4 000 + 2 000 + 30 × 150 = 10 500; 10 deals: 500; average deal 13 000 on
#      May's 10 000 (+30 %): 300. 11 300. north_deals: 5 × 200 + 5 × 300 = 2 500.
#   r2 45 %: 45 × 0.5 × 100 = 2 250, below the 50 % floor: 0. 3 deals: 3 × 200 = 600.
#   r3 200 %: 4 000 + 2 000 + 100 × 150 = 21 000 → capped at 14 000; 20 deals: 500;
#      average deal 5 000 both months: no. 14 500 → the plan's cap 14 200.
JUNE = {("r1", "reps_monthly"): D("11300.00"), ("r2", "reps_monthly"): D("0.00"),
        ("r3", "reps_monthly"): D("14200.00"), ("r1", "north_deals"): D("2500.00"),
        ("r2", "north_deals"): D("600.00")}
# July: still the first version (the change is from 15 July, after July began):
#   r1 80 %: 80 × 0.5 × 100 = 4 000 (the second version would pay 80 × 1 × 120 = 9 600);
#      average deal 20 000 on June's 13 000: 300. 4 300. 4 deals: 4 × 200 = 800.
#   r2 and r3 won nothing: 0 (r3's average deal has no value: no growth).
JULY = {("r1", "reps_monthly"): D("4300.00"), ("r2", "reps_monthly"): D("0.00"),
        ("r3", "reps_monthly"): D("0.00"), ("r1", "north_deals"): D("800.00"),
        ("r2", "north_deals"): D("0.00")}
# August: the second version (retroactive tiers, 1 % of target = 120, × 2 above 100 %):
#   r1 90 %: the 80 % tier's rate 1 on all of it: 90 × 120 = 10 800. 6 deals: 1 300.
#   r2 40 %: 40 × 0.5 × 120 = 2 400, below 50 % halved: 1 200. 2 deals: 400.
#   r3 250 %: 100 × 120 + 150 × 240 = 48 000 → capped at 20 000; 25 deals: 500. 20 500.
AUGUST = {("r1", "reps_monthly"): D("10800.00"), ("r2", "reps_monthly"): D("1200.00"),
          ("r3", "reps_monthly"): D("20500.00"), ("r1", "north_deals"): D("1300.00"),
          ("r2", "north_deals"): D("400.00")}


@pytest.mark.parametrize(("period", "expected", "version_from"), [
    ("2025-06", JUNE, "2025-01-01"), ("2025-07", JULY, "2025-01-01"),
    ("2025-08", AUGUST, "2025-07-15")])
def test_each_month_is_paid_by_the_version_in_force_at_its_start(
        company: Path, period: str, expected: dict[tuple[str, str], Decimal],
        version_from: str) -> None:
    view = bonuses(make_service(company), LOCAL, BonusParams(period=period))
    assert totals(view) == expected
    assert {b.version for b in view.bonuses if b.plan == "reps_monthly"} == {version_from}
    assert view.totals == {"UAH": sum(expected.values(), D(0))}
    assert all(b.complete for b in view.bonuses)


def test_the_explanation_line_by_line(company: Path) -> None:
    view = explain(make_service(company), LOCAL, RepParams(rep="r3", period="2025-06"))
    monthly = next(b for b in view.bonuses if b.plan == "reps_monthly")
    lines = [(line.kind, line.name, line.actual, line.target, line.attainment, line.low,
              line.high, line.rate, line.multiplier, line.amount, line.cap_hit)
             for line in monthly.lines]
    assert lines == [
        ("slice", "revenue_plan", 100_000, 50_000, 200, 0, 80, 0.5, 1, D("4000.00"), False),
        ("slice", "revenue_plan", 100_000, 50_000, 200, 80, 100, 1, 1, D("2000.00"), False),
        ("slice", "revenue_plan", 100_000, 50_000, 200, 100, 200, 1, 1.5, D("15000.00"),
         False),
        ("cap", "revenue_plan", 100_000, 50_000, 200, None, None, None, None,
         D("-7000.00"), True),
        ("one_off", "ten_deals", 20, None, None, None, None, None, None, D("500.00"), False),
        ("one_off", "bigger_check", 5_000, None, None, None, None, None, None, D("0.00"),
         False),
        ("total_cap", "", None, None, None, None, None, None, None, D("-300.00"), True)]
    # The lines add up to the total.
    assert sum((line.amount for line in monthly.lines), D(0)) == monthly.total == D("14200")
    # The growth one-off shows the period before: May's average deal, 20 000 / 4 = 5 000.
    assert next(line for line in monthly.lines if line.name == "bigger_check").previous == 5000


def test_a_rep_sees_only_their_own_bonus(company: Path) -> None:
    service = make_service(company)
    rep = user(company, "rep_r1")
    view = bonuses(service, rep, BonusParams(period="2025-06"))
    assert totals(view) == {k: v for k, v in JUNE.items() if k[0] == "r1"}
    for ask in (lambda: explain(service, rep, RepParams(rep="r2", period="2025-06")),
                lambda: whatif(service, rep, RepParams(rep="Bob", period="2025-06")),
                lambda: bonuses(service, rep, BonusParams(rep="r3", period="2025-06"))):
        with pytest.raises(NotFound):
            ask()
    # Without a rep named, their own.
    assert explain(service, rep, RepParams(period="2025-06")).rep_id == "r1"


def test_a_team_lead_sees_their_team(company: Path) -> None:
    service = make_service(company)
    lead = user(company, "lead_north")
    view = bonuses(service, lead, BonusParams(period="2025-06"))
    assert totals(view) == {k: v for k, v in JUNE.items() if k[0] in ("r1", "r2")}
    with pytest.raises(Forbidden):
        bonuses(service, lead, BonusParams(period="2025-06", team="South"))
    with pytest.raises(NotFound):
        explain(service, lead, RepParams(rep="r3", period="2025-06"))


def test_what_if_from_the_reverse_planner(company: Path) -> None:
    service = make_service(company)
    # August 2025 as of 11 August (every August deal closed by the 8th), r1 at 90 %
    # paid 10 800 (see AUGUST).
    day = dt.date(2025, 8, 11)
    scope = Scope(rep_ids=frozenset({"r1"}))
    monthly = next(b for b in service_bonus.bonuses(service, scope, day, day)
                   if b.plan.name == "reps_monthly")
    steps = {s.what_if.name: s for s in service_bonus.steps(service, scope, monthly, day)}
    # Working days 11-31 August 2025: 11-15, 18-22, 25-29: 15.
    # r1's May-July: 190 calls, 38 meetings, 19 deals for 260 000: call → meeting 0.2,
    # meeting → won 0.5, an average deal of 13 684.21.
    # revenue to 100 % (the accelerator's start): 10 000 more → 12 000 (100 × 120);
    # 10 000 / 13 684.21 → 1 deal, 2 meetings, 10 calls: 1/15, 2/15, 10/15 a day.
    revenue_step = steps["revenue_plan"]
    assert (revenue_step.what_if.kind, revenue_step.what_if.more,
            revenue_step.what_if.total_then) == ("accelerator", 10_000, D("12000.00"))
    assert revenue_step.working_days_left == 15
    assert revenue_step.activity == {"deals_won": 0.066667, "meetings": 0.133333,
                                     "calls": 0.666667}
    # 10 deals: 4 more → 500 more: 4 deals, 8 meetings, 40 calls over 15 days.
    deals = steps["ten_deals"]
    assert (deals.what_if.more, deals.what_if.total_then) == (4, D("11300.00"))
    assert deals.activity == {"deals_won": 0.266667, "meetings": 0.533333,
                              "calls": 2.666667}
    # Average deal +15 % on July's 20 000: 23 000, 8 000 more → 300; no activity plan.
    check = steps["bigger_check"]
    assert (check.what_if.needed, check.what_if.more, check.what_if.total_then) == (
        23_000, 8_000, D("11100.00"))
    assert check.activity is None


def test_what_if_of_a_closed_month_by_the_view(company: Path) -> None:
    view = whatif(make_service(company), LOCAL, RepParams(rep="r1", period="2025-08"))
    monthly = next(p for p in view.plans if p.plan == "reps_monthly")
    assert [(s.kind, s.name, s.more, s.total_then, s.gain, s.working_days_left,
             s.per_working_day) for s in monthly.steps] == [
        ("accelerator", "revenue_plan", 10_000, D("12000.00"), D("1200.00"), 0, None),
        ("one_off", "ten_deals", 4, D("11300.00"), D("500.00"), 0, None),
        ("one_off", "bigger_check", 8_000, D("11100.00"), D("300.00"), 0, None)]
    # north_deals pays every deal: no threshold above 6 deals is left.
    assert next(p for p in view.plans if p.plan == "north_deals").steps == []


# -- the CLI -------------------------------------------------------------------------------
def test_cli_compute_explain_and_whatif(company: Path, run_cli: Any) -> None:
    result = run_cli(company, "bonus", "compute", "--period", "2025-06", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = result.json()
    assert {(b["rep_id"], b["plan"]): D(b["total"]) for b in data["bonuses"]} == JUNE
    assert data["totals"] == {"UAH": "28600.00"}  # 11 300 + 0 + 14 200 + 2 500 + 600
    csv_out = run_cli(company, "bonus", "compute", "--period", "2025-06", "--team", "North",
                      "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    rows = csv_out.stdout.strip().splitlines()
    assert rows[0].startswith("rep_id,rep_name,team,plan,")
    assert sorted(r.split(",")[0] + ":" + r.split(",")[9] for r in rows[1:]) == [
        "r1:11300.00", "r1:2500.00", "r2:0.00", "r2:600.00"]
    table = run_cli(company, "bonus", "explain", "Alice", "--period", "2025-06")
    assert table.returncode == 0, table.stderr
    assert "100 % – 130 % of the target at rate 1, accelerator × 1.5" in table.stdout
    assert "11 300.00 UAH" in table.stdout
    steps = run_cli(company, "bonus", "whatif", "r1", "--period", "2025-08", "--format",
                    "json")
    assert steps.returncode == 0, steps.stderr
    first = steps.json()["plans"][0]["steps"][0]
    assert (first["more"], first["total_then"]) == (10000, "12000.00")


def test_cli_with_a_reps_token_shows_only_their_bonus(company: Path, run_cli: Any) -> None:
    secret = token(company, "rep_r1")
    other = run_cli(company, "bonus", "explain", "r2", "--period", "2025-06", "--token",
                    secret)
    assert other.returncode == 2 and "unknown rep 'r2'" in other.stderr
    assert "r2" not in other.stdout
    own = run_cli(company, "bonus", "compute", "--period", "2025-06", "--format", "json",
                  "--token", secret)
    assert {b["rep_id"] for b in own.json()["bonuses"]} == {"r1"}
    bad = run_cli(company, "bonus", "compute", "--token", "skpi_nonsense")
    assert bad.returncode == 4 and "not valid" in bad.stderr


def read_payroll(data: bytes) -> tuple[dict[str, tuple[Any, ...]], list[tuple[Any, ...]],
                                       str]:
    book = load_workbook(io.BytesIO(data))
    payroll = list(book["Payroll"].iter_rows(values_only=True))
    assert payroll[0] == ("Rep ID", "Rep", "Team", "Period", "Plans", "Currency", "Total")
    lines = list(book["Explanation"].iter_rows(values_only=True))
    return ({row[0]: row for row in payroll[1:]}, lines[1:],
            book["Payroll"].cell(2, 7).number_format)


def test_cli_export_writes_the_payroll_workbook(company: Path, run_cli: Any,
                                                tmp_path: Path) -> None:
    target = tmp_path / "payroll.xlsx"
    result = run_cli(company, "bonus", "export", "--period", "2025-06", "-o", target)
    assert result.returncode == 0, result.stderr
    rows, lines, money = read_payroll(target.read_bytes())
    # r1: 11 300 + 2 500 = 13 800; r2: 0 + 600 = 600; r3: 14 200.
    assert {rep: (row[1], row[5], row[6]) for rep, row in rows.items()} == {
        "r1": ("Alice", "UAH", 13800), "r2": ("Bob", "UAH", 600),
        "r3": ("Carol", "UAH", 14200)}
    assert rows["r1"][4] == "reps_monthly, north_deals"
    assert rows["r1"][3] == "2025-06-01 – 2025-06-30"
    assert money == '#,##0.00 "UAH"'
    # The explanation's amounts add up to each rep's total.
    by_rep: dict[str, float] = {}
    for line in lines:
        by_rep[line[0]] = by_rep.get(line[0], 0) + line[12]
    assert by_rep == pytest.approx({"r1": 13800, "r2": 600, "r3": 14200})
    r3_cap = [line for line in lines if line[0] == "r3" and line[13] == "yes"]
    assert [line[12] for line in r3_cap] == [-7000, -300]
    assert next(line for line in lines if line[0] == "r1")[10] == pytest.approx(1.3)


def test_a_broken_plans_file_is_an_error_naming_it(company: Path, tmp_path: Path,
                                                   run_cli: Any) -> None:
    workspace = Path(shutil.copytree(company, tmp_path / "ws"))
    broken = PLANS_YAML.replace("kpi: deals_won, at_least", "kpi: deals_wno, at_least", 1)
    (workspace / "bonus_plans.yaml").write_text(broken, encoding="utf-8")
    result = run_cli(workspace, "bonus", "compute")
    assert result.returncode == 2
    said = " ".join(result.stderr.split())  # the console wraps long lines
    assert "bonus_plans.yaml: plan 'reps_monthly': versions.0.one_offs.0.kpi: unknown KPI " \
           "'deals_wno'; did you mean deals_won" in said
    (workspace / "bonus_plans.yaml").unlink()
    empty = run_cli(workspace, "bonus", "compute", "--period", "2025-06")
    assert empty.returncode == 0 and "No bonus plans" in empty.stdout


def test_the_example_plan_is_valid_and_never_replaces_a_users(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path)
    save_workspace_settings(settings, currency="EUR")
    settings = Settings(workspace=tmp_path)
    assert service_bonus.write_example_plans(settings)
    plans = service_bonus.load_plans(SalesKpiService(settings)).plans
    assert [(p.name, p.currency) for p in plans] == [("reps_monthly", "EUR")]
    (tmp_path / "bonus_plans.yaml").write_text("plans: []\n", encoding="utf-8")
    assert not service_bonus.write_example_plans(settings)
    assert (tmp_path / "bonus_plans.yaml").read_text(encoding="utf-8") == "plans: []\n"


# -- REST and the page ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(company: Path) -> Any:
    return create_app(Settings(workspace=company))


def signed_in(app: Any, username: str) -> TestClient:
    client = TestClient(app)
    response = client.post("/api/v1/session", json={"username": username,
                                                    "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


def test_rest_in_the_callers_scope(app: Any, company: Path) -> None:
    rep = TestClient(app)
    headers = {"Authorization": f"Bearer {token(company, 'rep_r1')}"}
    own = rep.get("/api/v1/bonus", params={"period": "2025-06"}, headers=headers)
    assert own.status_code == 200
    assert {(b["rep_id"], b["plan"]): D(b["total"]) for b in own.json()["bonuses"]} == {
        k: v for k, v in JUNE.items() if k[0] == "r1"}
    other = rep.get("/api/v1/bonus/explain", params={"rep": "r2", "period": "2025-06"},
                    headers=headers)
    assert other.status_code == 404 and other.json()["error"] == "unknown_rep"
    assert rep.get("/api/v1/bonus/whatif", params={"rep": "r3"},
                   headers=headers).status_code == 404
    lead = signed_in(app, "lead_north")
    assert lead.get("/api/v1/bonus", params={"team": "South"}).status_code == 403
    explained = lead.get("/api/v1/bonus/explain", params={"rep": "r2", "period": "2025-08"})
    lines = [(x["kind"], x["amount"]) for x in explained.json()["bonuses"][0]["lines"]]
    # r2 in August: 40 × 0.5 × 120 = 2 400, halved below the floor: −1 200.
    assert lines[:2] == [("slice", "2400.00"), ("decelerator", "-1200.00")]
    bad = lead.get("/api/v1/bonus", params={"period": "2025-13"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_period"
    future = lead.get("/api/v1/bonus", params={"period": "2199-Q4"})
    assert future.status_code == 400 and "has not started yet" in future.json()["message"]
    unknown = lead.get("/api/v1/bonus", params={"plan": "reps_montly"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_bonus_plan"
    assert "did you mean reps_monthly" in unknown.json()["message"]
    assert TestClient(app).get("/api/v1/bonus").status_code == 401


def test_rest_export_downloads_the_callers_payroll(app: Any) -> None:
    head = signed_in(app, "head")
    response = head.get("/api/v1/bonus/export", params={"period": "2025-08"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == \
        'attachment; filename="payroll-2025-08-31.xlsx"'
    rows, _lines, _money = read_payroll(response.content)
    # August: r1 10 800 + 1 300 = 12 100; r2 1 200 + 400 = 1 600; r3 20 500.
    assert {rep: row[6] for rep, row in rows.items()} == {"r1": 12100, "r2": 1600,
                                                          "r3": 20500}
    lead = signed_in(app, "lead_north")
    rows, _lines, _money = read_payroll(lead.get("/api/v1/bonus/export",
                                                 params={"period": "2025-08"}).content)
    assert set(rows) == {"r1", "r2"}


def test_the_bonus_page(app: Any) -> None:
    head = signed_in(app, "head")
    page = head.get("/bonus", params={"pay_period": "2025-06", "rep": "r3"})
    assert page.status_code == 200
    text = page.text
    assert 'data-table="bonuses"' in text and 'data-table="bonus_lines_1"' in text
    assert 'href="/bonus?rep=r1&amp;pay_period=2025-06"' in text
    # r3's June: the component's cap and the plan's, in words.
    assert "capped at" in text and "the plan&#39;s cap: at most" in text
    rep = signed_in(app, "rep_r1")
    own = rep.get("/bonus", params={"pay_period": "2025-08"})
    assert own.status_code == 200
    assert 'data-table="bonus_whatif_1"' in own.text and 'data-rep="r2"' not in own.text
    assert rep.get("/bonus", params={"rep": "r2"}).status_code == 404
    # The table's own download: the same rows (the rep's two plans and the total).
    download = rep.get("/bonus", params={"pay_period": "2025-08", "export": "bonuses",
                                         "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(download.content)).active
    assert sheet is not None
    assert [row[4] for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        10800, 1300, 12100]
