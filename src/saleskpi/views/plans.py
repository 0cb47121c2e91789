"""Plans: plan vs actual, the reverse plan, and targets (list, upsert, delete).

Reads are scoped to the caller: a rep sees their own targets and plan, a team
lead their team's and its reps', a manager everything. Writes are for managers.
The inputs (rep, team, KPI, period, numbers, goal, rates) are checked by
``saleskpi.service.plan_inputs``, so every surface refuses the same things with
the same words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from saleskpi.domain.errors import InvalidQuery, NotFound
from saleskpi.domain.i18n import _
from saleskpi.domain.planning import PlanningError, ReversePlan
from saleskpi.domain.query import check_date
from saleskpi.domain.suggest import did_you_mean
from saleskpi.domain.target_grid import parse_grid
from saleskpi.domain.targets import (
    LEVELS,
    Change,
    KeyTuple,
    Level,
    TargetRecord,
    period_bounds,
)
from saleskpi.service import planner
from saleskpi.service.attainment import PlanLine
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import (
    check_kpi,
    check_team_in_scope,
    day_or_today,
    exclusive,
    parse_deal_size,
    parse_goal,
    parse_number,
    parse_rates,
    plan_level,
    planning_problem,
    resolve_rep,
    target_period,
    team_known,
    unknown_team,
    visible_targets,
)
from saleskpi.service.principal import Principal
from saleskpi.service.query_checks import check_value
from saleskpi.views.base import PageInfo, Paging, ViewModel, paged, require_manager

# -- plan vs actual ------------------------------------------------------------------------


class PlanParams(Paging):
    at: dt.date | None = Field(default=None, description="As of this day (default today).")
    by: str | None = Field(default=None, description="Only rep or only team targets.")
    period: str | None = Field(
        default=None, description="Only targets set for a whole day, week, month, quarter "
        "or year.")
    rep: str | None = Field(default=None, description="Only this rep's targets (id or name).")
    team: str | None = Field(default=None, description="Only this team's targets and its "
                             "reps'.")


class PlanView(ViewModel):
    at: str = Field(description="The day the plan is measured on (YYYY-MM-DD).")
    timezone: str
    lines: list[dict[str, Any]] = Field(
        description="One line per target, furthest behind first: kpi, name, unit, level, "
        "rep_id, rep_name, team, period_start, period_end, source, at, elapsed_days, "
        "period_days, higher_is_better, plan, actual, attainment, gap, projection, "
        "projected_attainment, run_rate (and numerator, denominator for rates).")
    page: PageInfo


def plan_vs_actual(service: SalesKpiService, caller: Principal,
                   params: PlanParams) -> PlanView:
    """Every target (the caller may see) of a day against its actual."""
    level = plan_level(params.by)
    day = day_or_today(service, params.at)
    period = target_period(params.period) if params.period else None
    scope = caller.scope
    targets = visible_targets(service, scope, service.targets_on(day))
    lines = planner.plan_vs_actual(service, day, level=level, period=period, scope=scope,
                                   targets=targets)
    # A rep's or team's lines are picked from all of them: a team's Σ line sums every
    # rep of the team, whichever is asked for.
    if params.rep is not None:
        rep_id = resolve_rep(service, params.rep, scope).id
        lines = [ln for ln in lines if ln.target.level == "rep" and ln.target.rep_id == rep_id]
    if params.team is not None:
        kept = {id(t) for t in _of_team(service, [ln.target for ln in lines], params.team)}
        lines = [ln for ln in lines if ln.target.level != "company" and id(ln.target) in kept]
        if not lines:  # a misspelled team says so, not "no targets"
            check_value(service, "team", params.team, scope)
    shown, page = paged(lines, params)
    view: PlanView = PlanView(
        at=day.isoformat(), timezone=service.settings.timezone,
        lines=[line.to_dict() for line in shown], page=page).with_source(shown)
    return view


def plan_lines(view: PlanView) -> list[PlanLine]:
    """The domain lines behind ``view`` (for tables)."""
    lines: list[PlanLine] = view.source
    return lines


# -- reverse plan --------------------------------------------------------------------------


class ReversePlanParams(BaseModel):
    goal: str = Field(description="deals_won=N or revenue=AMOUNT for the period.")
    period: str = Field(default="month", description="day, week, month, quarter or year.")
    at: dt.date | None = Field(default=None,
                               description="A day in the period to plan (default today).")
    rep: str | None = Field(default=None, description="Rep id or name.")
    team: str | None = Field(default=None, description="Team name.")
    rate: list[str] = Field(
        default_factory=list, description="Conversion given by hand instead of history: "
        "call_to_won=R, or call_to_meeting=R and meeting_to_won=R (R as 0.15, 15% or 1/3).")
    history_months: int = Field(default=3, ge=1,
                                description="Full months of history to learn the rates from.")
    working_days: int | None = Field(
        default=None, ge=1, description="Working days in the period (default: Monday to "
        "Friday days).")
    deal_size: str | None = Field(
        default=None, description="Average deal for a revenue goal (default: from history).")


class ReversePlanView(ViewModel):
    rep_id: str | None
    rep_name: str | None
    team: str | None
    goal: dict[str, Any] = Field(description="{kpi, value}.")
    deal_size: int | float | None
    period_start: str | None
    period_end: str | None
    working_days: int
    funnel: str = Field(description="two_step (call → meeting → sale) or direct.")
    rates: list[dict[str, Any]] = Field(
        description="{key, value, origin} (and numerator, denominator when from history).")
    needs: list[dict[str, Any]] = Field(
        description="{what, per_period, per_period_exact, per_day, per_day_exact}.")
    options: list[dict[str, Any]] = Field(
        description="Per step, the calls at the team's median rate.")
    improvement: dict[str, Any] | None = Field(
        description="The step whose improvement to the team median saves most calls.")
    history: dict[str, Any] | None = Field(
        default=None, description="The history the rates come from (null: rates given).")


def reverse_plan(service: SalesKpiService, caller: Principal,
                 params: ReversePlanParams) -> ReversePlanView:
    """The calls and meetings a goal needs, from the rep's, team's or company's history."""
    exclusive(params.rep, params.team)
    goal_kpi, amount = parse_goal(params.goal)
    rates = parse_rates(params.rate)
    size = parse_deal_size(params.deal_size)
    scope = caller.scope
    rep, team = params.rep, params.team
    if rep is None and team is None:
        # A rep plans for themself, a team lead for their team by default.
        if scope.rep_ids is not None:
            rep = caller.rep_id or ""
        elif scope.teams is not None:
            team = caller.team or ""
    rep_info = resolve_rep(service, rep, scope) if rep is not None else None
    if team is not None:
        check_team_in_scope(team, scope)
        if not rates and not team_known(service, team):
            raise unknown_team(team)
    day = day_or_today(service, params.at)
    request = planner.ReverseRequest(
        goal_kpi=goal_kpi, goal=amount, at=day, period=target_period(params.period),
        rep=rep_info, team=team, rates=rates, history_months=params.history_months,
        working_days=params.working_days, deal_size=size)
    try:
        plan = planner.reverse_plan(service, request, scope)
    except PlanningError as exc:
        first, last = planner.history_window(day, params.history_months)
        raise planning_problem(exc, f"{first.isoformat()} – {last.isoformat()}",
                               bool(rates)) from None
    view: ReversePlanView = ReversePlanView.model_validate({
        "rep_id": rep_info.id if rep_info else None,
        "rep_name": rep_info.name if rep_info else None, "team": team, **plan.to_dict(),
    }).with_source(plan)
    return view


