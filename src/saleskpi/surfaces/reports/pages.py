"""A dashboard page's data as a PDF, from the same views the pages, the CLI and the API use.

``saleskpi report pdf PAGE`` and ``GET /api/v1/reports/pdf/PAGE`` render one of
``PAGES`` for the caller (in their scope) with the page's filters. The web pages
themselves render their own tables with ``?format=pdf`` (``surfaces/web/deps.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.surfaces.documents import Cell, Column, Document, Row, Table
from saleskpi.surfaces.reports.digest import plan_table
from saleskpi.surfaces.reports.wording import DASH, percent_text, range_text, sentence, value_text
from saleskpi.views.digests import HEADLINE
from saleskpi.views.funnel import FunnelParams, funnel
from saleskpi.views.plans import PlanParams, plan_vs_actual
from saleskpi.views.rankings import ComparisonParams, LeaderboardParams, comparison, leaderboard
from saleskpi.views.scorecard import ScorecardParams, scorecard

PAGES = ("overview", "leaderboard", "compare", "funnel", "plans", "rep")


class PageParams(BaseModel):
    start: dt.date | None = Field(default=None, validation_alias=AliasChoices("from", "start"))
    end: dt.date | None = Field(default=None, validation_alias=AliasChoices("to", "end"))
    range: str | None = None
    where: list[str] = Field(default_factory=list)
    kpi: str = Field(default="revenue", description="The leaderboard's KPI.")
    kpis: list[str] = Field(default_factory=list, description="The KPIs (default: the "
                            "page's own).")
    rep: str | None = Field(default=None, description="The rep page's rep id.")


def _filters(params: PageParams) -> dict[str, Any]:
    return {"start": params.start, "end": params.end, "range": params.range,
            "where": params.where}


def _name(service: SalesKpiService, key: str, lang: str) -> str:
    spec = service.catalog.kpis.get(key)
    return spec.display_name(lang) if spec else key


def _kpi_table(service: SalesKpiService, caller: Principal, title: str, kpis: list[str],
               rows: list[dict[str, Any]], *, first: tuple[str, str] | None,
               totals: list[dict[str, Any]] | None = None) -> Table:
    """Rows of a scorecard-like view: an optional first column, then one per KPI."""
    columns = ([Column(first[1])] if first else []) + [
        Column(_name(service, k, caller.lang), numeric=True) for k in kpis]

    def cells(row: dict[str, Any], label: str | None) -> list[Cell]:
        values = row.get("values", row)
        out = [Cell(label, label or DASH)] if first else []
        for key in kpis:
            value = values.get(key) or {}
            out.append(Cell(value.get("value"), value_text(value, value.get("unit")),
                            mark=value.get("mark"), unit=value.get("unit")))
        return out

    lines = [Row(cells(r, str(r.get(first[0]) or r.get("rep") or DASH) if first else None))
             for r in rows]
    lines += [Row(cells(r, _("Total")), kind="total") for r in totals or []]
    return Table(title, columns, lines)


def _range_line(view: Any) -> str:
    start, end = view.start, view.end
    if start and end:
        return _("Days: {days}.", days=range_text(start, end))
    return _("All time.")


def _overview(service: SalesKpiService, caller: Principal, params: PageParams) -> Document:
    kpis = params.kpis or list(HEADLINE)
    total = scorecard(service, caller, ScorecardParams(kpis=kpis, **_filters(params)))
    tables = [_kpi_table(service, caller, _("Headline KPIs"), kpis, total.rows, first=None)]
    if caller.role != "rep":
        by_rep = scorecard(service, caller, ScorecardParams(kpis=kpis, by=["rep"],
                                                            **_filters(params)))
        tables.append(_kpi_table(service, caller, _("By rep"), kpis, by_rep.rows,
                                 first=("rep_name", _("Rep")), totals=by_rep.totals))
    at = dt.date.fromisoformat(total.end) if total.end else None
    tables.append(plan_table(plan_vs_actual(service, caller, PlanParams(at=at)).lines, at))
    return Document(_("Overview"), [_range_line(total)], tables)


def _rep(service: SalesKpiService, caller: Principal, params: PageParams) -> Document:
    rep = params.rep or caller.rep_id
    if not rep:
        raise InvalidQuery(_("the rep page needs --rep (the rep's id)"), code="no_rep")
    kpis = params.kpis or list(HEADLINE)
    filters = _filters(params) | {"where": [*params.where, f"rep={rep}"]}
    total = scorecard(service, caller, ScorecardParams(kpis=kpis, **filters))
    by_month = scorecard(service, caller, ScorecardParams(kpis=kpis, period="month",
                                                          **filters))
    names = {r.rep: r.name for r in service.visible_reps(caller.scope)}
    at = dt.date.fromisoformat(total.end) if total.end else None
    lines = [line for line in plan_vs_actual(service, caller, PlanParams(at=at)).lines
             if line.get("rep_id") == rep]
    tables = [_kpi_table(service, caller, _("Headline KPIs"), kpis, total.rows, first=None),
              _kpi_table(service, caller, _("By month"), kpis, by_month.rows,
                         first=("period", _("Period"))),
              plan_table(lines, at)]
    return Document(names.get(rep, rep), [_range_line(total)], tables)


def _leaderboard(service: SalesKpiService, caller: Principal,
                 params: PageParams) -> Document:
    view = leaderboard(service, caller, LeaderboardParams(kpi=params.kpi, **_filters(params)))
    unit = view.unit
    columns = [Column(_("Rank"), numeric=True), Column(_("Rep")),
               Column(_name(service, view.kpi, caller.lang), numeric=True, unit=unit),
               Column(_("Previous rank"), numeric=True),
               Column(_("Previous value"), numeric=True, unit=unit)]
    rows = [Row([Cell(r["rank"], str(r["rank"])),
                 Cell(r.get("rep_name"), str(r.get("rep_name") or r.get("rep"))),
                 Cell(r.get("value"), value_text(r.get("value"), unit)),
                 Cell(r.get("previous_rank"), str(r.get("previous_rank") or DASH)),
                 Cell(r.get("previous_value"), value_text(r.get("previous_value"), unit))])
            for r in view.rows]
    return Document(_("Leaderboard"), [_range_line(view)],
                    [Table(_name(service, view.kpi, caller.lang), columns, rows)])


def _compare(service: SalesKpiService, caller: Principal, params: PageParams) -> Document:
    view = comparison(service, caller, ComparisonParams(kpis=params.kpis, **_filters(params)))
    table = _kpi_table(service, caller, _("Reps compared"), view.kpis, view.rows,
                       first=("rep_name", _("Rep")), totals=view.totals)
    return Document(_("Compare"), [_range_line(view)], [table])


def _funnel(service: SalesKpiService, caller: Principal, params: PageParams) -> Document:
    view = funnel(service, caller, FunnelParams(**_filters(params)))
    currency = view.currency
    tables = []
    for pipeline in view.pipelines:
        columns = [Column(_("Stage")), Column(_("Entered"), numeric=True, unit="count"),
                   Column(_("Converted"), numeric=True, unit="count"),
                   Column(_("Stage conversion"), numeric=True, unit="ratio"),
                   Column(_("Dropped"), numeric=True, unit="count"),
                   Column(_("Median days in stage"), numeric=True, unit="days"),
                   Column(_("Open deals"), numeric=True, unit="count"),
                   Column(_("Open amount"), numeric=True, unit=currency)]
        rows = []
        for stage in pipeline["team"]["stages"]:
            median = (stage.get("time_in_stage") or {}).get("median_days")
            rows.append(Row([
                Cell(stage["stage"], str(stage["stage"])),
                Cell(stage["entered"], value_text(stage["entered"], "count")),
                Cell(stage["converted"], value_text(stage["converted"], "count")),
                Cell(stage.get("stage_conversion"), percent_text(stage.get("stage_conversion"))),
                Cell(stage["dropped"], value_text(stage["dropped"], "count")),
                Cell(median, value_text(median, "number")),
                Cell(stage["open_deals"], value_text(stage["open_deals"], "count")),
                Cell(stage["open_amount"], value_text(stage["open_amount"], currency))]))
        tables.append(Table(_("Pipeline {name}", name=pipeline["pipeline"]), columns, rows))
    return Document(_("Funnel"), [_range_line(view)], tables)


def _plans(service: SalesKpiService, caller: Principal, params: PageParams) -> Document:
    at = params.end
    view = plan_vs_actual(service, caller, PlanParams(at=at))
    day = dt.date.fromisoformat(view.at)
    return Document(_("Plan vs actual"), [], [plan_table(view.lines, day)])


BUILDERS: dict[str, Callable[[SalesKpiService, Principal, PageParams], Document]] = {
    "overview": _overview, "leaderboard": _leaderboard, "compare": _compare,
    "funnel": _funnel, "plans": _plans, "rep": _rep,
}


def page_document(service: SalesKpiService, caller: Principal, page: str,
                  params: PageParams) -> Document:
    """The page's data as a document, in the caller's scope and language (already set)."""
    builder = BUILDERS.get(page)
    if builder is None:
        raise InvalidQuery(_("no page {page!r}; use one of {pages}", page=page[:40],
                             pages=", ".join(PAGES)), code="unknown_page")
    document = builder(service, caller, params)
    lines = [sentence(line) for line in document.lines]
    return Document(document.title, lines, document.tables,
                    empty_text=_("No data for this view."))
