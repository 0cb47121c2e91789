"""The targets editor (managers): one KPI's monthly targets as a grid of reps × months.

Every cell is a field of one plain form: typing and saving works without scripts,
and a save replaces what the grid shows (an emptied cell deletes its target). With
scripts (static/app.js) a block pasted from a spreadsheet fills the cells from the
one pasted into. A whole table with its header (rep, then the months) can also be
pasted into a text box, and last month's targets copied to this month for every rep.
All of it goes through the views the REST API uses (``saleskpi.views.target_grid``,
``copy_targets``, ``import_grid``), so each change is logged with who made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.errors import InvalidQuery, NotFound
from saleskpi.domain.periods import shift_months
from saleskpi.domain.query import plain_number
from saleskpi.surfaces.web.deps import ManagerPageDep, Page
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.targets import SESSION_FLASH
from saleskpi.views.plans import CopyTargetsParams, GridParams, copy_targets, import_grid
from saleskpi.views.target_grid import (
    DEFAULT_MONTHS,
    MAX_MONTHS,
    GridCellInput,
    SaveGridParams,
    TargetGridParams,
    TargetGridView,
    month_key,
    month_of,
    save_grid,
    target_grid,
)

router = APIRouter(route_class=WebRoute)
GRID_PAGE_SIZE = 50  # reps a page: 50 × 12 months stay well under a form's field limit
FORM_FIELDS = GRID_PAGE_SIZE * (MAX_MONTHS + 1) + MAX_MONTHS + 20
MAX_FIELD = 200
MAX_PASTE = 200_000
DEFAULT_KPI = "deals_won"


@dataclass(frozen=True)
class GridChoice:
    """Which grid: the KPI, the first month, how many months, one team's reps."""

    kpi: str
    start: str = ""
    months: int = DEFAULT_MONTHS
    team: str = ""
    page: str = ""

    def params(self) -> dict[str, str]:
        """The grid's address parameters (for links and the forms' hidden fields)."""
        values = {"kpi": self.kpi, "start": self.start, "team": self.team,
                  "months": str(self.months) if self.months != DEFAULT_MONTHS else "",
                  "page": self.page}
        return {k: v for k, v in values.items() if v}

    def href(self) -> str:
        return "/targets/grid?" + urlencode(self.params())


def grid_choice(page: Page, values: Mapping[str, Any]) -> GridChoice:
    kpis = page.service.catalog.kpis
    kpi = str(values.get("kpi") or "").strip()[:MAX_FIELD]
    if not kpi:
        kpi = DEFAULT_KPI if DEFAULT_KPI in kpis else min(kpis)
    try:
        months = min(MAX_MONTHS, max(1, int(str(values.get("months") or DEFAULT_MONTHS))))
    except ValueError:
        months = DEFAULT_MONTHS
    return GridChoice(kpi, str(values.get("start") or "").strip()[:MAX_FIELD], months,
                      str(values.get("team") or "").strip()[:MAX_FIELD],
                      str(values.get("page") or "").strip()[:MAX_FIELD])


def cell_text(value: float | None, unit: str) -> str:
    """A stored target as a field shows it, read back as the same number on save: a
    plain number, a rate as a percentage ("30%")."""
    if value is None:
        return ""
    if unit == "ratio":
        return f"{plain_number(round(value * 100, 9))}%"
    return str(plain_number(value))


@dataclass
class Typed:
    """What a form sent back when it could not be saved: shown again as typed."""

    cells: dict[tuple[str, str], str] = field(default_factory=dict)
    paste: str = ""


def _render(page: Page, choice: GridChoice, *, typed: Typed | None = None, error: str = "",
            status: int = 200) -> Response:
    try:
        view = target_grid(page.service, page.user, TargetGridParams(
            kpi=choice.kpi, start=choice.start or None, months=choice.months,
            team=choice.team or None))
    except (InvalidQuery, NotFound) as exc:
        raise PageError(400, exc.message) from None
    pager = page.pager(len(view.rows), GRID_PAGE_SIZE)
    rows = pager.slice(view.rows)
    typed = typed or Typed()
    grid = [(row, [typed.cells.get((row.rep_id, month), cell_text(value, view.unit))
                   for month, value in zip(view.months, row.values, strict=True)])
            for row in rows]
    flash = page.request.session.pop(SESSION_FLASH, "")
    this_month = month_of(view.this_month, "this_month")
    copy_to = [(m, page.fmt.period(f"{m}-01", "month")) for m in view.months]
    if view.this_month not in view.months:
        copy_to.append((view.this_month, page.fmt.period(f"{view.this_month}-01", "month")))
    return page.render(
        "target_grid.html", status=status, view=view, grid=grid, pager=pager, choice=choice,
        hidden=choice.params(), error=error, flash=flash if isinstance(flash, str) else "",
        month_names=[page.fmt.period(f"{m}-01", "month") for m in view.months],
        all_kpis=sorted(page.service.catalog.kpis), paste=typed.paste, copy_to=copy_to,
        this_month=view.this_month,
        last_month=month_key(shift_months(this_month, -1)), max_months=MAX_MONTHS,
        example=_example(view), title=_("Targets grid"))


