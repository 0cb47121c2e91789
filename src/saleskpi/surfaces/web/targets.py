"""The targets editor (managers): set, list and delete targets, with plan vs actual."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form
from pydantic import Field
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.errors import InvalidQuery, NotFound
from saleskpi.domain.query import MAX_ID, TARGET_PERIODS, Period
from saleskpi.domain.targets import TargetRecord, period_bounds
from saleskpi.domain.typed_numbers import parse_typed_number
from saleskpi.service.attainment import PlanLine
from saleskpi.service.planner import plan_vs_actual
from saleskpi.surfaces.web.deps import ManagerPageDep, Page
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.login import safe_next
from saleskpi.surfaces.web.names import source_name
from saleskpi.surfaces.web.rep import plan_table
from saleskpi.surfaces.web.tables import (
    PAGE_PARAM,
    Cell,
    Column,
    DataTable,
    Row,
    number_cell,
    page_value,
    requested_page,
    text_cell,
)
from saleskpi.surfaces.web.views import plan_at, rep_href
from saleskpi.views.plans import TargetsParams, target_records
from saleskpi.views.plans import targets as targets_view
from saleskpi.views.target_grid import month_of

router = APIRouter(route_class=WebRoute)
SESSION_FLASH = "web_flash"
MAX_FIELD = 200
MAX_BACK = 2000  # the list's address with its filters and page
# Targets per page: a large company has tens of thousands (15,747 at 458 reps).
TARGETS_PAGE_SIZE = 100


def parse_value(text: str) -> float | None:
    """50, 0.3, 30% or 1/3; None when it is not a number."""
    value = parse_typed_number(text)
    return None if value is None else float(value)


def targets_table(page: Page, targets: Sequence[TargetRecord]) -> DataTable:
    """The table of ``targets``: all of them for a download, one page on the page."""
    names = dict(page.reps)
    columns = [Column("id", _("Id"), numeric=True), Column("kpi", _("KPI")),
               Column("for", _("For")), Column("period_start", _("From")),
               Column("period_end", _("To")), Column("value", _("Plan"), numeric=True),
               Column("source", _("Source"))]
    rows = []
    # A rep's target stored under another of their ids (an old CRM's) is named and
    # linked as the person's.
    people = page.service.as_people(list(targets))
    for target, as_person in zip(targets, people, strict=True):
        if target.level == "rep":
            person = as_person.rep_id
            who = text_cell(names.get(person or "", person), href=rep_href(person),
                            rep=person)
        elif target.level == "team":
            who = Cell(target.team, _("team {team}", team=target.team), verbatim=True)
        else:
            who = Cell(None, _("company"))
        spec = page.service.catalog.kpis.get(target.kpi)
        unit = (page.currency if spec.unit == "money" else spec.unit) if spec else "number"
        rows.append(Row([number_cell(target.id, "count", page.fmt),
                         Cell(target.kpi, page.kpi_name(target.kpi)), who,
                         Cell(target.period_start.isoformat(), page.fmt.date(target.period_start)),
                         Cell(target.period_end.isoformat(), page.fmt.date(target.period_end)),
                         number_cell(target.value, unit, page.fmt),
                         Cell(target.source, source_name(target.source) or "—")],
                        rep=target.rep_id))
    return DataTable("targets", _("Targets"), columns, rows)


@dataclass(frozen=True)
class ListFilters:
    """What the targets' list is narrowed to (``?kpi=&rep=&team=&month=``)."""

    kpi: str = ""
    rep: str = ""
    team: str = ""
    month: str = ""  # YYYY-MM: targets whose period overlaps that month

    @property
    def active(self) -> bool:
        return bool(self.kpi or self.rep or self.team or self.month)


def list_filters(page: Page) -> ListFilters:
    query = page.request.query_params
    return ListFilters(*(query.get(name, "").strip()[:MAX_FIELD]
                         for name in ("kpi", "rep", "team", "month")))


def _listed(page: Page, chosen: ListFilters) -> list[TargetRecord]:
    """The targets the filters pick, newest first (the view, as the API lists them)."""
    first = last = None
    if chosen.month:
        first, last = period_bounds(month_of(chosen.month, _("Month")), "month")
    view = targets_view(page.service, page.user, TargetsParams(
        kpis=[chosen.kpi] if chosen.kpi else [], rep=chosen.rep or None,
        team=chosen.team or None, start=first, end=last, newest_first=True))
    return target_records(view)


def _plan_lines(page: Page, at: dt.date, chosen: ListFilters) -> list[PlanLine]:
    lines = plan_vs_actual(page.service, at, scope=page.user.scope)
    if chosen.kpi:
        lines = [line for line in lines if line.target.kpi == chosen.kpi]
    if chosen.rep:
        lines = [line for line in lines if line.target.rep_id == chosen.rep]
    if chosen.team:
        teams = page.service.rep_teams()
        lines = [line for line in lines if line.target.team == chosen.team or (
            line.target.rep_id is not None and teams.get(line.target.rep_id) == chosen.team)]
    return lines


