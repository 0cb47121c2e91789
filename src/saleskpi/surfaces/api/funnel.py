"""REST v1: The stage funnel (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from saleskpi.domain.query import MAX_ID
from saleskpi.surfaces.api.routes import RANGE_HELP
from saleskpi.surfaces.http.deps import ServiceDep, UserDep
from saleskpi.views.base import DEFAULT_LIMIT, MAX_LIMIT
from saleskpi.views.funnel import FunnelParams, FunnelView, funnel

router = APIRouter(prefix="/api/v1")


@router.get("/funnel", response_model=FunnelView, response_model_by_alias=True)
def get_funnel(
    user: UserDep, svc: ServiceDep,
    pipeline: Annotated[str | None, Query(description="Only this pipeline.")] = None,
    by: Annotated[str | None, Query(description="rep: each rep's funnel next to the "
                                    "team's.")] = None,
    as_of: Annotated[dt.date | None, Query(description="Open pipeline at the end of this day; "
                                           "default now.")] = None,
    start: Annotated[dt.date | None, Query(alias="from", description="Deals that entered a "
                                           "stage from this day.")] = None,
    end: Annotated[dt.date | None, Query(alias="to", description="… until this day, "
                                         "inclusive.")] = None,
    where: Annotated[list[str], Query(description="DIM=VALUE[,VALUE]; repeat.")] = [],  # noqa: B006
    range: Annotated[str | None, Query(description=RANGE_HELP + " With as_of: that day's "
                                       "month to date.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Reps per pipeline in this "
                                "page.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Reps per pipeline skipped.")] = 0,
) -> dict[str, Any]:
    """The stage funnel: the same JSON as `saleskpi funnel --format json`, within the
    caller's scope; each pipeline's reps are paged. Without from/to: month to date, stated
    in `range`."""
    params = FunnelParams(pipeline=pipeline, by=by, as_of=as_of, start=start, end=end,
                          where=where, range=range, limit=limit, offset=offset)
    return funnel(svc, user, params).to_json()
