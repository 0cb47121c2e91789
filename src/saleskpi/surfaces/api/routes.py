"""The REST API (v1): the session, the caller, and the scorecard.

Each area's routes are in their own module beside this one (catalogue, people,
imports, syncs, ...), all returning their view's JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from saleskpi.service.auth import authenticate
from saleskpi.surfaces.http.deps import (
    ServiceDep,
    ThrottleDep,
    UserDep,
    csrf_header,
    csrf_token,
    end_session,
    start_session,
)
from saleskpi.surfaces.http.errors import problem
from saleskpi.surfaces.http.params import Offset
from saleskpi.views.base import DEFAULT_LIMIT, MAX_LIMIT
from saleskpi.views.people import UserEntry, user_entry
from saleskpi.views.scorecard import ScorecardParams, ScorecardView
from saleskpi.views.scorecard import scorecard as scorecard_view

router = APIRouter(prefix="/api/v1")
RANGE_HELP = ("Without from/to: mtd (month to date, the default), wtd, qtd, ytd, last_month "
              "or all (the default with a period grain).")


class Login(BaseModel):
    username: str
    password: str


class SessionInfo(BaseModel):
    user: UserEntry
    csrf: str = Field(description="Send it as X-CSRF-Token with changes made in this session.")


class LoggedOut(BaseModel):
    ok: bool


# -- session ------------------------------------------------------------------------------
@router.post("/session", response_model=SessionInfo)
def login(body: Login, request: Request, svc: ServiceDep,
          login_throttle: ThrottleDep) -> dict[str, Any]:
    address = login_throttle.client_address(request)
    wait = login_throttle.retry_after(address, body.username)
    if wait is not None:
        raise problem(429, "too_many_attempts", "too many failed sign-ins; wait 5 minutes",
                      headers={"Retry-After": str(wait)})
    principal = authenticate(svc.settings, body.username, body.password)
    if principal is None:
        login_throttle.failed(address, body.username)
        raise problem(401, "bad_credentials", "wrong username or password")
    login_throttle.succeeded(address, body.username)
    start_session(request, svc, principal)
    return {"user": user_entry(principal).model_dump(), "csrf": csrf_token(request)}


@router.delete("/session", response_model=LoggedOut, dependencies=[Depends(csrf_header)])
def logout(request: Request, svc: ServiceDep) -> dict[str, bool]:
    """Sign out everywhere: this session's cookie (and any copy) and the user's others."""
    end_session(request, svc)
    return {"ok": True}


@router.get("/me", response_model=SessionInfo)
def me(user: UserDep, request: Request) -> dict[str, Any]:
    return {"user": user_entry(user).model_dump(), "csrf": csrf_token(request)}


# -- numbers --------------------------------------------------------------------------------
@router.get("/scorecard", response_model=ScorecardView, response_model_by_alias=True)
def scorecard(user: UserDep, svc: ServiceDep,
              kpi: Annotated[list[str], Query(description="KPI keys; repeat.")] = [],  # noqa: B006
              by: Annotated[list[str], Query(description="Slices; repeat.")] = [],  # noqa: B006
              period: str = "all",
              start: Annotated[dt.date | None, Query(alias="from")] = None,
              end: Annotated[dt.date | None, Query(alias="to")] = None,
              where: Annotated[list[str], Query(description="DIM=VALUE[,VALUE]")] = [],  # noqa: B006
              range: Annotated[str | None, Query(description=RANGE_HELP)] = None,
              limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
              offset: Offset = 0) -> dict[str, Any]:
    """The same JSON as `saleskpi kpi --format json`, within the caller's scope, paginated."""
    params = ScorecardParams(kpis=kpi, by=by, period=period, start=start, end=end, where=where,
                             range=range, limit=limit, offset=offset)
    return scorecard_view(svc, user, params).to_json()
