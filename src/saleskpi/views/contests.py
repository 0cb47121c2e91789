"""Contests: the list, a contest's standings, making one, closing one.

The JSON of each (``to_json``) is what the CLI's ``--format json``, the REST API
and MCP return. Who sees which contest, and which of its figures, is decided by
``saleskpi.service.contests`` (a board shows everyone in the contest; the figures
behind a score only within the reader's scope).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from saleskpi.domain.contests import (
    Contest,
    ContestDefinition,
    ContestStatus,
    PointsRule,
    Standings,
)
from saleskpi.domain.query import MAX_ID
from saleskpi.service import contests as contest_service
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import today
from saleskpi.service.principal import Principal
from saleskpi.views.base import PageInfo, Paging, ViewModel, paged, require_manager

StatusFilter = Literal["all", "open", "closed"]


# -- params ----------------------------------------------------------------------------------
class ContestsParams(Paging):
    status: StatusFilter = Field(default="all", description="all, open (not closed yet) or "
                                 "closed (results kept).")


class ContestParams(BaseModel):
    contest: int = Field(ge=1, le=MAX_ID, description="The contest's id (see the list).")


class CloseContestParams(ContestParams):
    early: bool = Field(default=False, description="Close before the contest's last day is "
                        "over (its standings so far become final).")


# -- answers ---------------------------------------------------------------------------------
class ContestChanges(BaseModel):
    """What may change in a contest still open; the fields not given stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    start: dt.date | None = Field(default=None, description="First day, inclusive.")
    end: dt.date | None = Field(default=None, description="Last day, inclusive (e.g. later, "
                                "to run it longer).")
    winners: int | None = Field(default=None, ge=1, description="Places that win.")


class EditContestParams(ContestParams):
    changes: ContestChanges


class Participant(BaseModel):
    key: str = Field(description="The rep id or the team name.")
    name: str


class ContestSummary(BaseModel):
    id: int
    name: str
    description: str
    kpi: str | None = Field(description="The KPI ranked; null with a points formula.")
    points: list[PointsRule]
    rank_by: str = Field(description="value, or target (the share of each one's own target).")
    participants: str = Field(description="reps or teams (teams: per-person averages).")
    members: list[Participant]
    start: dt.date
    end: dt.date
    tie_rule: str
    head_to_head: bool
    places_that_win: int
    status: ContestStatus
    winners: list[Participant] = Field(description="Once closed: who won.")
    created_at: dt.datetime
    created_by: str
    closed_at: dt.datetime | None
    closed_by: str | None


class ContestsView(ViewModel):
    today: dt.date = Field(description="Today in the company's time zone.")
    contests: list[ContestSummary] = Field(description="The latest first.")
    page: PageInfo


class ContestView(ViewModel):
    contest: ContestSummary


class StandingsView(ViewModel):
    contest: ContestSummary
    standings: Standings


def summary(service: SalesKpiService, contest: Contest, day: dt.date) -> ContestSummary:
    definition = contest.definition
    names = {r.rep: r.name for r in service.visible_reps()} \
        if definition.participants == "reps" else {}
    if contest.final is not None:
        names |= {e.key: e.name for e in contest.final.entries}
    return ContestSummary(
        id=contest.id, name=definition.name, description=definition.description,
        kpi=definition.kpi, points=definition.points, rank_by=definition.rank_by,
        participants=definition.participants,
        members=[Participant(key=m, name=names.get(m, m)) for m in definition.members],
        start=definition.start, end=definition.end, tie_rule=definition.tie_rule,
        head_to_head=definition.head_to_head, places_that_win=definition.winners,
        status=contest.status(day),
        winners=[Participant(key=k, name=names.get(k, k)) for k in contest.winners],
        created_at=contest.created_at, created_by=contest.created_by,
        closed_at=contest.closed_at, closed_by=contest.closed_by)


# -- views -----------------------------------------------------------------------------------
def contests(service: SalesKpiService, caller: Principal, params: ContestsParams
             ) -> ContestsView:
    """The contests ``caller`` may see, the latest first."""
    day = today(service)
    found = contest_service.visible(service, caller)
    if params.status != "all":
        found = [c for c in found if (c.closed_at is not None) == (params.status == "closed")]
    shown, page = paged(found, params)
    view: ContestsView = ContestsView(
        today=day, contests=[summary(service, c, day) for c in shown],
        page=page).with_source(shown)
    return view


def contest_standings(service: SalesKpiService, caller: Principal, params: ContestParams
                      ) -> StandingsView:
    """A contest's standings: live while it is open, as kept once closed."""
    day = today(service)
    contest = contest_service.find(service, params.contest, caller)
    board = contest_service.board(service, contest, caller, day=day)
    view: StandingsView = StandingsView(contest=summary(service, contest, day),
                                        standings=board).with_source(contest)
    return view


def create_contest(service: SalesKpiService, caller: Principal, params: ContestDefinition
                   ) -> ContestView:
    """Make a contest (admin and head of sales)."""
    require_manager(caller)
    contest = contest_service.create(service, params, actor=caller.username)
    view: ContestView = ContestView(contest=summary(service, contest, today(service))
                                    ).with_source(contest)
    return view


def close_contest(service: SalesKpiService, caller: Principal, params: CloseContestParams
                  ) -> StandingsView:
    """Close a contest: its final standings and winners are kept (admin and head of sales)."""
    require_manager(caller)
    day = today(service)
    contest = contest_service.close(service, params.contest, caller, early=params.early,
                                    day=day)
    board = contest_service.board(service, contest, caller, day=day)
    view: StandingsView = StandingsView(contest=summary(service, contest, day),
                                        standings=board).with_source(contest)
    return view


def edit_contest(service: SalesKpiService, caller: Principal, params: EditContestParams
                 ) -> ContestView:
    """Change a contest still open: its name, description, days or winners (admin and head
    of sales)."""
    require_manager(caller)
    contest = contest_service.edit(service, params.contest, caller,
                                   params.changes.model_dump(exclude_none=True))
    view: ContestView = ContestView(contest=summary(service, contest, today(service))
                                    ).with_source(contest)
    return view


def delete_contest(service: SalesKpiService, caller: Principal, params: ContestParams
                   ) -> ContestView:
    """Delete a contest still open, e.g. one made by mistake (admin and head of sales); the
    view is the contest as it was."""
    require_manager(caller)
    contest = contest_service.delete(service, params.contest, caller)
    view: ContestView = ContestView(contest=summary(service, contest, today(service))
                                    ).with_source(contest)
    return view
