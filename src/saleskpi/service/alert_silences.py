"""Silences within the caller's scope: who may make, see and end which silence.

A head of sales or an admin silences anything (a rule, a rep, a team). A team lead
silences their own team or its reps: a silence they make always carries their team,
so it can never hush another team's alerts. A rep sees the silences about them and
makes none. Every silence has a reason and an end, and names its maker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from saleskpi.domain.errors import Forbidden, InvalidQuery, NotFound
from saleskpi.domain.i18n import _
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.store.state import silences as stored
from saleskpi.store.state.silences import Silence as Silence  # views name it here

MAX_DAYS = 366
MAX_REASON = 500


def visible(service: SalesKpiService, caller: Principal, silence: Silence) -> bool:
    if caller.can_manage:
        return True
    if caller.role == "team_lead":
        teams = service.rep_teams()
        return bool(caller.team) and (silence.team == caller.team or (
            silence.rep is not None and teams.get(silence.rep) == caller.team))
    return bool(caller.rep_id) and silence.rep == caller.rep_id


def list_silences(service: SalesKpiService, caller: Principal, *,
                  current_at: dt.datetime | None = None) -> list[Silence]:
    found = stored.list_silences(service.settings.state_url, current_at=current_at)
    return [s for s in found if visible(service, caller, s)]


def active_at(service: SalesKpiService, now: dt.datetime) -> list[Silence]:
    """Every silence on at ``now``, whoever made it (whether an alert is hushed)."""
    found = stored.list_silences(service.settings.state_url, current_at=now)
    return [s for s in found if s.active_at(now)]


def add_silence(service: SalesKpiService, caller: Principal, *, rule: str | None,
                rep: str | None, team: str | None, starts_at: dt.datetime,
                ends_at: dt.datetime, reason: str, now: dt.datetime) -> Silence:
    """A new silence (times naive UTC); refused with a sentence saying what to change."""
    rule, rep, team = (v.strip() or None if v else None for v in (rule, rep, team))
    reason = reason.strip()
    if not (rule or rep or team):
        raise InvalidQuery(_("a silence names a rule, a rep or a team (or several)"),
                           code="bad_silence")
    if not reason:
        raise InvalidQuery(_("say why alerts are silenced (a reason)"), code="bad_silence")
    if len(reason) > MAX_REASON:
        raise InvalidQuery(_("the reason is too long (at most {n} characters)", n=MAX_REASON),
                           code="bad_silence")
    if ends_at <= starts_at or ends_at <= now:
        raise InvalidQuery(_("a silence must end after it starts, and in the future"),
                           code="bad_silence")
    if ends_at - starts_at > dt.timedelta(days=MAX_DAYS):
        raise InvalidQuery(_("a silence lasts at most {days} days", days=MAX_DAYS),
                           code="bad_silence")
    if not caller.can_manage:
        team = _own_team(service, caller, rep, team)
    return stored.add_silence(service.settings.state_url, rule=rule, rep=rep, team=team,
                              starts_at=starts_at, ends_at=ends_at,
                              created_by=caller.username, reason=reason, created_at=now)


def _own_team(service: SalesKpiService, caller: Principal, rep: str | None,
              team: str | None) -> str:
    """The team a team lead's silence is limited to; Forbidden for anyone else."""
    if caller.role != "team_lead" or not caller.team:
        raise Forbidden(_("only a head of sales, an admin or a team lead may silence alerts"))
    if team is not None and team != caller.team:
        raise Forbidden(_("you may silence only your own team's alerts"))
    if rep is not None and service.rep_teams().get(rep) != caller.team:
        raise Forbidden(_("you may silence only your own team's reps"))
    return caller.team


def remove_silence(service: SalesKpiService, caller: Principal, silence_id: int,
                   now: dt.datetime) -> Silence:
    url = service.settings.state_url
    found = stored.get_silence(url, silence_id)
    if found is None or not visible(service, caller, found):
        raise NotFound(_("no silence {id}", id=silence_id), code="unknown_silence")
    if not caller.can_manage and caller.role != "team_lead":
        raise Forbidden(_("only a head of sales, an admin or a team lead may end a silence"))
    if not stored.remove_silence(url, silence_id, by=caller.username, at=now):
        raise NotFound(_("silence {id} was already removed", id=silence_id),
                       code="unknown_silence")
    return replace(found, removed_at=now, removed_by=caller.username)
