"""Bonus plans: each rep's bonus, how it was computed, and what the next tier takes.

In the caller's scope: a rep gets only their own bonus (another rep's id is as
unknown as one that does not exist), a team lead their team's reps, the head of
sales everyone. Money is a decimal string in the plan's currency ("10500.00"),
exact; the KPIs' values, targets and attainment (in percent) are JSON numbers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from saleskpi.domain.bonus import Line, WhatIf, asked_day
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.query import plain_number
from saleskpi.service import bonus as service_bonus
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import check_team_in_scope, exclusive, resolve_rep, today
from saleskpi.service.principal import Principal
from saleskpi.views.base import ViewModel

PERIOD_HELP = ("A month (2026-09), a quarter (2026-Q3) or a day (2026-09-15); each plan "
               "pays its own month or quarter containing the last day of it (today at the "
               "latest). Default: today, the periods not over measured to date.")


class BonusParams(BaseModel):
    period: str | None = Field(default=None, description=PERIOD_HELP)
    rep: str | None = Field(default=None, description="Only this rep (id or name).")
    team: str | None = Field(default=None, description="Only this team's reps.")
    plan: str | None = Field(default=None, description="Only this plan (its name).")
    lines: bool = Field(default=False, description="With every line of the computation "
                        "(as the explanation).")


class RepParams(BaseModel):
    rep: str | None = Field(default=None, description="Rep id or name (default: the "
                            "caller's own).")
    period: str | None = Field(default=None, description=PERIOD_HELP)
    plan: str | None = Field(default=None, description="Only this plan (its name).")


class BonusLine(BaseModel):
    kind: str = Field(description="slice (a part of the measure at one rate), no_target, "
                      "no_value, decelerator, cap, one_off or total_cap.")
    name: str = Field(description="The component's or one-off's name ('' for the total "
                      "cap).")
    kpi: str | None
    actual: float | None
    target: float | None
    attainment: float | None = Field(description="actual / target in percent.")
    low: float | None = Field(description="A slice's start, in the measure's units "
                              "(attainment: percent).")
    high: float | None = Field(description="A slice's end.")
    rate: float | None = Field(description="The tier's rate applied to the slice.")
    multiplier: float | None = Field(description="The accelerator's (a slice above it) or "
                                     "the decelerator's multiplier.")
    threshold: float | None = Field(description="A one-off's condition or the "
                                    "decelerator's floor.")
    cap: Decimal | None
    cap_hit: bool
    met: bool | None = Field(description="A one-off: whether its condition held.")
    condition: str | None = Field(description="A one-off's: at_least, attainment_at_least "
                                  "or growth_at_least.")
    previous: float | None = Field(description="A growth one-off: the KPI over the period "
                                   "before.")
    percent: bool = Field(description="low, high and threshold are in percent (of the "
                          "target, or growth).")
    amount: Decimal = Field(description="What the line adds (negative: a cut).")


class ComponentItem(BaseModel):
    name: str
    kpi: str
    measure: float | None = Field(description="Attainment in percent, or the KPI's value.")
    amount: Decimal
    cap_hit: bool


class RepBonusItem(BaseModel):
    plan: str
    plan_title: str | None
    version: str = Field(description="effective_from of the version that pays the period.")
    rep_id: str
    rep_name: str
    team: str | None
    period_start: str
    period_end: str
    measured_to: str = Field(description="Actuals up to the end of this day.")
    complete: bool = Field(description="false: the period is not over, the bonus so far.")
    currency: str
    components: list[ComponentItem]
    one_offs: Decimal = Field(description="The one-offs paid, together.")
    total: Decimal
    cap_hit: bool = Field(description="A component's cap or the plan's cap was hit.")
    lines: list[BonusLine] = Field(default_factory=list)


class BonusView(ViewModel):
    day: str = Field(description="The day whose periods are paid.")
    bonuses: list[RepBonusItem] = Field(description="One per plan and rep, by plan, then "
                                        "rep name.")
    totals: dict[str, Decimal] = Field(description="Currency -> the sum of the bonuses.")


def _number(value: Decimal | None) -> float | None:
    return None if value is None else plain_number(float(value))


def _line(line: Line) -> BonusLine:
    return BonusLine(kind=line.kind, name=line.name, kpi=line.kpi, actual=_number(line.actual),
                     target=_number(line.target), attainment=_number(line.attainment),
                     low=_number(line.low), high=_number(line.high), rate=_number(line.rate),
                     multiplier=_number(line.multiplier), threshold=_number(line.threshold),
                     cap=line.cap, cap_hit=line.cap_hit, met=line.met,
                     condition=line.condition, previous=_number(line.previous),
                     percent=line.percent, amount=line.amount)


def _item(bonus: service_bonus.RepBonus, lines: bool) -> RepBonusItem:
    pay, result = bonus.pay, bonus.pay.result
    return RepBonusItem(
        plan=bonus.plan.name, plan_title=bonus.plan.title,
        version=pay.version.effective_from.isoformat(), rep_id=bonus.rep,
        rep_name=bonus.rep_name, team=bonus.team, period_start=pay.period_start.isoformat(),
        period_end=pay.period_end.isoformat(), measured_to=pay.measured_to.isoformat(),
        complete=pay.complete, currency=result.currency,
        components=[ComponentItem(name=c.name, kpi=c.kpi, measure=_number(c.measure),
                                  amount=c.amount, cap_hit=c.cap_hit)
                    for c in result.components],
        one_offs=result.one_offs, total=result.total, cap_hit=result.cap_hit,
        lines=[_line(line) for line in result.lines] if lines else [])


def _totals(found: list[service_bonus.RepBonus]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for bonus in found:
        currency = bonus.plan.currency
        totals[currency] = totals.get(currency, Decimal(0)) + bonus.pay.result.total
    return totals


def _day(service: SalesKpiService, period: str | None) -> tuple[dt.date, dt.date]:
    now = today(service)
    return asked_day(period, now), now


def bonuses(service: SalesKpiService, caller: Principal, params: BonusParams) -> BonusView:
    """Every rep's bonus the caller may see, per plan, for the period asked."""
    exclusive(params.rep, params.team)
    scope = caller.scope
    rep = resolve_rep(service, params.rep, scope).id if params.rep is not None else None
    if params.team is not None:
        check_team_in_scope(params.team, scope)
    day, now = _day(service, params.period)
    found = service_bonus.bonuses(service, scope, day, now, rep=rep, team=params.team,
                                  plan=params.plan)
    view: BonusView = BonusView(day=day.isoformat(),
                                bonuses=[_item(b, params.lines) for b in found],
                                totals=_totals(found)).with_source(found)
    return view


