"""Contests: the list (and the form that makes one), a contest's live standings, and the
same standings on a TV (big type, no menu, reloaded every few seconds)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.contests import Standings, parse_definition, parse_points
from saleskpi.domain.errors import HTTP_STATUS, SalesKpiError
from saleskpi.domain.query import MAX_ID
from saleskpi.surfaces.web.deps import ManagerPageDep, Page, PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import Cell, Column, DataTable, Row, number_cell
from saleskpi.surfaces.web.views import rep_href
from saleskpi.views.contests import (
    CloseContestParams,
    ContestChanges,
    ContestParams,
    ContestsParams,
    ContestSummary,
    EditContestParams,
    StandingsView,
    close_contest,
    contest_standings,
    contests,
    create_contest,
    delete_contest,
    edit_contest,
)

router = APIRouter(route_class=WebRoute)
SESSION_FLASH = "web_flash"
MAX_FIELD = 200
MAX_MEMBERS = 500
# The TV reloads itself this often unless ?refresh= says otherwise (10 s to an hour).
TV_REFRESH_SECONDS = 60
TV_REFRESH_RANGE = (10, 3600)
TV_ROWS = 12  # places a TV shows: readable across a room at 1920×1080
MEMBERS_NAMED = 3  # the list names this many participants of a contest, else counts them


def status_name(status: str) -> str:
    return {"upcoming": _("upcoming"), "running": _("running"), "ended": _("ended"),
            "closed": _("closed")}.get(status, status)


def what_name(page: Page, contest: ContestSummary) -> str:
    """What a contest ranks, in words: "Calls", "Revenue, % of target", "Points: …"."""
    if contest.kpi is None:
        amounts = [(format(r.points, "g"), page.kpi_name(r.kpi)) for r in contest.points]
        parts = ", ".join(_("{points} per {kpi}", points=points, kpi=kpi)
                          for points, kpi in amounts)
        return _("Points: {formula}", formula=parts)
    name = page.kpi_name(contest.kpi)
    return _("{kpi}, % of target", kpi=name) if contest.rank_by == "target" else name


def contests_table(page: Page, found: list[ContestSummary]) -> DataTable:
    columns = [Column("id", _("Id"), numeric=True), Column("name", _("Contest")),
               Column("ranks", _("Ranks")), Column("from", _("From")), Column("to", _("To")),
               Column("participants", _("Participants")), Column("status", _("Status")),
               Column("winners", _("Winners"))]
    rows = []
    for c in found:
        rows.append(Row([
            number_cell(c.id, "count", page.fmt),
            Cell(c.name, c.name, href=f"/contests/{c.id}", verbatim=True),
            Cell(c.kpi or c.rank_by, what_name(page, c)),
            Cell(c.start.isoformat(), page.fmt.date(c.start)),
            Cell(c.end.isoformat(), page.fmt.date(c.end)),
            Cell("; ".join(m.key for m in c.members), _members_text(c), verbatim=True),
            Cell(c.status, status_name(c.status)),
            Cell("; ".join(w.key for w in c.winners),
                 ", ".join(w.name for w in c.winners) or "—", verbatim=True)]))
    return DataTable("contests", _("Contests"), columns, rows)


def _members_text(contest: ContestSummary) -> str:
    """The participants by name, or how many there are when they would not fit a cell."""
    if len(contest.members) <= MEMBERS_NAMED:
        return ", ".join(m.name for m in contest.members)
    if contest.participants == "teams":
        return _("teams: {count}", count=len(contest.members))
    return _("reps: {count}", count=len(contest.members))


def standings_table(page: Page, view: StandingsView) -> DataTable:
    board = view.standings
    teams = board.participants == "teams"
    columns = [Column("rank", _("Place"), numeric=True),
               Column("name", _("Team") if teams else _("Rep")),
               Column("score", _("Score"), numeric=True, unit=board.unit)]
    if board.rank_by == "target":
        columns += [Column("value", _("Actual"), numeric=True),
                    Column("target", _("Target"), numeric=True)]
    columns += [Column(f"points_{r.kpi}", page.kpi_name(r.kpi), numeric=True)
                for r in board.points]
    if teams:
        columns.append(Column("active", _("Active reps"), numeric=True))
    value_unit = _value_unit(page, view)
    rows = []
    for entry in board.entries:
        name = entry.name + (" ★" if entry.winner else "")
        cells = [number_cell(entry.rank, "count", page.fmt),
                 Cell(entry.key, name, verbatim=True,
                      href=None if teams or not entry.details else rep_href(entry.key),
                      title=_("Winner") if entry.winner else ""),
                 Cell(entry.score, page.fmt.value(entry.score, board.unit),
                      note=note_text(entry.note), unit=board.unit)]
        if board.rank_by == "target":
            cells += [number_cell(entry.value, value_unit, page.fmt),
                      number_cell(entry.target, value_unit, page.fmt)]
        cells += [number_cell(entry.breakdown.get(r.kpi), "count", page.fmt)
                  for r in board.points]
        if teams:
            cells.append(Cell(entry.active, _("{active} of {members}", active=entry.active or 0,
                                              members=entry.members or 0)))
        rows.append(Row(cells))
    note = _("A team's figures are the per-person average of its reps active in the "
             "period.") if teams else ""
    return DataTable("standings", _("Standings"), columns, rows, note=note)


def records_table(page: Page, board: Standings) -> DataTable | None:
    if not board.records:
        return None
    columns = [Column("rank", _("Place"), numeric=True), Column("name", _("Participant")),
               Column("played", _("Played"), numeric=True),
               Column("wins", _("Won"), numeric=True), Column("draws", _("Drawn"), numeric=True),
               Column("losses", _("Lost"), numeric=True),
               Column("score", _("Score"), numeric=True)]
    rows = [Row([number_cell(r.rank, "count", page.fmt), Cell(r.key, r.name, verbatim=True),
                 number_cell(r.played, "count", page.fmt), number_cell(r.wins, "count", page.fmt),
                 number_cell(r.draws, "count", page.fmt),
                 number_cell(r.losses, "count", page.fmt),
                 number_cell(r.score, "count", page.fmt)])
            for r in board.records]
    return DataTable("head_to_head", _("Head to head"), columns, rows,
                     note=_("A win counts 1, a draw ½; a week counts once it is over."))


def matches_table(page: Page, board: Standings) -> DataTable | None:
    if not board.matches:
        return None
    names = {e.key: e.name for e in board.entries}
    results = {"home": _("won by {name}"), "away": _("won by {name}"), "draw": _("draw"),
               "bye": _("no match this week"), "live": _("this week"),
               "scheduled": _("to come")}
    columns = [Column("week", _("Week"), numeric=True), Column("days", _("Days")),
               Column("home", _("Participant")), Column("home_score", _("Score"), numeric=True),
               Column("away", _("Opponent")), Column("away_score", _("Score"), numeric=True),
               Column("result", _("Result"))]
    rows = []
    # The latest week first: the one being played is what the readers look for.
    for m in sorted(board.matches, key=lambda m: -m.week):
        winner = m.home if m.result == "home" else m.away if m.result == "away" else None
        result = results[m.result].format(name=names.get(winner or "", winner or ""))
        rows.append(Row([
            number_cell(m.week, "count", page.fmt),
            Cell(m.start.isoformat(), f"{page.fmt.date(m.start)} – {page.fmt.date(m.end)}"),
            Cell(m.home, names.get(m.home, m.home), verbatim=True),
            Cell(m.home_score, page.fmt.value(m.home_score, board.unit)),
            Cell(m.away, names.get(m.away, m.away) if m.away else "—", verbatim=True),
            Cell(m.away_score, page.fmt.value(m.away_score, board.unit) if m.away else "—"),
            Cell(m.result, result)]))
    return DataTable("matches", _("Weekly matches"), columns, rows)


def note_text(note: str | None) -> str:
    return {"no_target": _("no target for these days"),
            "no_active_reps": _("no rep active in the period"),
            "no_value": _("no value")}.get(note or "", "")


def _value_unit(page: Page, view: StandingsView) -> str:
    kpi = view.standings.kpi
    spec = page.service.catalog.kpis.get(kpi) if kpi else None
    if spec is None:
        return "count"
    return page.currency if spec.unit == "money" else spec.unit


# -- the list and the form ------------------------------------------------------------------
def _list_page(page: Page, *, error: str = "", status: int = 200,
               form: dict[str, Any] | None = None) -> Response:
    view = contests(page.service, page.user, ContestsParams())
    table = contests_table(page, view.contests)
    flash = page.request.session.pop(SESSION_FLASH, "")
    today = page.today()
    defaults = {"start": today.replace(day=1).isoformat(), "end": _month_end(today).isoformat(),
                "participants": "reps", "rank_by": "value", "tie_rule": "shared", "winners": 1}
    return page.render("contests.html", status=status, tables=[table], table=table,
                       error=error, flash=flash if isinstance(flash, str) else "",
                       form=defaults | (form or {}),
                       all_kpis=sorted(page.service.catalog.kpis),
                       all_reps=page.rep_choices if page.user.can_manage else [],
                       all_teams=page.teams if page.user.can_manage else [],
                       title=_("Contests"))


def _month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


@router.get("/contests")
def contests_page(page: PageDep) -> Response:
    return _list_page(page)


Text = Annotated[str, Form(max_length=MAX_FIELD)]


@router.post("/contests")
def create_contest_form(
    page: ManagerPageDep, csrf: Text = "", name: Text = "",
    description: Annotated[str, Form(max_length=2000)] = "", measure: Text = "kpi",
    kpi: Text = "", points: Annotated[str, Form(max_length=2000)] = "", start: Text = "",
    end: Text = "", participants: Text = "reps",
    reps: Annotated[list[str] | None, Form(max_length=MAX_MEMBERS)] = None,
    teams: Annotated[list[str] | None, Form(max_length=MAX_MEMBERS)] = None,
    rank_by: Text = "value", tie_rule: Text = "shared", head_to_head: Text = "",
    winners: Text = "1",
) -> Response:
    page.check_csrf(csrf)
    form: dict[str, Any] = {
        "name": name, "description": description, "measure": measure, "kpi": kpi,
        "points": points, "start": start, "end": end, "participants": participants,
        "reps": reps or [], "teams": teams or [], "rank_by": rank_by, "tie_rule": tie_rule,
        "head_to_head": bool(head_to_head), "winners": winners}
    try:
        data: dict[str, Any] = {
            "name": name, "description": description, "start": start, "end": end,
            "participants": participants, "rank_by": rank_by, "tie_rule": tie_rule,
            "head_to_head": bool(head_to_head), "winners": winners,
            "members": (teams if participants == "teams" else reps) or []}
        if measure == "points":
            data["points"] = [r.model_dump() for r in parse_points([points])]
        else:
            data["kpi"] = kpi or None
        view = create_contest(page.service, page.user, parse_definition(data))
    except (SalesKpiError, ValidationError) as exc:
        message = exc.message if isinstance(exc, SalesKpiError) else str(exc)
        return _list_page(page, error=message, status=400, form=form)
    page.request.session[SESSION_FLASH] = _("Contest created.")
    return RedirectResponse(f"/contests/{view.contest.id}", status_code=303)


# -- one contest ---------------------------------------------------------------------------------
def _standings(page: Page, contest_id: int) -> StandingsView:
    try:
        return contest_standings(page.service, page.user, ContestParams(contest=contest_id))
    except SalesKpiError as exc:  # no such contest (or not the reader's): its error page
        raise PageError(HTTP_STATUS[exc.kind], exc.message) from None


@router.get("/contests/{contest_id}")
def contest_page(page: PageDep, contest_id: int) -> Response:
    view = _standings(page, _checked_id(contest_id))
    tables = [t for t in (standings_table(page, view), records_table(page, view.standings),
                          matches_table(page, view.standings)) if t is not None]
    flash = page.request.session.pop(SESSION_FLASH, "")
    return page.render("contest.html", tables=tables, blocks=tables, view=view,
                       contest=view.contest, board=view.standings,
                       what=what_name(page, view.contest),
                       status_text=status_name(view.contest.status),
                       flash=flash if isinstance(flash, str) else "",
                       title=view.contest.name)


@router.post("/contests/{contest_id}/close")
def close_contest_form(page: ManagerPageDep, contest_id: int,
                       csrf: Text = "", early: Text = "") -> Response:
    page.check_csrf(csrf)
    try:
        close_contest(page.service, page.user,
                      CloseContestParams(contest=_checked_id(contest_id), early=bool(early)))
    except SalesKpiError as exc:  # closed already, still running, no such contest
        raise PageError(HTTP_STATUS[exc.kind], exc.message) from None
    page.request.session[SESSION_FLASH] = _("Contest closed: its results are kept.")
    return RedirectResponse(f"/contests/{contest_id}", status_code=303)


@router.post("/contests/{contest_id}/edit")
def edit_contest_form(page: ManagerPageDep, contest_id: int, csrf: Text = "", name: Text = "",
                      description: Annotated[str, Form(max_length=2000)] = "",
                      start: Text = "", end: Text = "", winners: Text = "") -> Response:
    page.check_csrf(csrf)
    try:
        changes = ContestChanges.model_validate(
            {"name": name, "description": description, "start": start or None,
             "end": end or None, "winners": winners or None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise PageError(400, _("the contest is not valid: {problems}",
                               problems=problems)) from None
    try:
        edit_contest(page.service, page.user, EditContestParams(
            contest=_checked_id(contest_id), changes=changes))
    except SalesKpiError as exc:  # closed, not valid, no such contest
        raise PageError(HTTP_STATUS[exc.kind], exc.message) from None
    page.request.session[SESSION_FLASH] = _("Contest changed.")
    return RedirectResponse(f"/contests/{contest_id}", status_code=303)


@router.post("/contests/{contest_id}/delete")
def delete_contest_form(page: ManagerPageDep, contest_id: int, csrf: Text = "") -> Response:
    page.check_csrf(csrf)
    try:
        delete_contest(page.service, page.user, ContestParams(contest=_checked_id(contest_id)))
    except SalesKpiError as exc:  # closed (its results stay), no such contest
        raise PageError(HTTP_STATUS[exc.kind], exc.message) from None
    return RedirectResponse("/contests", status_code=303)


@router.get("/contests/{contest_id}/tv")
def contest_tv(page: PageDep, contest_id: int,
               refresh: Annotated[int, Query(ge=TV_REFRESH_RANGE[0], le=TV_REFRESH_RANGE[1])]
               = TV_REFRESH_SECONDS) -> Response:
    """The standings for a screen on the wall: the top places in big type, reloaded every
    ``refresh`` seconds (a plain meta refresh: no script to break on a TV's browser)."""
    view = _standings(page, _checked_id(contest_id))
    board = view.standings
    shown = board.entries[:TV_ROWS]
    own = next((e for e in board.entries[TV_ROWS:] if e.details and not page.user.can_manage),
               None)
    if board.final:
        footer = _("Final standings.")
    else:
        updated = board.computed_at.replace(tzinfo=dt.UTC).astimezone(
            ZoneInfo(page.service.settings.timezone))
        footer = _("Updated at {time}; the board reloads every {seconds} s.",
                   time=updated.strftime("%H:%M"), seconds=refresh)
    return page.render("contest_tv.html", view=view, contest=view.contest, board=board,
                       entries=shown, more=len(board.entries) - len(shown), own=own,
                       footer=footer,
                       what=what_name(page, view.contest), refresh=refresh,
                       status_text=status_name(view.contest.status), title=view.contest.name)


def _checked_id(contest_id: int) -> int:
    """An id the store can hold; any other number is no contest."""
    if not 1 <= contest_id <= MAX_ID:
        raise PageError(404, _("There is no such contest."))
    return contest_id
