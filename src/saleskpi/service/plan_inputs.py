"""The inputs of plans and targets, checked once for every surface.

A rep, team, KPI, period, number, goal or rate as a user typed it (CLI option,
REST parameter, MCP argument) becomes a checked value here, or a
``SalesKpiError`` with a stable code and one sentence, so the CLI, REST and MCP
refuse the same inputs with the same words. Whose targets a caller may see is
decided here too (``target_visible``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

from saleskpi.domain.errors import Forbidden, InvalidQuery, NotFound
from saleskpi.domain.i18n import _
from saleskpi.domain.planning import (
    CALL_TO_WON,
    GOALS,
    RATE_KEYS,
    STEPS,
    GoalKpi,
    PlanningError,
    Rate,
)
from saleskpi.domain.query import EVERYTHING, TARGET_PERIODS, Period, Scope, parse_period
from saleskpi.domain.suggest import did_you_mean
from saleskpi.domain.typed_numbers import parse_typed_number
from saleskpi.service.planner import RepInfo, find_rep, known_teams

if TYPE_CHECKING:
    from saleskpi.catalog.spec import KpiSpec
    from saleskpi.domain.targets import Level, TargetRecord
    from saleskpi.service.core import SalesKpiService


# -- days and periods ------------------------------------------------------------------
def today(service: SalesKpiService) -> dt.date:
    """Today in the company's time zone."""
    return service.today()


def day_or_today(service: SalesKpiService, day: dt.date | None) -> dt.date:
    return day if day is not None else today(service)


def target_period(text: str) -> Period:
    """A period a target can span: day, week, month, quarter or year (code ``bad_period``)."""
    return parse_period(text, TARGET_PERIODS)


def plan_level(by: str | None) -> Level | None:
    """``--by``: only rep or only team targets (code ``bad_by``)."""
    if by is None:
        return None
    if by not in ("rep", "team"):
        raise InvalidQuery(_("--by takes rep or team, got {by!r}", by=by), code="bad_by")
    return "rep" if by == "rep" else "team"


# -- numbers ---------------------------------------------------------------------------
def parse_number(text: str, option: str) -> Fraction:
    """A number as typed: 50, 0.05, 5%, 1/3, 1 200, 1,200 (code ``bad_number``)."""
    value = parse_typed_number(text)
    if value is None:
        raise InvalidQuery(_("{option}: {value!r} is not a number (examples: 50, 0.05, 5%, "
                             "1/3)", option=option, value=text), code="bad_number")
    return value


# -- who --------------------------------------------------------------------------------
def exclusive(rep: str | None, team: str | None) -> None:
    if rep is not None and team is not None:
        raise InvalidQuery(_("give --rep or --team, not both"), code="rep_and_team")


def in_scope(rep: RepInfo, scope: Scope) -> bool:
    if scope.rep_ids is not None and rep.id not in scope.rep_ids:
        return False
    return scope.teams is None or rep.team in scope.teams


def resolve_rep(service: SalesKpiService, text: str, scope: Scope = EVERYTHING) -> RepInfo:
    """A rep by id or name that ``scope`` may see (code ``unknown_rep``, 404).

    A rep outside the scope is as unknown as one that does not exist: the answer
    does not tell a rep whether a colleague's id is real.
    """
    found = find_rep(service, text, scope)
    if found is None and len(several := service.people_called(text, scope)) > 1:
        raise service.ambiguous_rep(text, several)  # the wrong one's plan would be set
    if found is None or not in_scope(found, scope):
        # Suggestions only among the reps the caller may see.
        names = [r.name for r in service.visible_reps(scope) if r.name]
        raise NotFound(_("unknown rep {rep!r}: give a rep id or name from the imported reps",
                         rep=text) + did_you_mean(text, names), code="unknown_rep")
    return found


def check_team_in_scope(team: str, scope: Scope) -> None:
    """A team's plans: for managers, and for the lead of that team (code ``forbidden``)."""
    if scope.rep_ids is not None or (scope.teams is not None and team not in scope.teams):
        raise Forbidden(_("you may not see the plans of team {team!r}", team=team))


def team_known(service: SalesKpiService, team: str) -> bool:
    """Whether any imported rep is in ``team`` (a target may be set for a team to come)."""
    return team in known_teams(service)


def check_kpi(service: SalesKpiService, kpi: str) -> KpiSpec:
    """A KPI of the catalogue (code ``unknown_kpi``), with the catalogue's suggestions."""
    try:
        return service.catalog.get(kpi)
    except InvalidQuery as exc:
        raise InvalidQuery(exc.message, code="unknown_kpi") from None