def reverse_source(view: ReversePlanView) -> ReversePlan:
    plan: ReversePlan = view.source
    return plan


# -- targets -------------------------------------------------------------------------------


class TargetsParams(Paging):
    at: dt.date | None = Field(
        default=None, description="Only targets whose period contains this day.")
    start: dt.date | None = Field(
        default=None, validation_alias=AliasChoices("from", "start"),
        description="Only targets whose period ends on or after this day.")
    end: dt.date | None = Field(
        default=None, validation_alias=AliasChoices("to", "end"),
        description="Only targets whose period starts on or before this day.")
    kpis: list[str] = Field(default_factory=list, description="Only these KPIs.")
    rep: str | None = Field(default=None, description="Only this rep's targets (id or name).")
    team: str | None = Field(default=None, description="Only this team's targets and its "
                             "reps'.")
    newest_first: bool = Field(default=False, description="The latest periods first (then "
                               "the latest changed), instead of the oldest periods first.")


class TargetItem(ViewModel):
    id: int
    # Named apart from ViewModel.source (the domain object); "source" in the JSON.
    target_source: str = Field(alias="source",
                               description="'manual' (typed in) or the import's source.")
    kpi: str
    level: str = Field(description="rep, team or company.")
    rep_id: str | None = Field(description="The rep id the target is stored under.")
    person: str | None = Field(
        default=None, description="The person the rep target counts for (rep_id may be "
        "their id in an old CRM, or one another source uses for someone else).")
    rep_name: str | None = Field(default=None, description="That person's name.")
    team: str | None
    period_start: str
    period_end: str
    value: int | float
    updated_at: str


