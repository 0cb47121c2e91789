"""The funnel page: conversion and drop-off per stage, each rep against the team."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.funnel import FunnelOptions, FunnelSlice, PipelineFunnel, StageRow
from saleskpi.service.query_checks import check_where
from saleskpi.surfaces.web.charts import Chart, Point, bar_list
from saleskpi.surfaces.web.deps import Page, PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.names import pipeline_name, stage_name
from saleskpi.surfaces.web.tables import (
    PAGE_PARAM,
    Cell,
    Column,
    DataTable,
    Row,
    number_cell,
    text_cell,
)
from saleskpi.surfaces.web.views import rep_href

router = APIRouter(route_class=WebRoute)
REPS_PAGE_SIZE = 20  # reps a page; each rep is a row per stage


def _slug(text: str | None) -> str:
    return "".join(c if c.isalnum() else "_" for c in (text or "all"))[:40]


def _rate(page: Page, numerator: int, denominator: int, value: float | None,
          kpi: str, rep: str | None, mark: str | None = None) -> Cell:
    note = f"{page.fmt.integer(numerator)}/{page.fmt.integer(denominator)}"
    return Cell(None if value is None else round(value, 6), page.fmt.percent(value), kpi=kpi,
                rep=rep, mark=mark, note=note, unit="ratio",
                parts={"numerator": numerator, "denominator": denominator})


def _stage_cells(page: Page, stage: StageRow, rep: str | None) -> list[Cell]:
    return [
        number_cell(stage.entered, "count", page.fmt),
        _rate(page, stage.converted, stage.entered, stage.conversion, "stage_conversion", rep,
              mark="worse" if stage.leak else None),
        _rate(page, stage.dropped, stage.entered, stage.drop_off, "stage_drop_off", rep),
        number_cell(stage.median_days, "days", page.fmt),
        number_cell(stage.p90_days, "days", page.fmt),
        number_cell(stage.open_deals, "count", page.fmt),
        number_cell(stage.open_amount, page.currency, page.fmt),
    ]


def _columns(page: Page, *, rep: bool) -> list[Column]:
    counts = (("numerator", _("numerator")), ("denominator", _("denominator")))
    columns = [Column("rep", _("Rep"))] if rep else []
    columns += [
        Column("stage", _("Stage")),
        Column("entered", _("Entered"), numeric=True, unit="count"),
        Column("stage_conversion", _("Conversion"), numeric=True, unit="ratio", parts=counts),
        Column("stage_drop_off", _("Drop-off"), numeric=True, unit="ratio", parts=counts),
        Column("median_days", _("Median days"), numeric=True, unit="days"),
        Column("p90_days", _("P90 days"), numeric=True, unit="days"),
        Column("open_deals", _("Open deals"), numeric=True, unit="count"),
        Column("open_amount", _("Open amount"), numeric=True, unit=page.currency),
    ]
    if rep:
        columns.append(Column("vs_team", _("Conversion vs team"), numeric=True))
    return columns


def team_table(page: Page, funnel: PipelineFunnel) -> DataTable:
    rows = [Row([Cell(s.stage, stage_name(s.stage)), *_stage_cells(page, s, None)])
            for s in funnel.team.stages]
    title = _("Team funnel: {pipeline}", pipeline=pipeline_name(funnel.pipeline))
    return DataTable(f"funnel_{_slug(funnel.pipeline)}", title, _columns(page, rep=False),
                     rows)


def page_param(report_size: int, funnel: PipelineFunnel) -> str:
    """The query parameter that pages a pipeline's reps table.

    With one pipeline it is ``page``, like every other table; with several each
    pipeline has its own (``page_main``), so paging one leaves the others where they are.
    """
    return PAGE_PARAM if report_size == 1 else f"{PAGE_PARAM}_{_slug(funnel.pipeline)}"


def reps_table(page: Page, funnel: PipelineFunnel, *, paged: bool = True,
               param: str = PAGE_PARAM) -> DataTable:
    """Each rep's stages against the team's; ``paged``: 20 reps a page (a download has all).

    458 reps × 7 stages was 3,000 rows of HTML a visit: the page's slowest part;
    50 reps a page still made the funnel one of the slowest pages under load.
    """
    reps = funnel.reps
    pager = None
    if paged:
        pager = page.pager(len(reps), REPS_PAGE_SIZE, param)
        reps = pager.slice(reps)
    rows = []
    for rep in reps:
        for stage in rep.stages:
            gap = stage.vs_team
            text = "—" if gap is None else _("{sign}{value} pp", sign="+" if gap >= 0 else "−",
                                             value=page.fmt.decimal(abs(gap) * 100))
            cells = [text_cell(rep.rep_name or rep.rep, href=rep_href(rep.rep), rep=rep.rep),
                     Cell(stage.stage, stage_name(stage.stage)),
                     *_stage_cells(page, stage, rep.rep),
                     Cell(None if gap is None else round(gap, 6), text,
                          mark="worse" if stage.leak else None)]
            rows.append(Row(cells, rep=rep.rep))
    title = _("Each rep against the team: {pipeline}",
              pipeline=pipeline_name(funnel.pipeline))
    note = _("Marked: a stage where the rep converts more than 10 points below the team.")
    table = DataTable(f"funnel_reps_{_slug(funnel.pipeline)}", title,
                      _columns(page, rep=True), rows, note=note)
    table.pager = pager
    return table


def funnel_chart(page: Page, funnel: FunnelSlice, title: str) -> Chart:
    return bar_list(title, [Point(stage_name(s.stage), float(s.entered),
                                  f"{page.fmt.integer(s.entered)} · "
                                  f"{page.fmt.percent(s.conversion)}")
                            for s in funnel.stages])


@router.get("/funnel")
def funnel_page(page: PageDep, pipeline: str | None = None) -> Response:
    f = page.filters
    options = FunnelOptions(pipeline=pipeline or None, by_rep=True, as_of=f.end,
                            start=f.start, end=f.end, where=f.where())
    try:
        # A source or segment typed wrong says so (as every other page), not "no history".
        check_where(page.service, options.where, page.user.scope)
        report = page.service.funnel(options, page.user.scope)
    except InvalidQuery as exc:
        raise PageError(400, str(exc)) from None
    sections = []
    tables: list[DataTable] = []
    exporting = page.request.query_params.get("export") is not None
    for funnel in report.pipelines:
        team = team_table(page, funnel)
        reps = reps_table(page, funnel, paged=not exporting,
                          param=page_param(len(report.pipelines), funnel))
        tables += [team, reps]
        sections.append({"team": team, "reps": reps,
                         "chart": funnel_chart(page, funnel.team, team.title)})
    return page.render("funnel.html", tables=tables, sections=sections, report=report,
                       pipeline=pipeline or "", title=_("Funnel"))
