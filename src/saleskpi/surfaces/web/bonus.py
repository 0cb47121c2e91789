"""The bonus page: every rep's bonus the reader may see, and one rep's explanation with
the what-if ("4 more deals → the next tier pays …").

A rep sees only their own bonus, explained, with the what-if; a team lead their team;
the head of sales everyone. ``?rep=`` opens one rep's explanation; ``?pay_period=``
picks the month or quarter (as ``saleskpi bonus --period``).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from urllib.parse import urlencode

from babel.numbers import format_currency
from fastapi import APIRouter
from starlette.responses import Response

from saleskpi.domain.errors import NotFound, SalesKpiError
from saleskpi.domain.query import plain_number
from saleskpi.domain.targets import period_bounds
from saleskpi.surfaces.web.deps import Page, PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import Cell, Column, DataTable, Row, text_cell
from saleskpi.views.bonus import (
    BonusLine,
    BonusParams,
    BonusView,
    RepBonusItem,
    RepParams,
    WhatIfPlan,
    bonuses,
    explain,
    whatif,
)
from saleskpi.views.bonus_text import line_text, step_text

router = APIRouter(route_class=WebRoute)
MONTHS_OFFERED = 12
QUARTERS_OFFERED = 4


def period_choices(page: Page) -> list[tuple[str, str]]:
    """(value, label) of the periods the picker offers: now, the last months, quarters."""
    today = page.today()
    choices = [("", _("this period, to date"))]
    first = today.replace(day=1)
    for _i in range(MONTHS_OFFERED):
        first = period_bounds(first - dt.timedelta(days=1), "month")[0]
        choices.append((first.strftime("%Y-%m"), page.fmt.period(first.isoformat(), "month")))
    quarter = period_bounds(today, "quarter")[0]
    for _i in range(QUARTERS_OFFERED):
        quarter = period_bounds(quarter - dt.timedelta(days=1), "quarter")[0]
        label = page.fmt.period(quarter.isoformat(), "quarter")
        choices.append((f"{quarter.year}-Q{(quarter.month + 2) // 3}", label))
    return choices


def money_text(page: Page, amount: Decimal | None, currency: str) -> str:
    """An amount to the currency's minor unit, as payroll reads it: "$3,326.00"."""
    if amount is None:
        return "—"
    return str(format_currency(amount, currency, locale=page.lang))


def _money(page: Page, amount: Decimal | None, currency: str) -> Cell:
    return Cell(None if amount is None else float(amount), money_text(page, amount, currency),
                unit=currency)


def _number(page: Page, value: float | None) -> str:
    if value is None:
        return "—"
    return page.fmt.integer(value) if float(value).is_integer() else page.fmt.decimal(value, 2)


def _href(rep: str, period: str) -> str:
    query = {"rep": rep, **({"pay_period": period} if period else {})}
    return "/bonus?" + urlencode(query)


def bonus_table(page: Page, view: BonusView, period: str) -> DataTable:
    columns = [Column("rep", _("Rep")), Column("team", _("Team")), Column("plan", _("Plan")),
               Column("period", _("Period")),
               Column("total", _("Bonus"), numeric=True),
               Column("cap_hit", _("Cap hit"))]
    rows = []
    for b in view.bonuses:
        period_text = f"{b.period_start} – {b.period_end}"
        if not b.complete:
            period_text += " " + _("(to {day})", day=b.measured_to)
        rows.append(Row([
            text_cell(b.rep_name, href=_href(b.rep_id, period), rep=b.rep_id),
            text_cell(b.team, verbatim=True), text_cell(b.plan, verbatim=True),
            text_cell(period_text), _money(page, b.total, b.currency),
            text_cell(_("yes") if b.cap_hit else "")], rep=b.rep_id))
    for currency, amount in sorted(view.totals.items()):
        rows.append(Row([text_cell(_("Total")), text_cell(""), text_cell(""), text_cell(""),
                         _money(page, amount, currency), text_cell("")], kind="total"))
    note = _("Open a rep to see how their bonus was computed and what the next tier takes.")
    return DataTable("bonuses", _("Bonuses"), columns, rows, note=note)


def _measure(value: float | None, percent: bool, page: Page) -> str:
    if value is None:
        return "—"
    return page.fmt.percent(value / 100) if percent else page.fmt.value(value, "number")