def _own_rep(service: SalesKpiService, caller: Principal, rep: str | None) -> str:
    if rep is None:
        if caller.rep_id is None:
            raise InvalidQuery(_("name the rep (id or name): only a rep's own bonus is "
                                 "shown without one"), code="no_rep")
        rep = caller.rep_id
    return resolve_rep(service, rep, caller.scope).id


class ExplainView(ViewModel):
    day: str
    rep_id: str
    bonuses: list[RepBonusItem] = Field(description="One per plan that pays the rep, with "
                                        "every line of the computation.")


def explain(service: SalesKpiService, caller: Principal, params: RepParams) -> ExplainView:
    """How the rep's bonus was computed, line by line, per plan."""
    rep = _own_rep(service, caller, params.rep)
    day, now = _day(service, params.period)
    found = service_bonus.bonuses(service, caller.scope, day, now, rep=rep, plan=params.plan)
    view: ExplainView = ExplainView(day=day.isoformat(), rep_id=rep,
                                    bonuses=[_item(b, True) for b in found]).with_source(found)
    return view


class WhatIfStep(BaseModel):
    kind: str = Field(description="tier, accelerator, decelerator (reaching the floor) or "
                      "one_off.")
    name: str = Field(description="The component or one-off.")
    kpi: str
    actual: float
    needed: float = Field(description="The KPI's value that reaches the step.")
    more: float = Field(description="needed − actual (whole units for counted KPIs).")
    threshold: float = Field(description="The step, in the measure's units (attainment: "
                             "percent).")
    rate: float | None = Field(description="The tier's rate from the step on.")
    total_now: Decimal
    total_then: Decimal = Field(description="What the plan would pay with that much more, "
                                "everything else as it is.")
    gain: Decimal
    working_days_left: int = Field(description="In the period, today included (0: over).")
    per_working_day: dict[str, Any] | None = Field(
        description="Deals won and revenue: deals_won, meetings, calls a working day left "
        "needs, from the rep's own conversion over the 3 months before (reverse planner); "
        "null when there is no history or no day left.")


class WhatIfPlan(BaseModel):
    plan: str
    currency: str
    period_start: str
    period_end: str
    total: Decimal
    steps: list[WhatIfStep]


class WhatIfView(ViewModel):
    day: str
    rep_id: str
    plans: list[WhatIfPlan]


def _step(step: service_bonus.Step) -> WhatIfStep:
    w: WhatIf = step.what_if
    return WhatIfStep(kind=w.kind, name=w.name, kpi=w.kpi, actual=_number(w.actual) or 0,
                      needed=_number(w.needed) or 0, more=_number(w.more) or 0,
                      threshold=_number(w.threshold) or 0, rate=_number(w.rate),
                      total_now=w.total_now, total_then=w.total_then, gain=w.gain,
                      working_days_left=step.working_days_left,
                      per_working_day=step.activity)


def whatif(service: SalesKpiService, caller: Principal, params: RepParams) -> WhatIfView:
    """For each plan paying the rep: how much more of each KPI reaches the next tier (or
    a one-off), what the plan would pay then, and the activity per working day left."""
    rep = _own_rep(service, caller, params.rep)
    day, now = _day(service, params.period)
    found = service_bonus.bonuses(service, caller.scope, day, now, rep=rep, plan=params.plan)
    plans = [WhatIfPlan(plan=b.plan.name, currency=b.plan.currency,
                        period_start=b.pay.period_start.isoformat(),
                        period_end=b.pay.period_end.isoformat(), total=b.pay.result.total,
                        steps=[_step(s) for s in service_bonus.steps(service, caller.scope,
                                                                     b, now)])
             for b in found]
    view: WhatIfView = WhatIfView(day=day.isoformat(), rep_id=rep,
                                  plans=plans).with_source(found)
    return view