class TargetsView(ViewModel):
    targets: list[TargetItem]
    page: PageInfo


def targets(service: SalesKpiService, caller: Principal, params: TargetsParams) -> TargetsView:
    """The stored targets (typed in and imported) the caller may see."""
    rep_id = resolve_rep(service, params.rep, caller.scope).id if params.rep is not None \
        else None
    # A person's targets under any of their source rep ids (o1 in the old CRM, n7 now).
    found = service.list_targets(at=params.at, kpis=tuple(params.kpis)) if rep_id is None \
        else service.targets_of(rep_id, at=params.at, kpis=tuple(params.kpis))
    if params.team is not None:
        found = _of_team(service, found, params.team)
    if not found:
        _check_target_filters(service, caller, params)
    if params.start is not None:
        found = [t for t in found if t.period_end >= params.start]
    if params.end is not None:
        found = [t for t in found if t.period_start <= params.end]
    if params.newest_first:
        found = sorted(found, key=lambda t: (t.period_start, t.updated_at, t.id), reverse=True)
    shown, page = paged(visible_targets(service, caller.scope, found), params)
    view: TargetsView = TargetsView(targets=_named(service, shown), page=page).with_source(shown)
    return view


def _named(service: SalesKpiService, shown: list[TargetRecord]) -> list[TargetItem]:
    """Each target with the person it counts for and their name, as the plan names them
    (by the target's source: an id two sources use is two people)."""
    people = service.as_people(shown)
    names = {r.rep: r.name for r in service.visible_reps()} \
        if any(t.rep_id is not None for t in shown) else {}
    return [TargetItem(**t.to_dict(), person=p.rep_id,
                       rep_name=names.get(p.rep_id) if p.rep_id is not None else None)
            for t, p in zip(shown, people, strict=True)]


def _check_target_filters(service: SalesKpiService, caller: Principal,
                          params: TargetsParams) -> None:
    """Nothing matched: a misspelled KPI or team says so (with the closest names) rather
    than "no targets". Checked only then, as a stored target may name a KPI since taken
    out of the catalogue, or a team no imported rep is in."""
    for key in params.kpis:
        service.catalog.get(key)
    if params.team is not None:
        check_value(service, "team", params.team, caller.scope)


def _of_team(service: SalesKpiService, found: list[TargetRecord],
             team: str) -> list[TargetRecord]:
    """A team's targets: the team's own and its reps' (a rep's target need not name the
    team: set by hand it names only the rep)."""
    teams = service.rep_teams()
    return [t for t in found
            if t.team == team or (t.rep_id is not None and teams.get(t.rep_id) == team)]


def target_records(view: TargetsView) -> list[TargetRecord]:
    records: list[TargetRecord] = view.source
    return records


class SetTargetParams(BaseModel):
    kpi: str = Field(description="KPI key; see the catalogue.")
    value: str | float = Field(description="Target value, e.g. 50, 120000 or '30%' for a rate.")
    rep: str | None = Field(default=None, description="Rep id or name.")
    team: str | None = Field(default=None, description="Team name.")
    period: str = Field(default="month", description="day, week, month, quarter or year.")
    start: dt.date | None = Field(
        default=None, description="A day in the period (default today).")
    new_team: bool = Field(
        default=False, description="The team has no reps in the data yet, and its name "
        "is close to one that has: set it all the same (else refused as a likely typo).")


class TargetChangeView(TargetItem):
    change: Change = Field(description="inserted, updated or unchanged.")


@dataclass(frozen=True)
class TargetChange:
    """What a set did, for surfaces that word it (``TargetChangeView.source``)."""

    record: TargetRecord
    change: Change
    rep_name: str | None
    notes: list[str] = field(default_factory=list)