def _line_cells(page: Page, line: BonusLine, currency: str) -> list[Cell]:
    def number(value: float | None) -> str:
        return _number(page, value)

    def money(value: Decimal | None) -> str:
        return money_text(page, value, currency)

    return [text_cell(line.name, verbatim=True), text_cell(page.kpi_name(line.kpi)
                                                           if line.kpi else ""),
            Cell(line.actual, number(line.actual)), Cell(line.target, number(line.target)),
            Cell(None if line.attainment is None else plain_number(line.attainment / 100),
                 _measure(line.attainment, True, page), unit="ratio"),
            text_cell(line_text(line, number, money)),
            Cell(float(line.amount), money(line.amount), unit=currency,
                 mark="worse" if line.amount < 0 else None,
                 title=_("a cap was hit") if line.cap_hit else "")]


def lines_table(page: Page, bonus: RepBonusItem, index: int) -> DataTable:
    columns = [Column("component", _("Component")), Column("kpi", _("KPI")),
               Column("actual", _("Actual"), numeric=True),
               Column("target", _("Target"), numeric=True),
               Column("attainment", _("Attainment"), numeric=True, unit="ratio"),
               Column("what", _("What")),
               Column("amount", _("Amount"), numeric=True, unit=bonus.currency)]
    rows = [Row(_line_cells(page, line, bonus.currency)) for line in bonus.lines]
    rows.append(Row([text_cell(_("Total")), *(text_cell("") for _i in range(5)),
                     _money(page, bonus.total, bonus.currency)], kind="total"))
    title = _("{plan}: {start} – {end} (version of {version})", plan=bonus.plan,
              start=bonus.period_start, end=bonus.period_end, version=bonus.version)
    return DataTable(f"bonus_lines_{index}", title, columns, rows)


def whatif_table(page: Page, plan: WhatIfPlan, index: int) -> DataTable:
    columns = [Column("step", _("Step")), Column("kpi", _("KPI")),
               Column("now", _("Now"), numeric=True), Column("more", _("More"), numeric=True),
               Column("then", _("Then pays"), numeric=True, unit=plan.currency),
               Column("gain", _("Gain"), numeric=True, unit=plan.currency),
               Column("per_day", _("Per working day left"))]
    rows = []
    for s in plan.steps:
        per_day = ""
        if s.per_working_day:
            per_day = _("{calls} calls, {meetings} meetings",
                        calls=math.ceil(s.per_working_day.get("calls") or 0),
                        meetings=math.ceil(s.per_working_day.get("meetings") or 0))
        rows.append(Row([text_cell(f"{s.name}: {step_text(s.kind)}"),
                         text_cell(page.kpi_name(s.kpi)),
                         Cell(s.actual, _number(page, s.actual)),
                         Cell(s.more, "+" + _number(page, s.more)),
                         _money(page, s.total_then, plan.currency),
                         _money(page, s.gain, plan.currency), text_cell(per_day)]))
    note = _("What the plan would pay with that much more of one KPI, everything else as "
             "it is; per working day left (today included), from the rep's own conversion "
             "over the three months before.")
    return DataTable(f"bonus_whatif_{index}", _("What the next step takes: {plan}",
                                                plan=plan.plan), columns, rows, note=note)


@router.get("/bonus")
def bonus_page(page: PageDep, pay_period: str | None = None,
               rep: str | None = None) -> Response:
    period = (pay_period or "").strip()[:40]
    chosen = rep or (page.user.rep_id if page.user.role == "rep" else None)
    try:
        view = bonuses(page.service, page.user, BonusParams(period=period or None))
        detail = explain(page.service, page.user, RepParams(rep=chosen, period=period or None)) \
            if chosen else None
        steps = whatif(page.service, page.user, RepParams(rep=chosen, period=period or None)) \
            if chosen else None
    except NotFound as exc:
        raise PageError(404, exc.message) from None
    except SalesKpiError as exc:
        raise PageError(400, exc.message) from None
    tables = [bonus_table(page, view, period)]
    explained = [lines_table(page, b, i) for i, b in enumerate(
        detail.bonuses if detail else [], start=1)]
    plans = [whatif_table(page, p, i) for i, p in enumerate(
        steps.plans if steps else [], start=1)]
    name = detail.bonuses[0].rep_name if detail and detail.bonuses else chosen
    return page.render("bonus.html", tables=[*tables, *explained, *plans], summary=tables[0],
                       explained=explained, plans=plans, rep=chosen, rep_name=name,
                       period=period, choices=period_choices(page), day=view.day,
                       export=f"/api/v1/bonus/export?{urlencode({'period': period})}"
                       if period else "/api/v1/bonus/export", title=_("Bonus"))
