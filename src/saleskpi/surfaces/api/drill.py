"""REST v1: the rows behind a number (the same JSON as ``saleskpi rows --format json``),
and the values a filter may take."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from saleskpi.surfaces.api.routes import RANGE_HELP
from saleskpi.surfaces.http.deps import ServiceDep, UserDep
from saleskpi.surfaces.http.params import Offset
from saleskpi.views.base import MAX_LIMIT
from saleskpi.views.drill import ROWS_LIMIT, RowsParams, RowsView, rows_behind
from saleskpi.views.filter_values import FilterValuesView, filter_values

router = APIRouter(prefix="/api/v1")


@router.get("/rows", response_model=RowsView, response_model_by_alias=True)
def get_rows(
    user: UserDep, svc: ServiceDep,
    kpi: Annotated[str, Query(description="The KPI whose rows to list, e.g. deals_won.")],
    part: Annotated[str | None, Query(description="For a ratio KPI: numerator (default) "
                                      "or denominator.")] = None,
    start: Annotated[dt.date | None, Query(alias="from", description="First day, "
                                           "inclusive.")] = None,
    end: Annotated[dt.date | None, Query(alias="to", description="Last day, inclusive.")]
    = None,
    where: Annotated[list[str], Query(description="DIM=VALUE[,VALUE]; repeat.")]
    = [],  # noqa: B006
    rep: Annotated[str | None, Query(description="Only this rep's rows (id or name).")]
    = None,
    range: Annotated[str | None, Query(description=RANGE_HELP)] = None,
    period: Annotated[str, Query(description="The grain of period_key: day, week, month, "
                                 "quarter or year.")] = "all",
    period_key: Annotated[dt.date | None, Query(description="One period (its first day, "
                                                "as the scorecard names it).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows in this page.")]
    = ROWS_LIMIT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The fact rows a KPI value was computed from (a ratio's numerator or denominator),
    newest first, within the caller's scope, paged: the same JSON as
    `saleskpi rows --format json`. Without from/to: month to date, stated in `range`. A
    derived KPI is refused (`not_drillable`)."""
    params = RowsParams(kpi=kpi, part=part, start=start, end=end, where=where, rep=rep,
                        range=range, period=period, period_key=period_key, limit=limit,
                        offset=offset)
    return rows_behind(svc, user, params).to_json()


@router.get("/filters/{dim}", response_model=FilterValuesView)
def get_filter_values(user: UserDep, svc: ServiceDep, dim: str) -> dict[str, Any]:
    """The values the data holds for a filter: source, segment, product (id with its
    name: filter by either) or pipeline, sorted. The dashboard suggests them as a user
    types; every signed-in user may ask (they name no person)."""
    return filter_values(svc, user, dim).to_json()
