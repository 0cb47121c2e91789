"""Contests: made by managers, read by whoever takes part, closed with their results kept.

Who reads what (a contest board, like the TV in the office, shows everyone in it):

- an admin or the head of sales sees every contest, every figure;
- a team lead sees the contests their team, or any rep of it, takes part in;
- a rep sees the contests they take part in (themselves, or their team).

A reader who may see a contest sees every participant's name, place and score
(the figure ranked: the KPI's value, the points or the share of target), and the
head-to-head results. The figures behind a score (the actual and the target of a
share of target, each KPI of a points formula) only for the participants in the
reader's own scope: a rep their own row (or their own team's), a team lead their
team's reps (or their team). Anyone else, like a rep not in the contest, is told
the contest does not exist.

Closing keeps the final standings and the winners in the state database
(``saleskpi.store.state.contests``); from then on they are read from there, never
computed again. A contest is closed once its last day is over (or early, when
asked), and closing produces a notice for each person it concerns.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import threading
from typing import TYPE_CHECKING

from saleskpi.domain.contests import (
    Contest,
    ContestDefinition,
    ContestError,
    Entry,
    Standings,
    parse_definition,
)
from saleskpi.domain.errors import Conflict, NotFound
from saleskpi.domain.i18n import _, set_language
from saleskpi.domain.notices import Notice
from saleskpi.domain.query import plain_number
from saleskpi.service.attainment import is_cumulative
from saleskpi.service.contest_scoring import standings
from saleskpi.service.plan_inputs import check_kpi, today
from saleskpi.service.principal import Principal
from saleskpi.store.state import contests as stored

if TYPE_CHECKING:
    from saleskpi.service.core import SalesKpiService

log = logging.getLogger("saleskpi.contests")

# -- making and finding -------------------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _contest(row: stored.StoredContest) -> Contest:
    return Contest(id=row.id, definition=ContestDefinition.model_validate(row.definition),
                   created_at=row.created_at, created_by=row.created_by,
                   closed_at=row.closed_at, closed_by=row.closed_by,
                   winners=row.winners or [],
                   final=Standings.model_validate(row.final) if row.final is not None
                   else None)


def checked(service: SalesKpiService, definition: ContestDefinition) -> ContestDefinition:
    """``definition`` against the catalogue and the data: its KPIs exist (a points formula's
    add up), its reps (by id or name) and teams are known. Reps are kept by id."""
    for key in definition.kpis():
        spec = check_kpi(service, key)
        if spec.kind == "share":
            raise ContestError(_("{kpi} is a share of a whole: a contest cannot rank it",
                                 kpi=key))
        if definition.points and not is_cumulative(spec):
            raise ContestError(_("points: {kpi} does not add up over time (it is a rate, an "
                                 "average or a snapshot); give points to counts and sums, "
                                 "such as calls, meetings, deals_won", kpi=key))
    if definition.tie_kpi:
        check_kpi(service, definition.tie_kpi)
    if definition.participants == "teams":
        known = service.teams()
        unknown = [m for m in definition.members if m not in known]
        if unknown:
            raise ContestError(_("unknown team {team!r}; known teams: {known}",
                                 team=unknown[0], known=", ".join(sorted(known)) or "—"))
        return definition
    members = []
    for member in definition.members:
        rep = service.find_rep(member)
        if rep is None and len(several := service.people_called(member)) > 1:
            raise ContestError(service.ambiguous_rep(member, several).message)
        if rep is None:
            raise ContestError(_("unknown rep {rep!r}: give a rep id or name from the "
                                 "imported reps", rep=member))
        members.append(rep.rep)
    if len(set(members)) < 2:
        raise ContestError(_("a contest needs at least two different participants"))
    return definition.model_copy(update={"members": list(dict.fromkeys(members))})


def create(service: SalesKpiService, definition: ContestDefinition, *, actor: str) -> Contest:
    definition = checked(service, definition)
    row = stored.add(service.settings.state_url, name=definition.name,
                     definition=definition.model_dump(mode="json"), actor=actor, now=_now())
    return _contest(row)


def all_contests(service: SalesKpiService) -> list[Contest]:
    """Every contest, the latest first."""
    return [_contest(row) for row in stored.all_contests(service.settings.state_url)]


def find(service: SalesKpiService, contest_id: int, caller: Principal) -> Contest:
    """The contest, if ``caller`` may see it (code ``no_such_contest`` otherwise)."""
    row = stored.get(service.settings.state_url, contest_id)
    contest = _contest(row) if row is not None else None
    if contest is None or not may_see(service, contest, caller):
        raise NotFound(_("there is no contest {id}; see 'saleskpi contest list'",
                         id=contest_id), code="no_such_contest")
    return contest


def visible(service: SalesKpiService, caller: Principal) -> list[Contest]:
    return [c for c in all_contests(service) if may_see(service, c, caller)]


# -- who sees what -----------------------------------------------------------------------
def _team_of(service: SalesKpiService) -> dict[str, str | None]:
    return {r.rep: r.team for r in service.visible_reps()}


def may_see(service: SalesKpiService, contest: Contest, caller: Principal) -> bool:
    if caller.can_manage:
        return True
    definition = contest.definition
    team_of = _team_of(service)
    if caller.role == "team_lead":
        if definition.participants == "teams":
            return caller.team in definition.members
        return any(team_of.get(rep) == caller.team for rep in definition.members)
    if definition.participants == "reps":
        return caller.rep_id in definition.members
    return team_of.get(caller.rep_id or "") in definition.members


def _own(service: SalesKpiService, contest: Contest, caller: Principal) -> set[str]:
    """The participants whose figures ``caller`` may see in full."""
    definition = contest.definition
    if caller.can_manage:
        return set(definition.members)
    team_of = _team_of(service)
    if definition.participants == "teams":
        team = caller.team if caller.role == "team_lead" else team_of.get(caller.rep_id or "")
        return {team} if team else set()
    if caller.role == "team_lead":
        return {rep for rep in definition.members if team_of.get(rep) == caller.team}
    return {caller.rep_id} if caller.rep_id else set()


def _shown(entry: Entry, full: bool) -> Entry:
    if full:
        return entry
    return entry.model_copy(update={"value": None, "target": None, "breakdown": {},
                                    "tiebreak": None, "details": False})


def board(service: SalesKpiService, contest: Contest, caller: Principal, *,
          day: dt.date | None = None) -> Standings:
    """The standings ``caller`` reads: kept ones once closed, else computed now."""
    if contest.final is not None:
        found = contest.final
    else:
        found = standings(service, contest, today=day or today(service))
    own = _own(service, contest, caller)
    entries = [_shown(e, e.key in own) for e in found.entries]
    return found.model_copy(update={"entries": entries})


# -- changing an open contest ----------------------------------------------------------------
EDITABLE = ("name", "description", "start", "end", "winners")


def _refuse_closed(contest: Contest, *, deleting: bool) -> None:
    if contest.closed_at is None:
        return
    day = contest.closed_at.date().isoformat()
    if deleting:
        message = _("contest {id} was closed on {day}: its results are kept as they were, so "
                    "it cannot be deleted", id=contest.id, day=day)
    else:
        message = _("contest {id} was closed on {day}: its results are kept as they were, so "
                    "it cannot be changed", id=contest.id, day=day)
    raise Conflict(message, code="contest_closed")


def edit(service: SalesKpiService, contest_id: int, caller: Principal,
         changes: dict[str, object]) -> Contest:
    """A contest still open with ``changes`` (of ``EDITABLE``: a misspelt name, a later
    end); its participants and what it ranks stay, so standings so far keep their meaning.
    Managers only (checked by the view); ``contest_closed`` once closed."""
    contest = find(service, contest_id, caller)
    _refuse_closed(contest, deleting=False)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ContestError(_("{fields}: only the name, description, start, end and winners "
                             "of a contest can be changed", fields=", ".join(unknown)))
    definition = checked(service, parse_definition(
        {**contest.definition.model_dump(mode="json"), **changes}))
    if not stored.replace_open(service.settings.state_url, contest.id, name=definition.name,
                               definition=definition.model_dump(mode="json")):
        raise Conflict(_("contest {id} was closed meanwhile: its results are kept as they "
                         "were", id=contest.id), code="contest_closed")
    return find(service, contest.id, caller)


def delete(service: SalesKpiService, contest_id: int, caller: Principal) -> Contest:
    """Delete a contest still open (one made by mistake); a closed one is history and stays.
    Managers only (checked by the view)."""
    contest = find(service, contest_id, caller)
    _refuse_closed(contest, deleting=True)
    if not stored.remove_open(service.settings.state_url, contest.id):
        raise Conflict(_("contest {id} was closed meanwhile: its results are kept as they "
                         "were", id=contest.id), code="contest_closed")
    return contest


# -- closing -----------------------------------------------------------------------------------
def close(service: SalesKpiService, contest_id: int, caller: Principal, *,
          early: bool = False, day: dt.date | None = None) -> Contest:
    """Compute the final standings and keep them with the winners (managers only; the
    caller's rights are checked by the view). Refused (``contest_running``) before the
    contest's last day is over unless ``early``; (``contest_closed``) when closed."""
    contest = find(service, contest_id, caller)
    on = day or today(service)
    if contest.closed_at is not None:
        raise Conflict(_("contest {id} was closed on {day}: its results are kept as they were",
                         id=contest.id, day=contest.closed_at.date().isoformat()),
                       code="contest_closed")
    if on <= contest.definition.end and not early:
        raise Conflict(_("contest {id} runs until {end}: close it after that day, or close "
                         "it early (--early)", id=contest.id,
                         end=contest.definition.end.isoformat()), code="contest_running")
    now = _now()
    final = standings(service, contest, today=on, final=True, computed_at=now)
    if not stored.close(service.settings.state_url, contest.id, actor=caller.username, now=now,
                        final=final.model_dump(mode="json"), winners=final.winners):
        raise Conflict(_("contest {id} was closed meanwhile: its results are kept as they "
                         "were", id=contest.id), code="contest_closed")
    closed = find(service, contest.id, caller)
    announce(service, closed)
    return closed


def announce(service: SalesKpiService, contest: Contest) -> threading.Thread:
    """Send the closing notices in the background: the one who closes a contest does not
    wait for mail servers, and a channel that is down never undoes the close (its failure
    is in the delivery log, retried as every notice is)."""
    from saleskpi.service.delivery import deliver

    notices = closing_notices(service, contest)

    def send() -> None:
        try:
            deliver(service.settings, notices)
        except Exception:  # a background send must not die silently: log it
            log.exception("contest %s: sending its results failed", contest.id)

    thread = threading.Thread(target=send, name=f"contest-{contest.id}-results", daemon=True)
    thread.start()
    return thread


def closing_notices(service: SalesKpiService, contest: Contest) -> list[Notice]:
    """A notice of a closed contest's result for each user it concerns: those who may see
    it and take part (or lead a team that does), and the one who made it; each in their
    own language, with their own place."""
    from saleskpi.service.auth import disabled_ids, list_users

    final = contest.final
    if final is None:
        return []
    off = disabled_ids(service.settings)
    notices = []
    for user in list_users(service.settings):
        if user.user_id in off or not may_see(service, contest, user):
            continue
        mine = _own(service, contest, user) & {e.key for e in final.entries}
        if user.can_manage and user.username != contest.created_by:
            continue  # a manager hears of the contests they made
        notices.append(contextvars.copy_context().run(_notice, contest, final, user, mine))
    return notices


def score_text(score: float | None, unit: str) -> str:
    """A score for plain text: a share of target in per cent, points and counts as numbers,
    other units after the number."""
    if score is None:
        return "—"
    if unit == "ratio":
        return f"{score * 100:.1f}%"
    number = f"{plain_number(round(score, 2))}"
    if unit in ("count", "number"):
        return number
    return f"{number} {_('points')}" if unit == "points" else f"{number} {unit}"


def _notice(contest: Contest, final: Standings, user: Principal, mine: set[str]) -> Notice:
    set_language(user.lang)
    names = {e.key: e.name for e in final.entries}
    won = ", ".join(names[k] for k in final.winners) or "—"
    lines = [_("Contest {name} is over. Winners: {winners}.", name=final.name, winners=won), ""]
    for entry in final.entries[:10]:
        score = score_text(entry.score, final.unit)
        place = "—" if entry.rank is None else str(entry.rank)
        lines.append(f"{place}. {entry.name}: {score}")
    for entry in final.entries:
        if entry.key in mine and len(mine) == 1:
            lines += ["", _("Your place: {place} of {count}.",
                            place=entry.rank if entry.rank is not None else "—",
                            count=len(final.entries))]
    return Notice(recipient=user.username, kind="contest", key=f"contest:{contest.id}:closed",
                  subject=_("Contest {name}: the results", name=final.name),
                  body="\n".join(lines), link=f"/contests/{contest.id}")
