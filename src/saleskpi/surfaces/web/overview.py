"""The overview: headline KPIs against the previous period and the plan, and trends."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from saleskpi.domain.query import KpiQuery, KpiValue, plain_number
from saleskpi.service.compare import previous_range
from saleskpi.surfaces.web.charts import Point, column_chart
from saleskpi.surfaces.web.deps import Page, PageDep
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
from saleskpi.surfaces.web.views import kpi_columns, plan_at, plans_by_kpi, view_level

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
    difference = now.value - before.value
    text = page.fmt.change(difference, now.unit)
    if now.unit != "ratio" and before.value:
        text += f" ({page.fmt.percent(difference / abs(before.value))})"
    higher = page.service.catalog.get(key).higher_is_better
    mark = None if difference == 0 else ("better" if (difference > 0) == higher else "worse")
    return previous, Cell(plain_number(difference), text, mark=mark, unit=now.unit)


def headline_kpis(page: Page) -> tuple[str, ...]:
    """The KPIs the user keeps on their overview, else the headline five."""
    return page.prefs.kpis_of("overview") or HEADLINE


def headline_table(page: Page, kpis: tuple[str, ...] = HEADLINE) -> DataTable:
    f = page.filters
    where = f.where()
    card = page.scorecard(KpiQuery(kpis, (), "all", f.start, f.end, where))
    current = card.rows[0].values if card.rows else {}
    before: dict[str, KpiValue] = {}
    span = None
    note = _("Set both dates to compare with the period of equal length just before.")
    if f.start and f.end:
        span = previous_range(f.start, f.end)
        earlier = page.scorecard(KpiQuery(kpis, (), "all", span.start, span.end, where))
        before = earlier.rows[0].values if earlier.rows else {}
        note = _("Previous period: {start} – {end}.", start=page.fmt.date(span.start),
                 end=page.fmt.date(span.end))
    at = plan_at(page)
    plans = plans_by_kpi(page, at, *view_level(page))
    if plans:
        note += " " + _("Plan attainment is measured over the target's own period, up to "
                        "{day}.", day=page.fmt.date(at))
    value_column = kpi_column("value", _("Value"), "number", ratio=True, interval=True)
    columns = [Column("kpi", _("KPI")), value_column,
               Column("previous", _("Previous period"), numeric=True),
               Column("change", _("Change"), numeric=True),
               Column("plan", _("Plan"), numeric=True),
               Column("attainment", _("Attainment"), numeric=True, unit="ratio"),
               Column("plan_period", _("Plan period"))]
    rows = []
    for key in kpis:
        value = current.get(key) or KpiValue(None, card.units[key])
        earlier_rows = page.rows_link(key, start=span.start, end=span.end) if span else None
        previous, change = _change(page, key, value, before.get(key), earlier_rows)
        line = plans.get(key)
        if line is not None:
            plan = number_cell(line.result.plan, value.unit, page.fmt)
            attainment = line.result.attainment
            mark = None if attainment is None else ("better" if attainment >= 1 else "worse")
            reached = number_cell(attainment, "ratio", page.fmt, mark=mark)
            span_text = (f"{line.target.period_start.isoformat()} – "
                         f"{line.target.period_end.isoformat()}")
            period = text_cell(span_text)
        else:
            plan, reached, period = text_cell(None), text_cell(None), text_cell(None)
        rows.append(Row([text_cell(page.kpi_name(key)),
                         kpi_cell(value, key, page.fmt, href=page.rows_link(key)),
                         previous, change, plan, reached, period]))
    return DataTable("headline", _("Headline KPIs"), columns, rows, note=note)


def trend_table(page: Page) -> tuple[DataTable, list[Point], list[Point]]:
    f = page.filters
    card = page.scorecard(KpiQuery(TREND, (), f.grain, f.start, f.end, f.where()))
    columns = [Column("period", _("Period")), *kpi_columns(page, card, TREND)]
    rows, revenue, win_rate = [], [], []
    for result in sorted(card.rows, key=lambda r: r.keys.get("period") or ""):
        period = result.keys.get("period")
        label = page.fmt.period(period, f.grain)
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
