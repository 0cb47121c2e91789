"""A rep's own page: KPIs against the team, plan, the daily activity the plan needs, trend.

A rep may open only their own page and a team lead only their team's reps; for
anyone else the page does not exist (404, not 403, so it does not confirm the rep).
"""

from __future__ import annotations

import math
from fractions import Fraction

from fastapi import APIRouter
from starlette.responses import Response

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.planning import PlanningError, ReversePlan
from saleskpi.domain.query import KpiQuery
from saleskpi.domain.targets import spans_period
from saleskpi.service.attainment import PlanLine
from saleskpi.service.compare import DEFAULT_KPIS, Comparison, RepRow, compare
from saleskpi.service.planner import RepInfo, ReverseRequest, find_rep, plan_vs_actual
from saleskpi.surfaces.web.charts import Point, column_chart
from saleskpi.surfaces.web.deps import Page, PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import (
    Cell,
    Column,
    DataTable,
    Row,
    kpi_cell,
    kpi_column,
    number_cell,
    text_cell,
)
from saleskpi.surfaces.web.views import kpi_columns, plan_at

REP_KPIS = (*DEFAULT_KPIS, "pipeline_value")
TREND = ("revenue", "deals_won", "win_rate", "calls")
MAX_GOAL = 1_000_000

router = APIRouter(route_class=WebRoute)


def not_found() -> PageError:
    return PageError(404, _("There is no such page, or it is not yours to see."))


def visible_rep(page: Page, rep_id: str) -> tuple[RepInfo, Comparison, RepRow]:
    """The rep and their comparison with their team, if the caller may see them; else 404."""
    info = find_rep(page.service, rep_id)
    if info is None or info.id != rep_id:
        raise not_found()
    f = page.filters
    team = (("team", (info.team,)),) if info.team else (("rep", (rep_id,)),)
    query = KpiQuery(REP_KPIS, ("rep",), "all", f.start, f.end,
                     (*f.where(without=("rep", "team")), *team))
    try:
        # The page shows the rep's row and the team's average, no total rows.
        comparison = compare(page.service, query, page.user.scope, totals=False)
    except InvalidQuery as exc:
        raise PageError(400, str(exc)) from None
    row = next((r for r in comparison.rows if r.rep == rep_id), None)
    if row is None:  # outside the caller's scope
        raise not_found()
    return info, comparison, row


def kpi_table(page: Page, comparison: Comparison, row: RepRow,
              plans: dict[str, PlanLine], *, has_team: bool) -> DataTable:
    # The average is the team's (for the rep themself too: an aggregate the service
    # computes without their team mates' rows); without a team it would be their own.
    with_team = has_team and comparison.average(None) is not None
    columns = [Column("kpi", _("KPI")),
               kpi_column("value", _("Value"), "number", ratio=True, interval=True)]
    if with_team:
        columns += [Column("team_average", _("Team average"), numeric=True),
                    Column("vs_average", _("vs team average"), numeric=True, unit="ratio")]
    columns += [Column("plan", _("Plan"), numeric=True),
                Column("attainment", _("Attainment"), numeric=True, unit="ratio")]
    average = comparison.average(None)
    rows = []
    for key in comparison.kpis:
        cell = row.cells[key]
        cells = [text_cell(page.kpi_name(key)),
                 kpi_cell(cell, key, page.fmt, rep=row.rep, mark=cell.mark,
                          href=page.rows_link(key, rep=row.rep))]
        if with_team:
            mean = average.values[key] if average else None
            cells += [number_cell(mean.value if mean else None, cell.unit, page.fmt),
                      number_cell(cell.vs_average, "ratio", page.fmt, mark=cell.mark)]
        line = plans.get(key)
        if line is not None:
            reached = line.result.attainment
            cells += [number_cell(line.result.plan, cell.unit, page.fmt),
                      number_cell(reached, "ratio", page.fmt, mark=None if reached is None
                                  else ("better" if reached >= 1 else "worse"))]
        else:
            cells += [text_cell(None), text_cell(None)]
        rows.append(Row(cells, rep=row.rep))
    return DataTable("rep_kpis", _("KPIs of {name}", name=row.name), columns, rows)


