"""The overview: headline KPIs against the previous period and the plan, and trends."""

from __future__ import annotations

import datetime as dt
import math

from fastapi import APIRouter
from starlette.responses import Response

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.periods import Against, parse_against, period_is_partial, shift_months
from saleskpi.domain.query import KpiQuery, KpiValue, Period, period_start, plain_number
from saleskpi.domain.targets import SUM_OF_REPS
from saleskpi.service.attainment import PlanLine
from saleskpi.service.compare import previous_range
from saleskpi.surfaces.web.charts import Point, column_chart
from saleskpi.surfaces.web.deps import Page, PageDep
from saleskpi.surfaces.web.filters import fitting_grain
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.rep import activity_text, projection_range
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
from saleskpi.surfaces.web.views import kpi_columns, plan_at, plans_by_kpi, view_level

TREND_MONTHS = 12
HEADLINE = ("revenue", "deals_won", "win_rate", "lead_response_time", "pipeline_value")
TREND = ("revenue", "deals_won", "win_rate")

router = APIRouter(route_class=WebRoute)


def _change(page: Page, key: str, now: KpiValue | None, before: KpiValue | None,
            href: str | None = None) -> tuple[Cell, Cell]:
    """The previous period's value, and the change to now, marked in the KPI's direction."""
    if before is None:
        return text_cell(None), text_cell(None)
    previous = kpi_cell(before, key, page.fmt, href=href)
    previous.kpi = None  # the KPI cell of this row is the current value
    if now is None or now.value is None or before.value is None:
        return previous, text_cell(None)
    difference = change_between(now.value, before.value)
    text = page.fmt.change(difference, now.unit)
    if now.unit != "ratio" and before.value:
        text += f" ({page.fmt.percent(difference / abs(before.value))})"
    higher = page.service.catalog.get(key).higher_is_better
    mark = None if difference == 0 else ("better" if (difference > 0) == higher else "worse")
    return previous, Cell(plain_number(difference), text, mark=mark, unit=now.unit)


def change_between(now: float, before: float) -> float:
    """``now - before``; 0 when the two differ only in the last digits of a float.

    Sums of money are floats added up in parallel, in no fixed order: the same
    pipeline value can come out $0.000004 apart in two questions, which showed as a
    change of "−$0", marked worse."""
    if math.isclose(now, before, rel_tol=1e-12, abs_tol=1e-9):
        return 0.0
    return now - before


def headline_kpis(page: Page) -> tuple[str, ...]:
    """The KPIs the user keeps on their overview, else the headline five."""
    return page.prefs.kpis_of("overview") or HEADLINE


def _plan_cells(page: Page, line: PlanLine | None, unit: str) -> list[Cell]:
    """Plan (Σ: the sum of the reps' plans), attainment and pacing by working days."""
    if line is None:
        return [text_cell(None) for _column in range(7)]
    pace = line.pace
    plan = number_cell(line.result.plan, unit, page.fmt)
    if line.target.source == SUM_OF_REPS:
        plan.text = _("{plan} (Σ reps)", plan=plan.text)
    elif line.sum_of_reps is not None:
        difference = line.result.plan - line.sum_of_reps
        plan.text = _("{plan} (reps: {sum}, {difference})", plan=plan.text,
                      sum=page.fmt.value(line.sum_of_reps, unit),
                      difference=("+" if difference >= 0 else "")
                      + page.fmt.value(difference, unit))
    attainment = line.result.attainment
    on_pace = line.on_pace
    mark = None if on_pace is None else ("better" if on_pace >= 1 else "worse")
    span_text = f"{line.target.period_start.isoformat()} – {line.target.period_end.isoformat()}"
    needed = number_cell(pace.needed_per_day if pace else None, unit, page.fmt)
    if line.activity:
        needed.text += f" ({activity_text(line)})"
    return [plan, number_cell(attainment, "ratio", page.fmt),
            number_cell(pace.expected if pace else None, unit, page.fmt, mark=mark), needed,
            number_cell(line.result.projection, unit, page.fmt),
            text_cell(projection_range(page, line)), text_cell(span_text)]


