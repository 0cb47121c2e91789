"""The records behind a figure: every number of the overview, the comparison, the
leaderboard and a rep's page links here (``saleskpi.views.drill``, as ``/api/v1/rows``).

The same filters as the page the number came from, in the reader's scope: a rep sees
only their own deals, a team lead their team's. 100 rows a page, newest first; the
downloads hold every row (up to the API's cap of 10,000).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from saleskpi.domain.errors import InvalidQuery, NotFound
from saleskpi.surfaces.web.deps import PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import Cell, Column, DataTable, Row, text_cell
from saleskpi.views.base import MAX_LIMIT
from saleskpi.views.drill import ROWS_LIMIT, RowsParams, RowsView, rows_behind

router = APIRouter(route_class=WebRoute)
PARTS = ("numerator", "denominator")


def _cell(value: Any) -> Cell:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return text_cell(None if value is None else str(value))
    if isinstance(value, int | float):
        return Cell(value, str(value))
    return text_cell(str(value))


def _table(view: RowsView, title: str) -> DataTable:
    columns = [Column(name, name, numeric=any(isinstance(r.get(name), int | float) and
                                              not isinstance(r.get(name), bool)
                                              for r in view.rows), verbatim=True)
               for name in view.columns]
    # The records as the files and the CRM wrote them: names, statuses, keys.
    rows = [Row([_cell(record.get(name)) for name in view.columns]) for record in view.rows]
    for row in rows:
        for cell in row.cells:
            cell.verbatim = True
    return DataTable("rows", title, columns, rows)


@router.get("/rows")
def rows_page(page: PageDep, kpi: str = "", part: str | None = None,
              period_key: str | None = None) -> Response:
    f = page.filters
    if kpi not in page.service.catalog.kpis:
        raise PageError(404, _("There is no such page, or it is not yours to see."))
    exporting = bool(page.request.query_params.get("export"))
    pager_total = None
    try:
        key = dt.date.fromisoformat(period_key) if period_key else None
    except ValueError:
        key = None
    where = [f"{dim}={values}" for dim, values in f.slices if dim != "rep"]
    params: dict[str, Any] = {"kpi": kpi, "part": part if part in PARTS else None,
                              "rep": f.value("rep") or None, "where": where,
                              "period": f.period, "period_key": key}
    if f.start:
        params["from"] = f.start
    if f.end:
        params["to"] = f.end
    if f.range_name == "all":  # all time chosen on the page, not the view's month to date
        params["range"] = "all"
    try:
        if exporting:
            view = rows_behind(page.service, page.user,
                               RowsParams(**params, limit=MAX_LIMIT, offset=0))
        else:
            first = rows_behind(page.service, page.user, RowsParams(**params, limit=1))
            pager_total = first.page.total_rows
            pager = page.pager(pager_total, ROWS_LIMIT)
            view = rows_behind(page.service, page.user, RowsParams(
                **params, limit=ROWS_LIMIT, offset=pager.first))
    except (InvalidQuery, NotFound) as exc:
        raise PageError(400, exc.message) from None
    name = page.kpi_name(kpi)
    parts = {"value": _("value"), "numerator": _("numerator"), "denominator": _("denominator")}
    title = _("{kpi}: the records behind it ({part})", kpi=name,
              part=parts.get(view.part, view.part))
    table = _table(view, title)
    if not exporting:
        table.pager = pager
    other = None
    if view.part in PARTS:
        flip = "denominator" if view.part == "numerator" else "numerator"
        other = (parts[flip], page.link(part=flip, page=None))
    return page.render("rows.html", tables=[table], table=table, view=view, kpi=kpi,
                       other=other, title=name, total=pager_total)
