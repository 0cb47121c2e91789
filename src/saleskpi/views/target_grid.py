"""The targets editor: one KPI's monthly targets as a grid of reps × months.

Read within the caller's scope (a rep sees their own row, a team lead their team's
reps, a manager every rep); saved by managers only, as targets are everywhere else
(``require_manager``: team leads do not set targets). A save replaces: each cell
given sets its target (replacing any, typed in or imported), a cell given empty
deletes it, all in one transaction or (any problem) none; every change is logged
with who made it (``saleskpi target history``).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from pydantic import BaseModel, Field

from saleskpi.domain.errors import InvalidQuery, NotFound
from saleskpi.domain.i18n import _
from saleskpi.domain.periods import shift_months
from saleskpi.domain.query import check_date, plain_number
from saleskpi.domain.suggest import did_you_mean
from saleskpi.domain.targets import KeyTuple, TargetRecord, period_bounds
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import (
    check_kpi,
    parse_number,
    resolve_rep,
    today,
    visible_targets,
)
from saleskpi.service.principal import Principal
from saleskpi.views.base import ViewModel, require_manager

MAX_MONTHS = 24
DEFAULT_MONTHS = 6
MAX_GRID_CELLS = 10_000


def month_of(text: str, field: str) -> dt.date:
    """YYYY-MM (or any day of the month, YYYY-MM-DD) as the month's first day (code
    ``bad_date``)."""
    cleaned = text.strip()
    try:
        day = dt.date.fromisoformat(cleaned + "-01" if len(cleaned) == 7 else cleaned)
    except ValueError:
        raise InvalidQuery(_("{field}: {value!r} is not a month; write it as YYYY-MM",
                             field=field, value=text), code="bad_date") from None
    check_date(day, field)
    return day.replace(day=1)


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


# -- reading -------------------------------------------------------------------------
class TargetGridParams(BaseModel):
    kpi: str = Field(description="The KPI every cell is a monthly target of.")
    start: str | None = Field(default=None, description="The first month shown (YYYY-MM; "
                              "default: last month).")
    months: int = Field(default=DEFAULT_MONTHS, ge=1, le=MAX_MONTHS,
                        description="How many months from start.")
    team: str | None = Field(default=None, description="Only this team's reps.")


class GridRow(BaseModel):
    rep_id: str
    rep_name: str
    team: str | None
    values: list[int | float | None] = Field(
        description="The rep's target of each month (null: none set), as months.")


class TargetGridView(ViewModel):
    kpi: str
    unit: str = Field(description="count, money, ratio, ...: how a value reads.")
    months: list[str] = Field(description="The grid's columns, YYYY-MM.")
    this_month: str = Field(description="The month of today (company time), YYYY-MM.")
    rows: list[GridRow] = Field(description="One row per rep in scope, by name.")


def target_grid(service: SalesKpiService, caller: Principal,
                params: TargetGridParams) -> TargetGridView:
    """The KPI's monthly rep targets over ``months`` months, one row per rep in scope."""
    spec = check_kpi(service, params.kpi)
    now = today(service)
    first = month_of(params.start, "start") if params.start else \
        shift_months(now.replace(day=1), -1)
    months = [shift_months(first, i) for i in range(params.months)]
    last = period_bounds(months[-1], "month")[1]
    reps = service.visible_reps(caller.scope)
    teams = service.rep_teams()
    names = service.rep_names()
    found = visible_targets(service, caller.scope, service.list_targets(kpis=(params.kpi,)))
    cells: dict[tuple[str, dt.date], TargetRecord] = {}
    for target in found:
        if target.rep_id is None or target.period_end < first or target.period_start > last:
            continue
        if period_bounds(target.period_start, "month") == (target.period_start,
                                                           target.period_end):
            cells[target.rep_id, target.period_start] = target
    rows: dict[str, GridRow] = {
        r.rep: GridRow(rep_id=r.rep, rep_name=r.name, team=r.team, values=[]) for r in reps}
    # A target may name a rep by a source id that is not the person's key: its row too,
    # so that what the grid saves is what it showed.
    for rep_id, _month in cells:
        if rep_id not in rows:
            rows[rep_id] = GridRow(rep_id=rep_id, rep_name=names.get(rep_id, rep_id),
                                   team=teams.get(rep_id), values=[])
    shown = [row for row in rows.values() if params.team is None or row.team == params.team]
    shown.sort(key=lambda r: (r.rep_name.casefold(), r.rep_id))
    for row in shown:
        row.values = [plain_number(cells[row.rep_id, m].value) if (row.rep_id, m) in cells
                      else None for m in months]
    return TargetGridView(kpi=params.kpi, unit=spec.unit, months=[month_key(m) for m in months],
                          this_month=month_key(now), rows=shown)


# -- saving --------------------------------------------------------------------------
class GridCellInput(BaseModel):
    rep: str = Field(description="Rep id or name.")
    month: str = Field(description="YYYY-MM.")
    value: str | float | None = Field(
        description="The target (50, 120000, 30%); null or empty: delete the target.")


class SaveGridParams(BaseModel):
    kpi: str = Field(description="The KPI every cell is a monthly target of.")
    cells: list[GridCellInput] = Field(max_length=MAX_GRID_CELLS,
                                       description="The cells to save; others are kept.")


class GridSavedView(ViewModel):
    kpi: str
    inserted: int
    updated: int = Field(description="Replaced.")
    unchanged: int
    deleted: int = Field(description="Cells given empty that had a target.")


def save_grid(service: SalesKpiService, caller: Principal,
              params: SaveGridParams) -> GridSavedView:
    """Save edited cells of a KPI's grid: all or (any problem, named) none."""
    require_manager(caller)
    check_kpi(service, params.kpi)
    sets: list[tuple[KeyTuple, float]] = []
    clears: list[KeyTuple] = []
    seen: set[tuple[str, dt.date]] = set()
    for cell in params.cells:
        try:
            rep = resolve_rep(service, cell.rep, caller.scope)
        except NotFound as exc:
            known = [r.name for r in service.visible_reps(caller.scope)]
            raise NotFound(exc.message + did_you_mean(cell.rep, known),
                           code="unknown_rep") from None
        place = _("{rep}, {month}", rep=rep.name, month=cell.month)
        month = month_of(cell.month, place)
        if (rep.id, month) in seen:
            raise InvalidQuery(_("{place}: given twice", place=place), code="bad_grid")
        seen.add((rep.id, month))
        first, last = period_bounds(month, "month")
        key: KeyTuple = (params.kpi, first, last, rep.id, rep.team)
        typed = cell.value if cell.value is None or isinstance(cell.value, str) \
            else repr(cell.value)
        if typed is None or not typed.strip():
            clears.append(key)
            continue
        amount: Fraction = parse_number(typed, place)
        sets.append((key, float(amount)))
    counts = service.save_target_grid(sets, clears, actor=caller.username)
    return GridSavedView(kpi=params.kpi, **counts)