def headline_table(page: Page, kpis: tuple[str, ...] = HEADLINE) -> DataTable:
    f = page.filters
    where = f.where()
    card = page.scorecard(KpiQuery(kpis, (), "all", f.start, f.end, where))
    current = card.rows[0].values if card.rows else {}
    before: dict[str, KpiValue] = {}
    span = None
    note = _("All time: choose a range to compare with the period before.")
    if f.start and f.end:
        against = _against(page)
        span = previous_range(f.start, f.end, against)
        earlier = page.scorecard(KpiQuery(kpis, (), "all", span.start, span.end, where))
        before = earlier.rows[0].values if earlier.rows else {}
        note = _("{start} – {end} against {before_start} – {before_end}.",
                 start=page.fmt.date(f.start), end=page.fmt.date(f.end),
                 before_start=page.fmt.date(span.start), before_end=page.fmt.date(span.end))
        if span.rule == "to_date":
            note += " " + _("The same days of the period before, as this one is not over.")
        elif span.rule == "last_year":
            note += " " + _("The same days a year before.")
    at = plan_at(page)
    plans = plans_by_kpi(page, at, *view_level(page))
    if plans:
        note += " " + _("Plan attainment is measured over the target's own period, up to "
                        "{day}; Σ: the sum of the reps' plans; expected and needed count "
                        "working days; a projection is made once a quarter of them have "
                        "gone.", day=page.fmt.date(at))
    value_column = kpi_column("value", _("Value"), "number", ratio=True, interval=True)
    columns = [Column("kpi", _("KPI")), value_column,
               Column("previous", _("Previous period"), numeric=True),
               Column("change", _("Change"), numeric=True),
               Column("plan", _("Plan"), numeric=True),
               Column("attainment", _("Attainment"), numeric=True, unit="ratio"),
               Column("expected", _("Expected by now"), numeric=True),
               Column("needed", _("Needed / working day"), numeric=True),
               Column("projection", _("Projection"), numeric=True),
               Column("projection_range", _("Projection range (95%)")),
               Column("plan_period", _("Plan period"))]
    rows = []
    for key in kpis:
        value = current.get(key) or KpiValue(None, card.units[key])
        earlier_rows = page.rows_link(key, start=span.start, end=span.end) if span else None
        previous, change = _change(page, key, value, before.get(key), earlier_rows)
        line = plans.get(key)
        rows.append(Row([text_cell(page.kpi_name(key)),
                         kpi_cell(value, key, page.fmt, href=page.rows_link(key)),
                         previous, change, *_plan_cells(page, line, value.unit)]))
    return DataTable("headline", _("Headline KPIs"), columns, rows, note=note)


def _against(page: Page) -> Against:
    """?against=last_year compares with the same days a year before; else the period before."""
    try:
        return parse_against(page.request.query_params.get("against"))
    except InvalidQuery:
        return "previous"


def trend_window(start: dt.date | None, end: dt.date | None, period: Period,
                 range_name: str) -> tuple[dt.date | None, dt.date | None]:
    """The trend's days: those asked, but the TREND_MONTHS months up to the end for the
    default month to date (alone it would draw one bar) when no grain is chosen."""
    if period != "all" or end is None or range_name == "custom":
        return start, end
    first = shift_months(period_start(end, "month"), 1 - TREND_MONTHS)
    return (min(start, first) if start else None), end


def trend_table(page: Page) -> tuple[DataTable, list[Point], list[Point]]:
    f = page.filters
    start, end = trend_window(f.start, f.end, f.period, f.range_name)
    grain = fitting_grain(start, end, f.grain)
    card = page.scorecard(KpiQuery(TREND, (), grain, start, end, f.where()))
    columns = [Column("period", _("Period")), *kpi_columns(page, card, TREND)]
    rows, revenue, win_rate = [], [], []
    today = page.today()
    for result in sorted(card.rows, key=lambda r: r.keys.get("period") or ""):
        period = result.keys.get("period")
        label = page.fmt.period(period, grain)
        if period and period_is_partial(dt.date.fromisoformat(period), grain, start, end,
                                        today):
            # A period not over (or only partly asked) must not read as a collapse.
            label = _("{period} (so far)", period=label)
        cells = [Cell(period, label)]
        cells += [kpi_cell(result.values[k], k, page.fmt, period=period,
                           href=page.rows_link(k, period=period, grain=f.grain))
                  for k in TREND]
        rows.append(Row(cells))
        money, rate = result.values["revenue"], result.values["win_rate"]
        revenue.append(Point(label, money.value, page.fmt.value(money.value, money.unit)))
        win_rate.append(Point(label, rate.value, page.fmt.percent(rate.value),
                              rate.ci_low, rate.ci_high))
    table = DataTable("trend", _("Revenue and win rate by period"), columns, rows)
    return table, revenue, win_rate


@router.get("/")
def overview(page: PageDep) -> Response:
    with page.service.sharing_reads():  # its questions share one connection
        return _overview(page)


def _overview(page: Page) -> Response:
    kpis = headline_kpis(page)
    headline = headline_table(page, kpis)
    trend, revenue, win_rate = trend_table(page)
    charts = [
        column_chart(_("Revenue by period"), revenue, page.fmt.compact_money),
        column_chart(_("Win rate by period, with its 95% interval"), win_rate,
                     page.fmt.percent, kind="line"),
    ]
    return page.render("overview.html", tables=[headline, trend], headline=headline,
                       trend=trend, charts=charts, kpis=kpis,
                       all_kpis=sorted(page.service.catalog.kpis), title=_("Overview"))