def set_target(service: SalesKpiService, caller: Principal,
               params: SetTargetParams) -> TargetChangeView:
    """Insert or change the manual target of a KPI, period and rep, team or company."""
    require_manager(caller)
    exclusive(params.rep, params.team)
    check_kpi(service, params.kpi)
    typed = params.value if isinstance(params.value, str) else repr(params.value)
    amount = parse_number(typed, "VALUE")
    first, last = period_bounds(day_or_today(service, params.start),
                                target_period(params.period))
    rep_info = resolve_rep(service, params.rep, caller.scope) if params.rep is not None \
        else None
    notes = []
    if params.team is not None and not team_known(service, params.team):
        # A new team may be planned before its reps are imported: set, with a note.
        # A name close to a known team's is more likely a typo, which would leave a
        # plan no one sees: refused, unless the caller says the team is new.
        hint = did_you_mean(params.team, sorted(service.teams()))
        if hint and not params.new_team:
            raise InvalidQuery(
                _("unknown team {team!r}: no rep of the data is in it", team=params.team)
                + hint + " " + _("To plan a team before its reps are imported, give "
                                 "--new-team (new_team in the API)."), code="unknown_team")
        notes.append(_("Note: no rep of team {team!r} in the data yet.", team=params.team))
    record, change = service.set_target(
        kpi=params.kpi, period_start=first, period_end=last, value=float(amount),
        rep_id=rep_info.id if rep_info else None, team=params.team, actor=caller.username)
    view: TargetChangeView = TargetChangeView(**record.to_dict(), change=change).with_source(
        TargetChange(record, change, rep_info.name if rep_info else None, notes))
    return view


def target_change(view: TargetChangeView) -> TargetChange:
    done: TargetChange = view.source
    return done


class DeleteTargetsParams(BaseModel):
    ids: list[int] = Field(default_factory=list, description="Delete by ID (see the list).")
    kpi: str | None = Field(default=None, description="KPI key of the target.")
    rep: str | None = Field(default=None, description="Rep id or name.")
    team: str | None = Field(default=None, description="Team name.")
    period: str = Field(default="month", description="day, week, month, quarter or year.")
    start: dt.date | None = Field(default=None,
                                  description="A day in the period (default today).")
    source: str | None = Field(
        default=None, description="Only if set by this source: 'manual' (typed in) or an "
        "import's source (default: whichever set it; there is one per KPI, period and "
        "rep, team or company).")


class DeletedView(ViewModel):
    deleted: int = Field(description="Targets deleted.")


def delete_targets(service: SalesKpiService, caller: Principal,
                   params: DeleteTargetsParams) -> DeletedView:
    """Delete targets by ID, or the one set with a KPI, rep or team and period.

    Nothing deleted is ``NotFound`` (code ``no_such_target``).
    """
    require_manager(caller)
    if params.ids:
        if params.kpi is not None:
            raise InvalidQuery(_("give a KPI or --id, not both"), code="kpi_and_id")
        deleted = service.delete_targets(params.ids, actor=caller.username)
    else:
        if params.kpi is None:
            raise InvalidQuery(_("give the target's KPI (and --rep or --team), or --id"),
                               code="no_target_key")
        exclusive(params.rep, params.team)
        rep_id = resolve_rep(service, params.rep, caller.scope).id if params.rep is not None \
            else None
        first, last = period_bounds(day_or_today(service, params.start),
                                    target_period(params.period))
        if rep_id is not None:
            # A person's target may be stored under any of their source rep ids: each
            # goes, in one transaction. By the targets' own ids, not by rep id: an id
            # another source uses for someone else keeps that person's target.
            deleted = service.delete_targets(
                [t.id for t in service.targets_of(rep_id, kpis=(params.kpi,))
                 if (t.period_start, t.period_end) == (first, last)
                 and params.source in (None, t.source)], actor=caller.username)
        else:
            deleted = service.delete_target(kpi=params.kpi, period_start=first,
                                            period_end=last, team=params.team,
                                            source=params.source, actor=caller.username)
    if not deleted:
        if params.kpi is not None:  # a misspelled KPI or team says so, with the closest
            service.catalog.get(params.kpi)
            if params.team is not None:
                check_value(service, "team", params.team, caller.scope)
        raise NotFound(_("no such target (see 'saleskpi target list')"), code="no_such_target")
    return DeletedView(deleted=deleted)


# -- copy and history --------------------------------------------------------------------
class CopyTargetsParams(BaseModel):
    source: str = Field(alias="from", description="The month to copy from (YYYY-MM), or any "
                        "day (YYYY-MM-DD) of the period.")
    to: str = Field(description="The month to copy to (YYYY-MM), or any day of the period.")
    period: str = Field(default="month", description="day, week, month, quarter or year.")
    replace: bool = Field(default=False, description="Replace targets already set in 'to'.")
    kpi: str | None = Field(default=None, description="Only this KPI's targets (default: "
                            "every KPI's).")
    level: str | None = Field(default=None, description="Only rep, team or company targets "
                              "(default: all).")


class CopiedView(ViewModel):
    from_start: str
    from_end: str
    period_start: str
    period_end: str
    inserted: int
    updated: int = Field(description="Replaced (with replace).")
    kept: int = Field(description="Already set in the new period, kept.")


