"""REST v1: Plan vs actual, reverse plan and targets (the JSON of the CLI's ``--format json``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from saleskpi.domain.targets import MANUAL_SOURCE
from saleskpi.surfaces.http.deps import ManagerDep, ServiceDep, UserDep, csrf_header, manager
from saleskpi.surfaces.http.params import Id, IdPath, Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT
from saleskpi.views.plans import (
    CopiedView,
    CopyTargetsParams,
    DeletedView,
    DeleteTargetsParams,
    PlanParams,
    PlanView,
    ReversePlanParams,
    ReversePlanView,
    SetTargetParams,
    TargetChangeView,
    TargetsParams,
    TargetsView,
    copy_targets,
    delete_targets,
    plan_vs_actual,
    reverse_plan,
    set_target,
    targets,
)
from saleskpi.views.target_grid import (
    MAX_MONTHS,
    GridSavedView,
    SaveGridParams,
    TargetGridParams,
    TargetGridView,
    save_grid,
    target_grid,
)

router = APIRouter(prefix="/api/v1")
# The caller first, then CSRF: a route's ``dependencies`` run before its parameters', and
# ``csrf_header`` learns only from the caller's dependency that a bearer token (which
# needs no CSRF token) signed the request. FastAPI runs ``manager`` once per request.
CHANGES = [Depends(manager), Depends(csrf_header)]

@router.get("/plan", response_model=PlanView, response_model_by_alias=True)
def plan(user: UserDep, svc: ServiceDep,
         at: Annotated[dt.date | None, Query(description="As of this day (default today).")]
         = None,
         by: Annotated[str | None, Query(description="rep or team: only those targets.")]
         = None,
         period: Annotated[str | None, Query(description="Only targets for a whole day, "
                                             "week, month, quarter or year.")] = None,
         rep: Annotated[str | None, Query(description="Only this rep's targets (id or "
                                          "name).")] = None,
         team: Annotated[str | None, Query(description="Only this team's targets and its "
                                           "reps'.")] = None,
         limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> dict[str, Any]:
    """Plan vs actual: the same JSON as `saleskpi plan --format json`, within the caller's
    scope (a rep: their own targets; a team lead: their team's), paginated."""
    params = PlanParams(at=at, by=by, period=period, rep=rep, team=team, limit=limit,
                        offset=offset)
    return plan_vs_actual(svc, user, params).to_json()


@router.get("/reverse-plan", response_model=ReversePlanView, response_model_by_alias=True)
def reverse(user: UserDep, svc: ServiceDep,
            goal: Annotated[str, Query(description="deals_won=N or revenue=AMOUNT.")],
            period: str = "month",
            at: Annotated[dt.date | None, Query(description="A day in the period to plan.")]
            = None,
            rep: Annotated[str | None, Query(description="Rep id or name.")] = None,
            team: Annotated[str | None, Query(description="Team name.")] = None,
            rate: Annotated[list[str], Query(description="STEP=RATE given by hand; "
                                             "repeat.")] = [],  # noqa: B006
            history_months: Annotated[int, Query(ge=1)] = 3,
            working_days: Annotated[int | None, Query(ge=1)] = None,
            deal_size: Annotated[str | None, Query(description="Average deal for a revenue "
                                                   "goal.")] = None) -> dict[str, Any]:
    """The same JSON as `saleskpi plan reverse --format json`. A rep plans for themself, a
    team lead for their team unless they name one of its reps."""
    params = ReversePlanParams(goal=goal, period=period, at=at, rep=rep, team=team, rate=rate,
                               history_months=history_months, working_days=working_days,
                               deal_size=deal_size)
    return reverse_plan(svc, user, params).to_json()


@router.get("/targets", response_model=TargetsView, response_model_by_alias=True)
def list_targets(user: UserDep, svc: ServiceDep,
                 at: Annotated[dt.date | None, Query(description="Only targets whose period "
                                                     "contains this day.")] = None,
                 kpi: Annotated[list[str], Query(description="Only these KPIs; "
                                                 "repeat.")] = [],  # noqa: B006
                 rep: Annotated[str | None, Query(description="Rep id or name.")] = None,
                 team: Annotated[str | None, Query(description="The team's targets and its "
                                                   "reps'.")] = None,
                 start: Annotated[dt.date | None, Query(
                     alias="from", description="Only targets whose period ends on or after "
                     "this day.")] = None,
                 end: Annotated[dt.date | None, Query(
                     alias="to", description="Only targets whose period starts on or before "
                     "this day.")] = None,
                 newest_first: Annotated[bool, Query(description="The latest periods "
                                                     "first.")] = False,
                 limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> dict[str, Any]:
    """The same JSON as `saleskpi target list --format json`, within the caller's scope."""
    params = TargetsParams(at=at, kpis=kpi, rep=rep, team=team, start=start, end=end,
                           newest_first=newest_first, limit=limit, offset=offset)
    return targets(svc, user, params).to_json()


@router.get("/targets/grid", response_model=TargetGridView, response_model_by_alias=True)
def get_target_grid(user: UserDep, svc: ServiceDep,
                    kpi: Annotated[str, Query(description="The KPI of every cell.")],
                    start: Annotated[str | None, Query(description="The first month, YYYY-MM "
                                                       "(default: last month).")] = None,
                    months: Annotated[int, Query(ge=1, le=MAX_MONTHS)] = 6,
                    team: Annotated[str | None, Query(description="Only this team's "
                                                      "reps.")] = None) -> dict[str, Any]:
    """One KPI's monthly targets as reps × months (null: none set), within the caller's
    scope: a rep sees their own row, a team lead their team's reps."""
    params = TargetGridParams(kpi=kpi, start=start, months=months, team=team)
    return target_grid(svc, user, params).to_json()


@router.put("/targets/grid", response_model=GridSavedView, response_model_by_alias=True,
            dependencies=CHANGES)
def put_target_grid(body: SaveGridParams, user: ManagerDep, svc: ServiceDep
                    ) -> dict[str, Any]:
    """Save cells of a KPI's grid: a value sets (replaces) the rep's target of that month,
    null or "" deletes it; all cells or, on any problem, none. Managers only."""
    return save_grid(svc, user, body).to_json()


@router.post("/targets/copy", response_model=CopiedView, response_model_by_alias=True,
             dependencies=CHANGES)
def post_copy_targets(body: CopyTargetsParams, user: ManagerDep, svc: ServiceDep
                      ) -> dict[str, Any]:
    """Copy one period's targets to another (`saleskpi target copy`): e.g. last month's
    rep targets of one KPI as this month's, `{"from": "2026-11", "to": "2026-12", "kpi":
    "deals_won", "level": "rep"}`; ones already set are kept unless `replace`."""
    return copy_targets(svc, user, body).to_json()


@router.put("/targets", response_model=TargetChangeView, response_model_by_alias=True,
            dependencies=CHANGES)
def put_target(body: SetTargetParams, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """Insert or change a manual target (`saleskpi target set --format json`): `change` is
    inserted, updated or unchanged."""
    return set_target(svc, user, body).to_json()


@router.delete("/targets/{target_id}", response_model=DeletedView,
               dependencies=CHANGES)
def delete_target(target_id: IdPath, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """Delete a target by its ID; 404 (`no_such_target`) when there is none."""
    return delete_targets(svc, user, DeleteTargetsParams(ids=[target_id])).to_json()


@router.delete("/targets", response_model=DeletedView, dependencies=CHANGES)
def delete_target_by_key(user: ManagerDep, svc: ServiceDep,
                         kpi: Annotated[str | None, Query(description="KPI key.")] = None,
                         rep: str | None = None, team: str | None = None,
                         period: str = "month",
                         start: Annotated[dt.date | None, Query(
                             description="A day in the period (default today).")] = None,
                         source: str = MANUAL_SOURCE,
                         ids: Annotated[list[Id], Query(alias="id", description="Target "
                                                         "IDs; repeat.")] = []  # noqa: B006
                         ) -> dict[str, Any]:
    """Delete the target set with this KPI, rep or team and period (as `saleskpi target
    delete`), or the targets with these IDs."""
    params = DeleteTargetsParams(ids=ids, kpi=kpi, rep=rep, team=team, period=period,
                                 start=start, source=source)
    return delete_targets(svc, user, params).to_json()
