"""Checks that judge whole days (plan pace, KPI values): one sample per company day.

An evaluation at any moment of a day judges the day before (the last complete one):
a pace measured at 10:00 would count the whole day as expected while only an hour
of it was worked. So the sample of day D holds from D+1 00:00 (company time) until
the next day's sample; consecutive days on which a subject's condition held make
one episode.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from saleskpi.domain.alert_states import Episode, Finding
from saleskpi.service.alert_checks.base import CheckContext

# One day's findings by subject, or None when the day has nothing to judge.
DayCheck = Callable[[dt.date], dict[str, Finding] | None]


def judged_days(ctx: CheckContext, start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The days whose samples hold at some moment of [start, end]."""
    first = ctx.local_day(start) - dt.timedelta(days=1)
    last = ctx.local_day(end) - dt.timedelta(days=1)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def day_episodes(ctx: CheckContext, start: dt.datetime, end: dt.datetime,
                 check: DayCheck) -> list[Episode] | None:
    """Episodes from the samples of the days judged in [start, end]; None when no day
    had anything to judge."""
    days = judged_days(ctx, start, end)
    open_: dict[str, tuple[dt.date, Finding]] = {}
    found: list[Episode] = []
    judged = False
    for day in days:
        today = check(day)
        judged = judged or today is not None
        today = today or {}
        for subject in [s for s in open_ if s not in today]:
            first, finding = open_.pop(subject)
            found.append(Episode(finding, ctx.day_starts(first + dt.timedelta(days=1)),
                                 ctx.day_starts(day + dt.timedelta(days=1))))
        for subject, finding in today.items():
            first = open_[subject][0] if subject in open_ else day
            open_[subject] = (first, finding)  # the latest facts
    for first, finding in open_.values():
        found.append(Episode(finding, ctx.day_starts(first + dt.timedelta(days=1)), None))
    return found if judged else None