def plan_table(page: Page, lines: list[PlanLine]) -> DataTable:
    """Plan vs actual, each line naming its rep, team or the company, paced by working
    days (expected by now, what a working day still needs, the projection's range)."""
    columns = [Column("kpi", _("KPI")), Column("for", _("For")),
               Column("period", _("Period")),
               Column("plan", _("Plan"), numeric=True),
               Column("sum_of_reps", _("Sum of reps' plans"), numeric=True),
               Column("actual", _("Actual"), numeric=True),
               Column("attainment", _("Attainment"), numeric=True, unit="ratio"),
               Column("expected", _("Expected by now"), numeric=True),
               Column("needed", _("Needed / working day"), numeric=True),
               Column("activity", _("Calls / meetings a day")),
               Column("projection", _("Projection"), numeric=True),
               Column("projection_range", _("Projection range (95%)"))]
    rows = []
    for line in lines:
        r, t, p = line.result, line.target, line.pace
        unit = line.unit
        on_pace = line.on_pace
        mark = None if on_pace is None else ("better" if on_pace >= 1 else "worse")
        rows.append(Row([
            text_cell(line.kpi_name), text_cell(plan_for(line)),
            text_cell(f"{t.period_start.isoformat()} – {t.period_end.isoformat()}"),
            number_cell(r.plan, unit, page.fmt),
            number_cell(line.sum_of_reps, unit, page.fmt),
            number_cell(r.actual, unit, page.fmt),
            number_cell(r.attainment, "ratio", page.fmt),
            number_cell(p.expected if p else None, unit, page.fmt, mark=mark),
            number_cell(p.needed_per_day if p else None, unit, page.fmt),
            text_cell(activity_text(line)),
            number_cell(r.projection, unit, page.fmt),
            text_cell(projection_range(page, line)),
        ], rep=t.rep_id))
    return DataTable("rep_plan", _("Plan vs actual"), columns, rows)


def plan_for(line: PlanLine) -> str:
    t = line.target
    if t.level == "rep":
        return line.rep_name or t.rep_id or ""
    if t.level == "team":
        return _("team {team}", team=t.team)
    return _("company")


def activity_text(line: PlanLine) -> str:
    if not line.activity:
        return ""
    # Rounded up: nobody makes 40.1 calls.
    calls, meetings = (line.activity.get(k) for k in ("calls", "meetings"))
    return _("{calls} calls, {meetings} meetings",
             calls=math.ceil(calls) if calls is not None else "—",
             meetings=math.ceil(meetings) if meetings is not None else "—")


def projection_range(page: Page, line: PlanLine) -> str:
    p = line.pace
    if p is None:
        return ""
    if p.projection is None:
        return _("from {day}", day=page.fmt.date(p.projection_from)) \
            if p.projection_from and line.cumulative else ""
    if p.low is None or p.high is None:
        return ""
    return f"{page.fmt.value(p.low, line.unit)} – {page.fmt.value(p.high, line.unit)}"


def step_name(key: str) -> str:
    return {"call_to_meeting": _("call → meeting"), "meeting_to_won": _("meeting → sale"),
            "call_to_won": _("call → sale")}.get(key, key)


def need_name(key: str) -> str:
    return {"deals_won": _("Deals won"), "meetings": _("Meetings"),
            "calls": _("Calls")}.get(key, key)


def planning_problem(exc: PlanningError) -> str:
    if exc.code == "zero_rate":
        return _("No {step} conversion in the history (the rate is 0): nothing to plan from.",
                 step=step_name(str(exc.values.get("step"))))
    if exc.code == "rates":
        return _("Not enough history (no calls or no meetings) to plan from.")
    return _("No plan can be made from this goal.")


def needs_table(page: Page, plan: ReversePlan) -> DataTable:
    columns = [Column("what", _("What")),
               Column("per_period", _("In the period"), numeric=True, unit="count"),
               Column("per_day", _("Per working day"), numeric=True, unit="count"),
               Column("per_day_exact", _("Per working day, exact"), numeric=True,
                      unit="number")]
    rows = [Row([Cell(n.what, need_name(n.what)),
                 number_cell(n.per_period, "count", page.fmt),
                 number_cell(n.per_day, "count", page.fmt),
                 number_cell(float(n.per_day_exact), "number", page.fmt)])
            for n in plan.needs]
    return DataTable("rep_activity", _("Activity the goal needs"), columns, rows,
                     note=_("{days} working days; rates from the rep's own history.",
                            days=plan.working_days))


def rates_table(page: Page, plan: ReversePlan) -> DataTable:
    counts = (("numerator", _("numerator")), ("denominator", _("denominator")))
    columns = [Column("step", _("Step")),
               Column("rate", _("Rate"), numeric=True, unit="ratio", parts=counts),
               Column("team_median", _("Team median"), numeric=True, unit="ratio")]
    medians = {o.step: o.team_median for o in plan.options}
    rows = []
    for rate in plan.rates:
        note = ("" if rate.numerator is None else
                f"{page.fmt.integer(rate.numerator)}/{page.fmt.integer(rate.denominator)}")
        median = medians.get(rate.key)
        rows.append(Row([
            Cell(rate.key, step_name(rate.key)),
            Cell(round(float(rate.value), 6), page.fmt.percent(rate.value), unit="ratio",
                 note=note, parts={"numerator": rate.numerator,
                                   "denominator": rate.denominator}),
            Cell(None if median is None else round(float(median), 6),
                 page.fmt.percent(median), unit="ratio")]))
    return DataTable("rep_rates", _("Conversion rates the plan uses"), columns, rows)


