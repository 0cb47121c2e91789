"""How one alert lives, as in Prometheus and Alertmanager: pending, firing, resolved.

Each rule watches subjects (a lead, a deal in a stage, a rep's plan, a CRM's sync).
A subject whose condition holds is **pending** from the first evaluation that sees
it; it **fires** once it has held for the rule's ``for`` (at once when ``for`` is
0); when the condition no longer holds, a firing alert is **resolved** and a pending
one is dropped. A notification goes out once per event (its dedupe key names the
event), again every ``repeat`` while it keeps firing, and once when it is resolved
(if its firing was told). Pure: the caller stores states and sends notices.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
NO_DATA = "no-data"  # the subject of a rule's "no data to judge" alert
Notify = Literal["firing", "repeat", "resolved"]
EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Finding:
    """A subject whose condition holds, with what shows why (JSON-able facts)."""

    subject: str
    rep: str | None = None
    team: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    company: bool = False  # about the whole company: for those who see everything
    public: bool = False  # about the product itself (stale data): for every recipient


@dataclass(frozen=True)
class Episode:
    """A time the condition held: from ``begin`` until ``until`` (None: still holds)."""

    finding: Finding
    begin: dt.datetime
    until: dt.datetime | None

    def holds_at(self, moment: dt.datetime) -> bool:
        return self.begin <= moment and (self.until is None or moment < self.until)


@dataclass(frozen=True)
class AlertState:
    rule: str
    subject: str
    status: str  # pending, firing or resolved
    since: dt.datetime  # the first evaluation that saw the condition
    finding: Finding
    fired_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    notified_at: dt.datetime | None = None  # the last notice of this firing
    notices: int = 0  # notices sent for this firing
    resolved_notified: bool = False


@dataclass(frozen=True)
class Change:
    rule: str
    subject: str
    before: str | None  # None: the subject had no state
    after: str | None  # None: dropped (a pending alert whose condition stopped)
    state: AlertState


def advance(state: AlertState | None, finding: Finding | None, now: dt.datetime,
            hold: dt.timedelta, rule: str, subject: str) -> tuple[AlertState | None,
                                                                  Change | None]:
    """The state after an evaluation at ``now`` that found ``finding`` (None: the
    condition does not hold), and the change, if the status changed."""
    before = state.status if state is not None else None
    if finding is not None:
        if state is None or state.status == RESOLVED:
            status = FIRING if hold <= dt.timedelta(0) else PENDING
            new = AlertState(rule, subject, status, now, finding,
                             fired_at=now if status == FIRING else None)
        elif state.status == PENDING and now - state.since >= hold:
            new = replace(state, status=FIRING, fired_at=now, finding=finding)
        else:
            new = replace(state, finding=finding)
    elif state is None or state.status == RESOLVED:
        return state, None
    elif state.status == PENDING:
        return None, Change(rule, subject, PENDING, None, state)
    else:
        new = replace(state, status=RESOLVED, resolved_at=now)
    change = Change(rule, subject, before, new.status, new) if new.status != before else None
    return new, change


def notice_due(state: AlertState, now: dt.datetime, repeat: dt.timedelta, *,
               silenced: bool, notify_resolved: bool) -> Notify | None:
    """Which notice ``state`` needs now, if any (a silenced alert waits unsent)."""
    if state.status == FIRING and not silenced:
        if state.notified_at is None:
            return "firing"
        if now - state.notified_at >= repeat:
            return "repeat"
    if state.status == RESOLVED and notify_resolved and state.notices \
            and not state.resolved_notified and not silenced:
        return "resolved"
    return None


def after_notice(state: AlertState, what: Notify, now: dt.datetime) -> AlertState:
    if what == "resolved":
        return replace(state, resolved_notified=True)
    return replace(state, notified_at=now, notices=state.notices + 1)


def event_key(state: AlertState, what: Notify) -> str:
    """The dedupe key of one notice: the same firing and notice number is one event."""
    fired = (state.fired_at or state.since).strftime("%Y%m%dT%H%M%S")
    number = "resolved" if what == "resolved" else str(state.notices + 1)
    return f"{state.rule}|{state.subject}|{fired}|{number}"


# -- the backtest: evaluations on the rule's schedule, without stored state -----------------
def tick_at_or_after(moment: dt.datetime, every: dt.timedelta) -> dt.datetime:
    """The first evaluation at or after ``moment`` on a schedule of ``every``, counted
    from 1970-01-01 UTC (as the scheduler's due times)."""
    step = every.total_seconds()
    ticks = math.ceil((moment - EPOCH).total_seconds() / step - 1e-9)
    return EPOCH + dt.timedelta(seconds=ticks * step)


def fires_at(episode: Episode, every: dt.timedelta, hold: dt.timedelta) -> dt.datetime | None:
    """When an alert on this episode would fire, evaluated every ``every``: the first
    evaluation sees it (pending), the first one ``for`` later fires it; None if the
    condition stopped before."""
    seen = tick_at_or_after(episode.begin, every)
    fired = seen if hold <= dt.timedelta(0) else tick_at_or_after(seen + hold, every)
    if episode.until is not None and fired >= episode.until:
        return None
    return fired
