"""Reps side by side: the comparison table and the leaderboard (``saleskpi.service.compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.query import KpiQuery
from saleskpi.service.compare import DEFAULT_KPIS, Comparison, RepRow, compare, leaderboard
from saleskpi.service.compare import Cell as CompareCell
from saleskpi.surfaces.web.charts import Point, bar_list
from saleskpi.surfaces.web.deps import Page, PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import (
    PAGE_PARAM,
    Cell,
    Column,
    DataTable,
    Row,
    kpi_cell,
    kpi_column,
    number_cell,
    text_cell,
)
from saleskpi.surfaces.web.views import rep_href

router = APIRouter(route_class=WebRoute)
Direction = Literal["asc", "desc"]
MAX_KPIS = 20
# Reps per page of the comparison: 458 reps × 9 KPIs was 4,000 cells, ~0.85 s of
# Python and a 640 KB page (docs/web-latency.md); 50 rows cost a tenth of that.
COMPARE_PAGE_SIZE = 50
# Rows per page of the leaderboard (a rep, or a rep in one period): 458 reps and
# their 458 bars were a third of the page's time under load.
LEADERBOARD_PAGE_SIZE = 50


def chosen_kpis(page: Page, asked: list[str], default: tuple[str, ...]) -> list[str]:
    known = page.service.catalog.kpis
    unknown = [k for k in asked if k not in known]
    if unknown:
        raise PageError(400, _("unknown KPI {key!r}", key=unknown[0][:60]))
    return list(dict.fromkeys(asked))[:MAX_KPIS] or list(default)


def _sorted(page: Page, comparison: Comparison, sort: str | None,
            direction: str | None) -> tuple[Comparison, str | None, Direction | None]:
    if sort is None:
        return comparison, None, None
    descending = None if direction not in ("asc", "desc") else direction == "desc"
    if sort == "rep":
        rows = sorted(comparison.rows, key=lambda r: (r.name.casefold(), r.rep),
                      reverse=bool(descending))
        comparison.rows = rows
        return comparison, "rep", "desc" if descending else "asc"
    if sort not in comparison.kpis:
        raise PageError(400, _("cannot sort by {key!r}: it is not a column of the table",
                               key=sort[:60]))
    if descending is None:
        descending = comparison.higher_is_better[sort]
    return comparison.sorted_by(sort, descending), sort, "desc" if descending else "asc"


def _colour(cell: CompareCell, average: float | None) -> str | None:
    """The cell's mark, unless the difference may be chance: a proportion whose 95%
    interval holds the team average (2 of 4 against 75% is not a weak rep yet)."""
    if (cell.mark and average is not None and cell.ci_low is not None
            and cell.ci_high is not None and cell.ci_low <= average <= cell.ci_high):
        return None
    return cell.mark


def _sort_link(page: Page, key: str, current: str | None, direction: Direction | None) -> str:
    flip: Direction | None = None
    if key == current:
        flip = "asc" if direction == "desc" else "desc"
    # A new order starts again on the first page: its best (or worst) reps.
    return page.link(sort=key, dir=flip, **{PAGE_PARAM: None})


def comparison_table(page: Page, comparison: Comparison, sort: str | None,
                     direction: Direction | None,
                     reps: Sequence[RepRow] | None = None) -> DataTable:
    """The comparison's table: every rep, or only ``reps`` (one page of them).

    The team average and total rows follow either way, and are over every rep of
    the comparison, whatever the page.
    """
    units = comparison.units
    columns = [Column("rep", _("Rep"), sort_url=_sort_link(page, "rep", sort, direction),
                      sorted=direction if sort == "rep" else None)]
    for key in comparison.kpis:
        ratio = any(r.cells[key].is_ratio for r in comparison.rows)
        interval = any(r.cells[key].ci_low is not None for r in comparison.rows)
        columns.append(kpi_column(key, page.kpi_name(key), units[key], ratio=ratio,
                                  interval=interval,
                                  sort_url=_sort_link(page, key, sort, direction),
                                  sorted=direction if sort == key else None))
    columns += [Column("strengths", _("Strengths")), Column("weaknesses", _("Weaknesses"))]
    rows = []
    average = comparison.average(None)
    for rep in comparison.rows if reps is None else reps:
        cells = [text_cell(rep.name, href=rep_href(rep.rep), rep=rep.rep)]
        cells += [kpi_cell(rep.cells[k], k, page.fmt, rep=rep.rep,
                           mark=_colour(rep.cells[k], average.values[k].value if average
                                        else None),
                           href=page.rows_link(k, rep=rep.rep))
                  for k in comparison.kpis]
        cells += [text_cell(", ".join(page.kpi_name(k) for k in rep.strengths)),
                  text_cell(", ".join(page.kpi_name(k) for k in rep.weaknesses))]
        rows.append(Row(cells, rep=rep.rep))
    for kind, label, summary in (("average", _("Team average"), comparison.average(None)),
                                 ("total", _("Total"), comparison.total(None))):
        if summary is None:
            continue
        cells = [text_cell(label)]
        cells += [kpi_cell(summary.values[k], k, page.fmt,
                           href=page.rows_link(k) if kind == "total" else None)
                  for k in comparison.kpis]
        rows.append(Row([*cells, text_cell(None), text_cell(None)], kind=kind))
    note = _("The team average is over the reps active in the period: those with "
             "anything counted in the KPIs shown.")
    return DataTable("comparison", _("Reps compared with the team average"), columns, rows,
                     note=note)


@router.get("/compare")
def compare_page(page: PageDep, kpi: Annotated[list[str], Query()] = [],  # noqa: B006
                 sort: str | None = None,
                 direction: Annotated[str | None, Query(alias="dir")] = None) -> Response:
    with page.service.sharing_reads():  # its questions share one connection
        return _compare_page(page, kpi, sort, direction)


def _compare_page(page: Page, kpi: list[str], sort: str | None,
                  direction: str | None) -> Response:
    f = page.filters
    # ?kpi= (a bookmark) wins over the KPIs the user keeps, which win over the default.
    kpis = chosen_kpis(page, kpi, page.prefs.kpis_of("compare") or DEFAULT_KPIS)
    threshold = page.prefs.threshold
    query = KpiQuery(tuple(kpis), ("rep",), "all", f.start, f.end, f.where())
    try:
        comparison = compare(page.service, query, page.user.scope, threshold)
    except InvalidQuery as exc:
        raise PageError(400, str(exc)) from None
    comparison, sort, shown = _sorted(page, comparison, sort, direction)
    if page.request.query_params.get("export"):
        # A download holds every rep, in the page's order.
        table = comparison_table(page, comparison, sort, shown)
    else:
        # Sorted first, then cut: page 2 continues page 1's order.
        pager = page.pager(len(comparison.rows), COMPARE_PAGE_SIZE)
        table = comparison_table(page, comparison, sort, shown, pager.slice(comparison.rows))
        table.pager = pager
    return page.render("compare.html", tables=[table], table=table, kpis=kpis, asked=kpi,
                       threshold=threshold, all_kpis=sorted(page.service.catalog.kpis),
                       title=_("Compare reps"))


@router.get("/leaderboard")
def leaderboard_page(page: PageDep, kpi: str = "revenue") -> Response:
    f = page.filters
    key = chosen_kpis(page, [kpi], ("revenue",))[0]
    query = KpiQuery((key,), ("rep",), f.period, f.start, f.end, f.where())
    try:
        board = leaderboard(page.service, query, page.user.scope)
    except InvalidQuery as exc:
        raise PageError(400, str(exc)) from None
    grain = f.period != "all"
    columns = [Column("rank", _("Rank"), numeric=True), Column("rep", _("Rep"))]
    if grain:
        columns.append(Column("period", _("Period")))
    columns += [kpi_column(key, page.kpi_name(key), board.unit, ratio=board.is_ratio),
                Column("previous_rank", _("Previous rank"), numeric=True),
                Column("rank_change", _("Places gained"), numeric=True)]
    standings = board.rows
    pager = None
    if not page.request.query_params.get("export"):  # a download holds every row
        pager = page.pager(len(standings), LEADERBOARD_PAGE_SIZE)
        standings = pager.slice(standings)
    rows = []
    for standing in standings:
        change = standing.rank_change
        mark = None if not change else ("better" if change > 0 else "worse")
        cells = [number_cell(standing.rank, "count", page.fmt),
                 text_cell(standing.name, href=rep_href(standing.rep), rep=standing.rep)]
        if grain:
            cells.append(Cell(standing.period, page.fmt.period(standing.period, f.period)))
        cells += [kpi_cell(standing.value, key, page.fmt, rep=standing.rep,
                           period=standing.period,
                           href=page.rows_link(key, rep=standing.rep, period=standing.period,
                                               grain=f.period)),
                  number_cell(standing.previous_rank, "count", page.fmt),
                  Cell(change, page.fmt.change(change, "count") if change is not None
                       else "—", mark=mark)]
        rows.append(Row(cells, rep=standing.rep))
    note = ""
    if board.previous is not None:
        note = _("Rank change against {start} – {end}.",
                 start=page.fmt.date(board.previous.start), end=page.fmt.date(board.previous.end))
    table = DataTable("leaderboard", _("Leaderboard: {kpi}", kpi=page.kpi_name(key)), columns,
                      rows, note=note)
    table.pager = pager
    # The chart shows the reps of this page, in the latest period shown.
    last = max((s.period or "" for s in board.rows), default="")
    points = [Point(s.name, s.value.value, page.fmt.value(s.value.value, board.unit))
              for s in standings if (s.period or "") == last]
    chart = bar_list(table.title, points)
    chart.names = True
    return page.render("leaderboard.html", tables=[table], table=table, chart=chart,
                       kpi=key, all_kpis=sorted(page.service.catalog.kpis),
                       title=_("Leaderboard"))