def _page(page: Page, *, error: str = "", status: int = 200) -> Response:
    at = plan_at(page)
    chosen = list_filters(page)
    try:
        records = _listed(page, chosen)
        lines = _plan_lines(page, at, chosen)
    except (InvalidQuery, NotFound) as exc:
        # A filter that names nothing (a rep not in the data, a bad month): said on the
        # page, with the filters kept to correct.
        records, lines, error, status = [], [], exc.message, 400
    if page.request.query_params.get("export"):
        targets = targets_table(page, records)  # a download holds every target
    else:
        # Only the page's rows are built (and named, formatted, rendered).
        pager = page.pager(len(records), TARGETS_PAGE_SIZE)
        targets = targets_table(page, pager.slice(records))
        targets.pager = pager
    plan = plan_table(page, lines)
    plan.id, plan.title = "plan_vs_actual", _("Plan vs actual on {day}", day=page.fmt.date(at))
    flash = page.request.session.pop(SESSION_FLASH, "")
    return page.render("targets.html", status=status, tables=[targets, plan], targets=targets,
                       plan=plan, error=error, flash=flash if isinstance(flash, str) else "",
                       periods=TARGET_PERIODS, all_kpis=sorted(page.service.catalog.kpis),
                       chosen=chosen, title=_("Targets"))


@router.get("/targets")
def targets_page(page: ManagerPageDep) -> Response:
    return _page(page)


@router.post("/targets")
def set_target(page: ManagerPageDep, csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
               kpi: Annotated[str, Form(max_length=MAX_FIELD)] = "",
               value: Annotated[str, Form(max_length=MAX_FIELD)] = "",
               rep: Annotated[str, Form(max_length=MAX_FIELD)] = "",
               team: Annotated[str, Form(max_length=MAX_FIELD)] = "",
               period: Annotated[str, Form(max_length=MAX_FIELD)] = "month",
               start: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    page.check_csrf(csrf)
    if kpi not in page.service.catalog.kpis:
        return _page(page, status=400, error=_("unknown KPI {key!r}", key=kpi))
    number = parse_value(value)
    if number is None:
        return _page(page, status=400, error=_(
            "The plan must be a number (examples: 50, 0.05, 5%, 1/3)."))
    chosen: Period | None = next((p for p in TARGET_PERIODS if p == period), None)
    if chosen is None:
        return _page(page, status=400, error=_("unknown period {period!r}; use one of {known}",
                                                period=period, known=", ".join(TARGET_PERIODS)))
    try:
        day = dt.date.fromisoformat(start) if start.strip() else page.today()
    except ValueError:
        return _page(page, status=400, error=_("{field}: {value!r} is not a date; write it "
                                               "as YYYY-MM-DD", field=_("Start"), value=start))
    rep, team = rep.strip(), team.strip()
    if rep and team:
        return _page(page, status=400, error=_("Give a rep or a team, not both."))
    if rep and rep not in dict(page.reps):
        return _page(page, status=400, error=_("Unknown rep {rep!r}.", rep=rep))
    first, last = period_bounds(day, chosen)
    page.service.set_target(
        kpi=kpi, period_start=first, period_end=last, value=number, rep_id=rep or None,
        team=team or None, actor=page.user.username)
    page.request.session[SESSION_FLASH] = _("Target saved.")
    return RedirectResponse("/targets", status_code=303)


@router.post("/targets/delete")
def delete_targets(page: ManagerPageDep,
                   csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                   ids: Annotated[list[Annotated[int, Field(ge=0, le=MAX_ID)]],
                                  Form(alias="id", max_length=TARGETS_PAGE_SIZE)] = [],  # noqa: B006
                   back: Annotated[str, Form(alias="next", max_length=MAX_BACK)] = "",
                   on_page: Annotated[str, Form(alias="page", max_length=MAX_FIELD)] = ""
                   ) -> Response:
    """Delete the targets ticked on a page of the list (one button, asked to confirm)."""
    page.check_csrf(csrf)
    deleted = page.service.delete_targets(ids, actor=page.user.username) if ids else 0
    page.request.session[SESSION_FLASH] = (
        _("{count} targets deleted.", count=page.fmt.integer(deleted)) if deleted
        else _("Nothing deleted: tick the targets to delete first."))
    # Back to the page and filters the targets were deleted from, not to the first of
    # hundreds.
    if back:
        target = safe_next(back)
    else:  # a form without its address: the page number alone
        number = page_value(requested_page(on_page))
        target = f"/targets?{urlencode({PAGE_PARAM: number})}" if number else "/targets"
    return RedirectResponse(target if target.startswith("/targets") else "/targets",
                            status_code=303)
