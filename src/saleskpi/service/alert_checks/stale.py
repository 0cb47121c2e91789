"""Stale data: nothing imported or synced for ``hours``, or a CRM's sync failing.

Data arrives with an import that worked, a sync that worked (even one that found
nothing new: the data is as fresh as the CRM), or a stored sync batch. With
``working_hours: true`` the hours count only the company's working time, so a quiet
weekend is not stale. A CRM's sync fails from its first failed run after one that
worked until the next run that works.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from saleskpi.domain.alert_states import Episode, Finding
from saleskpi.domain.alerts import DataStale
from saleskpi.service.alert_checks.base import CheckContext, iso
from saleskpi.store.state.sync_runs import SyncOutcome, data_arrivals, sync_outcomes

LINK = "/alerts"


def stale_episodes(ctx: CheckContext, rule: DataStale, start: dt.datetime,
                   end: dt.datetime) -> list[Episode] | None:
    """None when nothing was ever imported or synced (there is nothing to be stale)."""
    url = ctx.settings.state_url
    arrivals = data_arrivals(url, end)
    runs = sync_outcomes(url, end)
    if not arrivals and not runs:
        return None
    found = []
    if rule.hours is not None:
        found += _gaps(ctx, rule, rule.hours, arrivals, start, end)
    if rule.sync_failures:
        found += _failures(runs, start, end)
    return found


def _gaps(ctx: CheckContext, rule: DataStale, hours: float, arrivals: list[dt.datetime],
          start: dt.datetime, end: dt.datetime) -> list[Episode]:
    found = []
    working = ctx.working
    for index, last in enumerate(arrivals):
        following = arrivals[index + 1] if index + 1 < len(arrivals) else None
        begin = working.add(last, hours * 3600) if rule.working_hours \
            else last + dt.timedelta(hours=hours)
        if begin > end or (following is not None and (begin >= following or following <= start)):
            continue
        finding = Finding(subject="stale", facts={"last": iso(last), "hours": hours,
                                                  "working_hours": rule.working_hours},
                          link=LINK, public=True)
        found.append(Episode(finding, begin, following))
    return found


def _failures(runs: list[SyncOutcome], start: dt.datetime, end: dt.datetime) -> list[Episode]:
    by_crm: dict[str, list[SyncOutcome]] = defaultdict(list)
    for outcome in runs:
        by_crm[outcome.crm].append(outcome)
    found = []
    for crm, mine in sorted(by_crm.items()):
        streak: list[SyncOutcome] = []
        ends: list[SyncOutcome | None] = [*mine, None]
        for run in ends:
            if run is not None and not run.ok:
                streak.append(run)
                continue
            if streak:
                until = run.finished_at if run is not None else None
                if streak[0].finished_at <= end and (until is None or until > start):
                    finding = Finding(
                        subject=f"sync:{crm}", public=True, link=LINK,
                        facts={"crm": crm, "since": iso(streak[0].finished_at),
                               "failures": len(streak), "message": streak[-1].message})
                    found.append(Episode(finding, streak[0].finished_at, until))
                streak = []
    return found
