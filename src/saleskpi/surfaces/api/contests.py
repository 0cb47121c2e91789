"""REST v1: contests (the same JSON as ``saleskpi contest ... --format json``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from saleskpi.domain.contests import ContestDefinition
from saleskpi.surfaces.http.deps import ManagerDep, ServiceDep, UserDep, csrf_header, manager
from saleskpi.surfaces.http.params import IdPath, Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT
from saleskpi.views.contests import (
    CloseContestParams,
    ContestChanges,
    ContestParams,
    ContestsParams,
    ContestsView,
    ContestView,
    EditContestParams,
    StandingsView,
    close_contest,
    contest_standings,
    contests,
    create_contest,
    delete_contest,
    edit_contest,
)

router = APIRouter(prefix="/api/v1")
# The caller first, then CSRF (see ``saleskpi.surfaces.api.plans``).
CHANGES = [Depends(manager), Depends(csrf_header)]


@router.get("/contests", response_model=ContestsView, response_model_by_alias=True)
def list_contests(user: UserDep, svc: ServiceDep,
                  status: Annotated[Literal["all", "open", "closed"], Query(
                      description="all, open or closed (closed: the history, with winners)."
                  )] = "all",
                  limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> dict[str, Any]:
    """The contests the caller may see (`saleskpi contest list --format json`): a manager
    every one, a team lead those their team or its reps are in, a rep their own."""
    return contests(svc, user, ContestsParams(status=status, limit=limit,
                                              offset=offset)).to_json()


@router.post("/contests", response_model=ContestView, response_model_by_alias=True,
             status_code=201, dependencies=CHANGES)
def post_contest(body: ContestDefinition, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    """Create a contest (`saleskpi contest create --format json`): one KPI or a points
    formula, its days, the reps or teams taking part, how it ranks."""
    return create_contest(svc, user, body).to_json()


@router.get("/contests/{contest_id}", response_model=StandingsView,
            response_model_by_alias=True)
def get_standings(contest_id: IdPath, user: UserDep, svc: ServiceDep) -> dict[str, Any]:
    """A contest and its standings (`saleskpi contest standings ID --format json`): live
    while open, as kept once closed. Everyone in the contest sees every place and score;
    the figures behind a score only within their own scope. 404 (`no_such_contest`) for a
    contest the caller is not in."""
    return contest_standings(svc, user, ContestParams(contest=contest_id)).to_json()


@router.post("/contests/{contest_id}/close", response_model=StandingsView,
             response_model_by_alias=True, dependencies=CHANGES)
def post_close(contest_id: IdPath, user: ManagerDep, svc: ServiceDep,
               early: Annotated[bool, Query(description="Close before the last day is "
                                            "over.")] = False) -> dict[str, Any]:
    """Close a contest and keep its final standings and winners (`saleskpi contest close`):
    409 `contest_running` before its last day is over (unless `early`), 409
    `contest_closed` when it was closed already."""
    return close_contest(svc, user, CloseContestParams(contest=contest_id,
                                                       early=early)).to_json()


@router.patch("/contests/{contest_id}", response_model=ContestView,
              response_model_by_alias=True, dependencies=CHANGES)
def patch_contest(contest_id: IdPath, body: ContestChanges, user: ManagerDep,
                  svc: ServiceDep) -> dict[str, Any]:
    """Change a contest still open (`saleskpi contest edit`): its name, description, start,
    end or winners; fields not given stay. 409 `contest_closed` once it is closed."""
    return edit_contest(svc, user, EditContestParams(contest=contest_id,
                                                     changes=body)).to_json()


@router.delete("/contests/{contest_id}", response_model=ContestView,
               response_model_by_alias=True, dependencies=CHANGES)
def delete_open_contest(contest_id: IdPath, user: ManagerDep, svc: ServiceDep
                        ) -> dict[str, Any]:
    """Delete a contest still open (`saleskpi contest delete`); the answer is the contest as
    it was. 409 `contest_closed` for a closed one: its results are kept."""
    return delete_contest(svc, user, ContestParams(contest=contest_id)).to_json()