def copy_targets(service: SalesKpiService, caller: Principal,
                 params: CopyTargetsParams) -> CopiedView:
    """Every target of one period copied to another: last month's plans as this month's."""
    require_manager(caller)
    grain = target_period(params.period)
    source_first, source_last = period_bounds(_period_day(params.source, "--from"), grain)
    first, last = period_bounds(_period_day(params.to, "--to"), grain)
    if params.kpi is not None:
        check_kpi(service, params.kpi)
    counts = service.copy_targets(source_start=source_first, source_end=source_last,
                                  start=first, end=last, replace=params.replace,
                                  actor=caller.username, kpi=params.kpi,
                                  level=target_level(params.level))
    return CopiedView(from_start=source_first.isoformat(), from_end=source_last.isoformat(),
                      period_start=first.isoformat(), period_end=last.isoformat(),
                      inserted=counts["inserted"], updated=counts["updated"],
                      kept=counts["unchanged"])


def target_level(text: str | None) -> Level | None:
    """``--level``: rep, team or company (code ``bad_level``); None: every level."""
    if text is None:
        return None
    for level in LEVELS:
        if text.strip() == level:
            return level
    raise InvalidQuery(_("--level takes rep, team or company, got {level!r}", level=text),
                       code="bad_level")


def _period_day(text: str, option: str) -> dt.date:
    """YYYY-MM (its first day) or YYYY-MM-DD (code ``bad_date``)."""
    cleaned = text.strip()
    try:
        day = dt.date.fromisoformat(cleaned + "-01" if len(cleaned) == 7 else cleaned)
    except ValueError:
        raise InvalidQuery(_("{option}: {value!r} is not a month (YYYY-MM) or a day "
                             "(YYYY-MM-DD)", option=option, value=text),
                           code="bad_date") from None
    check_date(day, option)  # a period ending past year 9999 is no date at all
    return day


class TargetHistoryParams(BaseModel):
    limit: int = Field(default=50, ge=1, le=10_000, description="How many, newest first.")


class TargetHistoryView(ViewModel):
    changes: list[dict[str, Any]] = Field(
        description="Newest first: changed_at (UTC), actor, action (set, replaced, copied, "
        "imported, deleted, deduplicated), kpi, period_start, period_end, rep_id, team, "
        "old_value, new_value, source.")


def target_history(service: SalesKpiService, caller: Principal,
                   params: TargetHistoryParams) -> TargetHistoryView:
    """Who changed which target: for managers."""
    require_manager(caller)
    return TargetHistoryView(changes=list(service.target_changes(params.limit)))


# -- a grid of reps × periods ---------------------------------------------------------------
class GridParams(BaseModel):
    kpi: str = Field(description="The KPI every cell is a target of.")
    grid: str = Field(description="CSV (or tab-separated, as pasted from a spreadsheet): "
                      "rep (id or name), then one column per period (YYYY-MM).")
    period: str = Field(default="month", description="day, week, month, quarter or year.")
    name: str = Field(default="grid", description="What to call the grid in messages.")


class GridImportedView(ViewModel):
    kpi: str
    inserted: int
    updated: int
    unchanged: int


def import_grid(service: SalesKpiService, caller: Principal,
                params: GridParams) -> GridImportedView:
    """A reps × periods grid of one KPI's targets, set all at once or (any problem) none."""
    require_manager(caller)
    check_kpi(service, params.kpi)
    grain = target_period(params.period)
    keys: list[tuple[KeyTuple, float]] = []
    for cell in parse_grid(params.grid, params.name):
        try:
            rep = resolve_rep(service, cell.rep, caller.scope)
        except NotFound as exc:
            known = [r.name for r in service.visible_reps(caller.scope)]
            raise NotFound(_("{name}, line {line}: {problem}", name=params.name,
                             line=cell.row, problem=exc.message)
                           + did_you_mean(cell.rep, known), code="unknown_rep") from None
        except InvalidQuery as exc:  # a name two people have: which, on which line
            raise InvalidQuery(_("{name}, line {line}: {problem}", name=params.name,
                                 line=cell.row, problem=exc.message), code=exc.code) from None
        first, last = period_bounds(cell.day, grain)
        keys.append(((params.kpi, first, last, rep.id, rep.team), float(cell.value)))
    counts = service.set_targets(keys, actor=caller.username)
    return GridImportedView(kpi=params.kpi, inserted=counts["inserted"],
                            updated=counts["updated"], unchanged=counts["unchanged"])