def _example(view: TargetGridView) -> str:
    """The paste box's placeholder: the grid's own header and first reps."""
    lines = ["\t".join([_("rep"), *view.months[:3]])]
    lines += ["\t".join([row.rep_name, *(["10"] * min(3, len(view.months)))])
              for row in view.rows[:2]]
    return "\n".join(lines)


@router.get("/targets/grid")
def grid_page(page: ManagerPageDep) -> Response:
    return _render(page, grid_choice(page, page.request.query_params))


async def grid_form(request: Request) -> FormData:
    """The grid's form: a field per cell, more than Starlette's default 1,000 allows."""
    return await request.form(max_fields=FORM_FIELDS, max_files=0)


GridForm = Annotated[FormData, Depends(grid_form)]


def _cells(form: FormData) -> tuple[list[GridCellInput], dict[tuple[str, str], str]]:
    """The cells sent: ``c.I.J`` is rep ``r.I``'s value for month ``m.J``."""
    reps = {key[2:]: str(value) for key, value in form.multi_items() if key.startswith("r.")}
    months = {key[2:]: str(value) for key, value in form.multi_items()
              if key.startswith("m.")}
    cells: list[GridCellInput] = []
    typed: dict[tuple[str, str], str] = {}
    for key, raw in form.multi_items():
        if not key.startswith("c."):
            continue
        row, _dot, column = key[2:].partition(".")
        rep, month = reps.get(row), months.get(column)
        if rep is None or month is None:
            raise InvalidQuery(_("The form is incomplete; open the grid again."),
                               code="bad_grid")
        text = str(raw)[:MAX_FIELD]
        cells.append(GridCellInput(rep=rep, month=month, value=text))
        typed[rep, month] = text
    return cells, typed


@router.post("/targets/grid")
def save_grid_page(page: ManagerPageDep, form: GridForm) -> Response:
    page.check_csrf(str(form.get("csrf") or ""))
    choice = grid_choice(page, form)
    try:
        cells, typed = _cells(form)
    except InvalidQuery as exc:
        return _render(page, choice, error=exc.message, status=400)
    try:
        saved = save_grid(page.service, page.user, SaveGridParams(kpi=choice.kpi, cells=cells))
    except (InvalidQuery, NotFound) as exc:
        # Nothing was saved: the grid comes back as typed, with what to correct.
        return _render(page, choice, typed=Typed(cells=typed), error=exc.message,
                       status=400)
    page.request.session[SESSION_FLASH] = _(
        "Saved: {inserted} new, {updated} replaced, {deleted} deleted, {unchanged} "
        "unchanged.", inserted=saved.inserted, updated=saved.updated, deleted=saved.deleted,
        unchanged=saved.unchanged)
    return RedirectResponse(choice.href(), status_code=303)


@router.post("/targets/grid/copy")
def copy_last_month(page: ManagerPageDep,
                    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                    kpi: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                    start: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                    months: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                    team: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                    to: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                    replace: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    """Every rep's target of the month before ``to`` copied to ``to`` (this KPI only)."""
    page.check_csrf(csrf)
    choice = grid_choice(page, {"kpi": kpi, "start": start, "months": months, "team": team})
    try:
        month = month_of(to, _("Month")) if to.strip() else page.today().replace(day=1)
        copied = copy_targets(page.service, page.user, CopyTargetsParams.model_validate({
            "from": month_key(shift_months(month, -1)), "to": month_key(month),
            "kpi": choice.kpi, "level": "rep", "replace": bool(replace)}))
    except (InvalidQuery, NotFound) as exc:
        return _render(page, choice, error=exc.message, status=400)
    page.request.session[SESSION_FLASH] = _(
        "Copied {source} to {target}: {inserted} new, {updated} replaced, {kept} kept as "
        "set.", source=page.fmt.period(copied.from_start, "month"),
        target=page.fmt.period(copied.period_start, "month"), inserted=copied.inserted,
        updated=copied.updated, kept=copied.kept)
    return RedirectResponse(choice.href(), status_code=303)


@router.post("/targets/grid/paste")
def paste_table(page: ManagerPageDep,
                csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                kpi: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                start: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                months: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                team: Annotated[str, Form(max_length=MAX_FIELD)] = "",
                table: Annotated[str, Form(max_length=MAX_PASTE)] = "") -> Response:
    """A table pasted whole (rep, then a column per month, under a header): all or none."""
    page.check_csrf(csrf)
    choice = grid_choice(page, {"kpi": kpi, "start": start, "months": months, "team": team})
    try:
        done = import_grid(page.service, page.user, GridParams(
            kpi=choice.kpi, grid=table, name=_("the pasted table")))
    except (InvalidQuery, NotFound) as exc:
        return _render(page, choice, typed=Typed(paste=table), error=exc.message,
                       status=400)
    page.request.session[SESSION_FLASH] = _(
        "Saved: {inserted} new, {updated} replaced, {deleted} deleted, {unchanged} "
        "unchanged.", inserted=done.inserted, updated=done.updated, deleted=0,
        unchanged=done.unchanged)
    return RedirectResponse(choice.href(), status_code=303)