def reverse(page: Page, info: RepInfo, goal: Fraction | None,
            lines: list[PlanLine]) -> tuple[ReversePlan | None, Fraction | None, str]:
    """The reverse plan for the goal asked, else for the rep's deals target of the month."""
    at = plan_at(page)
    if goal is None:
        target = next((ln for ln in lines if ln.target.kpi == "deals_won" and spans_period(
            ln.target.period_start, ln.target.period_end, "month")), None)
        goal = Fraction(str(target.result.plan)) if target else None
    if goal is None:
        return None, None, ""
    request = ReverseRequest(goal_kpi="deals_won", goal=goal, at=at, period="month", rep=info)
    try:
        return reverse_plan_in_scope(page, request), goal, ""
    except PlanningError as exc:
        return None, goal, planning_problem(exc)


def reverse_plan_in_scope(page: Page, request: ReverseRequest) -> ReversePlan:
    from saleskpi.service.planner import reverse_plan

    try:
        return reverse_plan(page.service, request, page.user.scope)
    except InvalidQuery as exc:
        raise PageError(400, str(exc)) from None


def parse_goal(text: str | None) -> tuple[Fraction | None, str]:
    if not text or not text.strip():
        return None, ""
    try:
        goal = Fraction(text.strip().replace(",", "."))
    except (ValueError, ZeroDivisionError):
        return None, _("The goal must be a number of deals, e.g. 20.")
    if not 0 < goal <= MAX_GOAL:
        return None, _("The goal must be a number of deals, e.g. 20.")
    return goal, ""


@router.get("/reps/{rep_id}")
def rep_page(rep_id: str, page: PageDep, goal: str | None = None) -> Response:
    with page.service.sharing_reads():  # its questions share one connection
        return _rep_page(rep_id, page, goal)


def _rep_page(rep_id: str, page: Page, goal: str | None) -> Response:
    info, comparison, row = visible_rep(page, rep_id)
    at = plan_at(page)
    try:
        lines = plan_vs_actual(page.service, at, level="rep", scope=page.user.scope,
                               who=rep_id)
    except InvalidQuery as exc:
        raise PageError(400, str(exc)) from None
    plans: dict[str, PlanLine] = {}
    for line in lines:
        plans.setdefault(line.target.kpi, line)
    asked, goal_error = parse_goal(goal)
    plan, used_goal, plan_error = reverse(page, info, asked, lines)
    f = page.filters
    trend_card = page.scorecard(KpiQuery(
        TREND, ("rep",), f.grain, f.start, f.end,
        (*f.where(without=("rep", "team")), ("rep", (rep_id,)))), totals=False)
    trend_rows = sorted((r for r in trend_card.rows if r.keys.get("rep") == rep_id),
                        key=lambda r: r.keys.get("period") or "")
    trend = DataTable("rep_trend", _("Trend by period"),
                      [Column("period", _("Period")), *kpi_columns(page, trend_card, TREND)],
                      [Row([Cell(r.keys.get("period"),
                                 page.fmt.period(r.keys.get("period"), f.grain)),
                            *[kpi_cell(r.values[k], k, page.fmt, rep=rep_id,
                                       period=r.keys.get("period"),
                                       href=page.rows_link(k, rep=rep_id,
                                                           period=r.keys.get("period"),
                                                           grain=f.grain))
                              for k in TREND]],
                           rep=rep_id) for r in trend_rows])
    chart = column_chart(_("Revenue by period"), [
        Point(page.fmt.period(r.keys.get("period"), f.grain), r.values["revenue"].value,
              page.fmt.value(r.values["revenue"].value, r.values["revenue"].unit))
        for r in trend_rows], page.fmt.compact_money)
    tables = [kpi_table(page, comparison, row, plans, has_team=bool(info.team)),
              plan_table(page, lines), trend]
    needs = needs_table(page, plan) if plan else None
    rates = rates_table(page, plan) if plan else None
    if needs and rates:
        tables += [needs, rates]
    improvement = plan.improvement if plan else None
    return page.render(
        "rep.html", tables=tables, rep=info, row=row, kpis=tables[0], plan_lines=tables[1],
        trend=trend, chart=chart, needs=needs, rates=rates, plan=plan, improvement=improvement,
        step_name=step_name, goal=goal or "", used_goal=used_goal,
        goal_error=goal_error or plan_error, at=at, title=row.name)
