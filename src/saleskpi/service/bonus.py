"""Bonuses against the data: the workspace's plans, each rep's actuals and targets.

Actuals come from ``SalesKpiService.scorecard`` in the caller's scope (a rep's own,
a team lead's team, everyone for the head of sales), so a bonus is computed from
the same numbers every page shows; targets from the targets store, only those the
caller may see. The arithmetic is ``saleskpi.domain.bonus``; the what-if's
activities per working day come from the reverse planner (``service.planner``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from saleskpi.domain.bonus import (
    Measured,
    PeriodPay,
    WhatIf,
    compute,
    what_if,
)
from saleskpi.domain.bonus_plans import (
    PLANS_FILE,
    BonusPlan,
    BonusPlanError,
    BonusPlans,
    PlanVersion,
    parse_plans,
)
from saleskpi.domain.errors import NotFound
from saleskpi.domain.files import write_private
from saleskpi.domain.i18n import _
from saleskpi.domain.planning import GOALS, GoalKpi, PlanningError, working_days
from saleskpi.domain.query import KpiQuery, Scope, local_midnight_utc, plain_number
from saleskpi.domain.suggest import did_you_mean
from saleskpi.domain.targets import effective, period_bounds
from saleskpi.service.plan_inputs import visible_targets
from saleskpi.service.planner import RepInfo, ReverseRequest, reverse_plan

if TYPE_CHECKING:
    from saleskpi.domain.settings import Settings
    from saleskpi.service.core import RepEntry, SalesKpiService


EXAMPLE = Path(__file__).with_name("bonus_plans_example.yaml")


def plans_path(service: SalesKpiService) -> Path:
    return service.settings.workspace / PLANS_FILE


def write_example_plans(settings: Settings) -> bool:
    """The example plan (in the workspace's currency) as the workspace's bonus_plans.yaml,
    unless it has one: a user's plans are never replaced. Whether it was written."""
    path = settings.workspace / PLANS_FILE
    if path.exists():
        return False
    text = EXAMPLE.read_text(encoding="utf-8").replace("currency: USD",
                                                       f"currency: {settings.currency}")
    write_private(path, text)
    return True


def load_plans(service: SalesKpiService) -> BonusPlans:
    """The workspace's bonus plans (none without the file), every KPI checked against
    the catalogue: a ``BonusPlanError`` names the file, plan and field."""
    path = plans_path(service)
    if not path.is_file():
        return BonusPlans()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BonusPlanError(_("{path}: not valid YAML: {problem}", path=PLANS_FILE,
                               problem=str(exc))) from None
    plans = parse_plans(data, PLANS_FILE)
    known = service.catalog.kpis
    for plan in plans.plans:
        for v, version in enumerate(plan.versions):
            parts = [("components", i, c.kpi) for i, c in enumerate(version.components)]
            parts += [("one_offs", i, o.kpi) for i, o in enumerate(version.one_offs)]
            for part, i, kpi in parts:
                if kpi not in known:
                    where = f"versions.{v}.{part}.{i}.kpi"
                    raise BonusPlanError(_(
                        "{path}: plan {plan}: {field}: unknown KPI {kpi!r}", path=PLANS_FILE,
                        plan=repr(plan.name), field=where, kpi=kpi) + did_you_mean(kpi, known))
    return plans


@dataclass(frozen=True)
class RepBonus:
    """What one plan pays one rep for one period, with how it was computed."""

    plan: BonusPlan
    rep: str
    rep_name: str
    team: str | None
    pay: PeriodPay


def _decimal(value: float | None) -> Decimal | None:
    """A KPI's value as an exact decimal of what it shows (6 places at most)."""
    number = plain_number(value)
    return None if number is None else Decimal(str(number))


def _payees(service: SalesKpiService, plan: BonusPlan, scope: Scope, rep: str | None,
            team: str | None) -> list[RepEntry]:
    return [r for r in service.visible_reps(scope)
            if plan.pays(r.rep, r.team) and (rep is None or r.rep == rep)
            and (team is None or r.team == team)]


def bonuses(service: SalesKpiService, scope: Scope, day: dt.date, today: dt.date, *,
            rep: str | None = None, team: str | None = None,
            plan: str | None = None) -> list[RepBonus]:
    """Every plan's bonus for every rep it pays within ``scope`` (or only ``rep`` or the
    reps of ``team``), for the plan's period (month or quarter) containing ``day``,
    measured up to the end of ``today`` when the period is not over.

    A plan pays a period by its version in force on the period's first day; a plan
    with no version yet then pays nothing. Sorted by plan, then rep name.
    """
    every = load_plans(service).plans
    plans = every if plan is None else tuple(p for p in every if p.name == plan)
    if plan is not None and not plans:
        raise NotFound(_("unknown bonus plan {plan!r}", plan=plan)
                       + did_you_mean(plan, [p.name for p in every]),
                       code="unknown_bonus_plan")
    found: list[RepBonus] = []
    for chosen in plans:
        first, last = period_bounds(day, chosen.period)
        version = chosen.version_for(first)
        payees = _payees(service, chosen, scope, rep, team)
        if version is None or not payees:
            continue
        until = min(last, today)
        measured = _measure(service, scope, chosen, version, payees, first, last, until)
        for payee in payees:
            mine = measured.get(payee.rep, {})
            result = compute(version, mine, chosen.currency)
            found.append(RepBonus(chosen, payee.rep, payee.name, payee.team,
                                  PeriodPay(first, last, until, version, mine, result)))
    return found


def _measure(service: SalesKpiService, scope: Scope, plan: BonusPlan, version: PlanVersion,
             payees: Sequence[RepEntry], first: dt.date, last: dt.date,
             until: dt.date) -> dict[str, dict[str, Measured]]:
    """rep -> KPI -> actual over [first, until], the rep's target for [first, last] and,
    for growth one-offs, the KPI over the period before."""
    catalog = service.catalog
    kpis = version.kpis()
    ids = tuple(p.rep for p in payees)
    zone = service.settings.timezone
    where = (("rep", ids),)

    def values(keys: Sequence[str], start: dt.date, end: dt.date
               ) -> dict[tuple[str, str], float | None]:
        if not keys:
            return {}
        card = service.scorecard(KpiQuery(tuple(keys), by=("rep",), start=start, end=end,
                                          where=where), scope, totals=False,
                                 now=local_midnight_utc(end + dt.timedelta(days=1), zone))
        return {(str(row.keys.get("rep")), key): row.values[key].value
                for row in card.rows for key in keys}

    actuals = values(kpis, first, until)
    growth = [o.kpi for o in version.one_offs if o.growth_at_least is not None]
    before_first = period_bounds(first - dt.timedelta(days=1), plan.period)[0]
    previous = values(list(dict.fromkeys(growth)), before_first, first - dt.timedelta(days=1))
    targets: dict[tuple[str, str], float] = {}
    for target in effective(visible_targets(service, scope, service.targets_on(first))):
        if target.level == "rep" and target.kpi in kpis and \
                (target.period_start, target.period_end) == (first, last):
            targets[(target.rep_id or "", target.kpi)] = target.value
    measured: dict[str, dict[str, Measured]] = defaultdict(dict)
    for rep in ids:
        for kpi in kpis:
            spec = catalog.kpis[kpi]
            measured[rep][kpi] = Measured(
                kpi, _decimal(actuals.get((rep, kpi))), _decimal(targets.get((rep, kpi))),
                _decimal(previous.get((rep, kpi))), spec.higher_is_better,
                whole=spec.unit == "count")
    return measured


# -- what-if -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One what-if step, with the activity a remaining working day would need for it."""

    what_if: WhatIf
    activity: dict[str, Any] | None  # calls, meetings per working day; None: not planned
    working_days_left: int


def steps(service: SalesKpiService, scope: Scope, bonus: RepBonus,
          today: dt.date) -> list[Step]:
    """What more of each KPI reaches the plan's next tier (or a one-off), what the plan
    would pay then, and for deals won and revenue the calls and meetings per working
    day left (today included) that would take, from the rep's own conversion history."""
    pay = bonus.pay
    left = 0 if pay.complete else working_days(max(today, pay.period_start), pay.period_end,
                                               service.settings.holidays)
    found = []
    for step in what_if(pay.version, pay.measured, bonus.plan.currency):
        activity = None
        if step.kpi in GOALS and step.more > 0 and left > 0:
            activity = _activity(service, scope, bonus, step, today, left)
        found.append(Step(step, activity, left))
    return found


def _activity(service: SalesKpiService, scope: Scope, bonus: RepBonus, step: WhatIf,
              today: dt.date, left: int) -> dict[str, Any] | None:
    goal: GoalKpi = "revenue" if step.kpi == "revenue" else "deals_won"
    request = ReverseRequest(goal_kpi=goal, goal=Fraction(str(step.more)), at=today,
                             period=bonus.plan.period,
                             rep=RepInfo(bonus.rep, bonus.rep_name, bonus.team),
                             working_days=left)
    try:
        plan = reverse_plan(service, request, scope)
    except PlanningError:
        return None  # no history to learn the rep's conversion from
    return {need.what: plain_number(float(need.per_day_exact)) for need in plan.needs}
