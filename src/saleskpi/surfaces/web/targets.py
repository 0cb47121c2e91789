"""The targets editor (managers): set, list and delete targets, with plan vs actual."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from fractions import Fraction
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.query import MAX_ID, TARGET_PERIODS, Period
from saleskpi.domain.targets import TargetRecord, period_bounds
from saleskpi.service.planner import plan_vs_actual
from saleskpi.surfaces.web.deps import ManagerPageDep, Page
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
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

router = APIRouter(route_class=WebRoute)
SESSION_FLASH = "web_flash"
MAX_FIELD = 200
# Targets per page: a large company has tens of thousands (15,747 at 458 reps).
TARGETS_PAGE_SIZE = 100


def parse_value(text: str) -> float | None:
    """50, 0.3, 30% or 1/3; None when it is not a number."""
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
    percent = cleaned.endswith("%")
    try:
        value = Fraction(cleaned.removesuffix("%"))
    except (ValueError, ZeroDivisionError):
        return None
    return float(value / 100 if percent else value)


def targets_table(page: Page, targets: Sequence[TargetRecord]) -> DataTable:
    """The table of ``targets``: all of them for a download, one page on the page."""
    names = dict(page.reps)
    columns = [Column("id", _("Id"), numeric=True), Column("kpi", _("KPI")),
               Column("for", _("For")), Column("period_start", _("From")),
               Column("period_end", _("To")), Column("value", _("Plan"), numeric=True),
               Column("source", _("Source"))]
    rows = []
    for target in targets:
        if target.level == "rep":
            who = text_cell(names.get(target.rep_id or "", target.rep_id),
                            href=rep_href(target.rep_id), rep=target.rep_id)
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


def _page(page: Page, *, error: str = "", status: int = 200) -> Response:
    at = plan_at(page)
    try:
        lines = plan_vs_actual(page.service, at, scope=page.user.scope)
    except InvalidQuery as exc:
        raise PageError(400, str(exc)) from None
    records = page.service.list_targets()
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
                       title=_("Targets"))


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
def delete_target(page: ManagerPageDep, csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                  target_id: Annotated[int, Form(alias="id", ge=0, le=MAX_ID)] = 0,
                  on_page: Annotated[str, Form(alias="page", max_length=MAX_FIELD)] = ""
                  ) -> Response:
    page.check_csrf(csrf)
    page.service.delete_targets([target_id], actor=page.user.username)
    page.request.session[SESSION_FLASH] = _("Target deleted.")
    # Back to the page the target was deleted from, not to the first of hundreds.
    number = page_value(requested_page(on_page))
    query = f"?{urlencode({PAGE_PARAM: number})}" if number else ""
    return RedirectResponse("/targets" + query, status_code=303)
