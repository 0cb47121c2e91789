"""REST v1: Comparison and leaderboard (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from saleskpi.service.compare import DEFAULT_THRESHOLD
from saleskpi.surfaces.api.routes import RANGE_HELP
from saleskpi.surfaces.http.deps import ServiceDep, UserDep
from saleskpi.surfaces.http.params import Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT
from saleskpi.views.rankings import (
    ComparisonParams,
    ComparisonView,
    LeaderboardParams,
    LeaderboardView,
    comparison,
    leaderboard,
)

router = APIRouter(prefix="/api/v1")

Where = Annotated[list[str], Query(description="DIM=VALUE[,VALUE]; repeat.")]
From = Annotated[dt.date | None, Query(alias="from", description="First day, inclusive.")]
To = Annotated[dt.date | None, Query(alias="to", description="Last day, inclusive.")]
Range = Annotated[str | None, Query(description=RANGE_HELP)]


@router.get("/comparison", response_model=ComparisonView, response_model_by_alias=True)
def get_comparison(
    user: UserDep, svc: ServiceDep,
    kpi: Annotated[list[str], Query(description="KPI keys; repeat (default: the "
                                    "comparison's nine).")] = [],  # noqa: B006
    period: str = "all",
    start: From = None,
    end: To = None,
    where: Where = [],  # noqa: B006
    range: Range = None,
    threshold: Annotated[float, Query(description="Mark values beyond this share of the "
                                      "team average (0.1 = 10%).")] = DEFAULT_THRESHOLD,
    sort: Annotated[str | None, Query(description="Order the reps by this KPI.")] = None,
    desc: Annotated[bool | None, Query(description="Sort order; default: best first.")] = None,
    filter: Annotated[list[str], Query(description="KPI<VALUE or KPI>VALUE (also <=, >=); "
                                       "repeat.")] = [],  # noqa: B006
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Reps against the team average: the same JSON as `saleskpi compare --format json`,
    within the caller's scope (a rep: their own row against their team's average), paged."""
    params = ComparisonParams(kpis=kpi, period=period, start=start, end=end, where=where,
                              range=range, threshold=threshold, sort=sort, descending=desc,
                              filters=filter, limit=limit, offset=offset)
    return comparison(svc, user, params).to_json()


@router.get("/leaderboard", response_model=LeaderboardView, response_model_by_alias=True)
def get_leaderboard(
    user: UserDep, svc: ServiceDep,
    kpi: Annotated[str, Query(description="The KPI to rank reps on.")],
    period: str = "all",
    start: From = None,
    end: To = None,
    where: Where = [],  # noqa: B006
    range: Range = None,
    against: Annotated[str, Query(description="previous or last_year.")] = "previous",
    top: Annotated[int | None, Query(ge=1, description="Only the reps ranked N or better.")]
    = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Reps ranked on one KPI with the change since the previous period: the same JSON as
    `saleskpi leaderboard --format json`, within the caller's scope, paged."""
    params = LeaderboardParams(kpi=kpi, period=period, start=start, end=end, where=where,
                               range=range, against=against, top=top, limit=limit, offset=offset)
    return leaderboard(svc, user, params).to_json()