def target_visible(target: TargetRecord, scope: Scope, team_reps: Collection[str]) -> bool:
    """Whether a caller with ``scope`` sees ``target``.

    Managers see every target; a team lead the targets of their team and of its
    reps (``team_reps``: the reps of the lead's team); a rep only their own.
    Company targets are for managers.
    """
    if scope.rep_ids is None and scope.teams is None:
        return True
    if target.level == "rep":
        if scope.rep_ids is not None and target.rep_id not in scope.rep_ids:
            return False
        return scope.teams is None or target.rep_id in team_reps
    if target.level == "team":
        return scope.rep_ids is None and scope.teams is not None and target.team in scope.teams
    return False


def visible_targets(service: SalesKpiService, scope: Scope,
                    targets: Sequence[TargetRecord]) -> list[TargetRecord]:
    if scope.rep_ids is None and scope.teams is None:
        return list(targets)
    team_reps = {r.rep for r in service.visible_reps(scope)} if scope.teams is not None \
        else set()
    # Judged as the person's: a rep's target stored under their old CRM's id is theirs.
    people = service.as_people(list(targets))
    return [t for t, as_person in zip(targets, people, strict=True)
            if target_visible(as_person, scope, team_reps)]


# -- reverse planning --------------------------------------------------------------------
def parse_goal(text: str) -> tuple[GoalKpi, Fraction]:
    """``deals_won=N`` or ``revenue=AMOUNT`` (code ``bad_goal``)."""
    kpi, sep, value = text.partition("=")
    if not sep or kpi.strip() not in GOALS:
        raise InvalidQuery(_("--goal expects deals_won=N or revenue=AMOUNT, got {goal!r}",
                             goal=text), code="bad_goal")
    amount = parse_number(value, "--goal")
    if amount <= 0:
        raise InvalidQuery(_("--goal must be above 0, got {goal!r}", goal=text),
                           code="bad_goal")
    return ("revenue" if kpi.strip() == "revenue" else "deals_won"), amount


def parse_rates(items: Sequence[str]) -> tuple[Rate, ...]:
    """Rates given by hand: ``call_to_won=R``, or both two-step rates (code ``bad_rate``)."""
    rates: dict[str, Rate] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in RATE_KEYS:
            raise InvalidQuery(_("--rate expects STEP=RATE with STEP one of {steps}, got "
                                 "{item!r}", steps=", ".join(RATE_KEYS), item=item),
                               code="bad_rate")
        rate = parse_number(value, "--rate")
        if not 0 < rate <= 1:
            raise InvalidQuery(_("--rate {step}: a rate is above 0 and at most 1 (or 100%), "
                                 "got {value!r}", step=key, value=value), code="bad_rate")
        rates[key] = Rate(key, rate)
    direct = CALL_TO_WON in rates
    steps = [k for k in STEPS if k in rates]
    if rates and (direct == bool(steps) or (steps and len(steps) != len(STEPS))):
        raise InvalidQuery(_("give either --rate call_to_won=R, or both --rate "
                             "call_to_meeting=R and --rate meeting_to_won=R"), code="bad_rate")
    return tuple(rates.values())


def parse_deal_size(text: str | None) -> Fraction | None:
    if text is None:
        return None
    size = parse_number(text, "--deal-size")
    if size <= 0:
        raise InvalidQuery(_("--deal-size must be above 0"), code="bad_deal_size")
    return size


def step_name(key: str) -> str:
    return {
        "call_to_meeting": _("call → meeting"),
        "meeting_to_won": _("meeting → sale"),
        "call_to_won": _("call → sale"),
    }.get(key, key)


# Stable codes of the reasons a reverse plan cannot be made.
PLANNING_CODES = {"deal_size": "no_deal_size", "zero_rate": "zero_rate", "rates": "no_history"}


def planning_problem(exc: PlanningError, window: str, given: bool) -> InvalidQuery:
    """``exc`` as a sentence a user can act on (``window``: the history's span, as text)."""
    code = PLANNING_CODES.get(exc.code, "bad_plan")
    if exc.code == "deal_size":
        if given:
            message = _("a revenue goal needs the average deal size: give --deal-size")
        else:
            message = _("a revenue goal needs the average deal size, and no deals were won "
                        "in {window}: give --deal-size", window=window)
    elif exc.code == "zero_rate":
        message = _("no {step} conversion in {window} (the rate is 0): nothing to plan "
                    "from; give the rates with --rate",
                    step=step_name(str(exc.values["step"])), window=window)
    elif exc.code == "rates":
        message = _("not enough history in {window} (no calls or no meetings): give the "
                    "rates with --rate", window=window)
    else:
        message = _("No plan can be made from this goal.")
    return InvalidQuery(message, code=code)


def unknown_team(team: str) -> NotFound:
    return NotFound(_("unknown team {team!r}: no history to learn from; give the rates "
                      "with --rate", team=team), code="unknown_team")
