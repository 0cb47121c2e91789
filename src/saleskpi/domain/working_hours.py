"""The company's working time: hours of the day on working days, in its time zone.

A working day is Monday to Friday less the company's ``holidays`` (as plans' pacing
counts them); its working hours are the ``working_hours`` setting (``09:00-18:00``
by default) in the company's time zone. Alert deadlines count only working time: a
lead that arrives at 23:00 with a 5-minute SLA is due at 09:05 the next working day.

Instants are naive UTC, as the stores keep them; pure arithmetic, no clock.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
DAY_MINUTES = 24 * 60
# A deadline further than this is a mistake (a working time of years): stop looking.
MAX_DAYS = 3 * 366


def parse_hours(text: str) -> tuple[int, int]:
    """``"09:00-18:00"`` as minutes of the day (540, 1080); ``24:00`` ends the day."""
    match = _HOURS.match(text or "")
    if match is None:
        raise ValueError(f"working hours {text!r} are not like 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= DAY_MINUTES or end > DAY_MINUTES or start >= end:
        raise ValueError(f"working hours {text!r}: the start must come before the end, "
                         "both between 00:00 and 24:00")
    return start, end


@dataclass(frozen=True)
class WorkingTime:
    """Working hours ``start``-``end`` (minutes of the day) of working days in ``zone``."""

    start: int
    end: int
    zone: str
    holidays: frozenset[dt.date] = frozenset()

    @classmethod
    def of(cls, hours: str, zone: str, holidays: Collection[dt.date] = ()) -> WorkingTime:
        start, end = parse_hours(hours)
        return cls(start, end, zone, frozenset(holidays))

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def local_day(self, moment: dt.datetime) -> dt.date:
        """The company's date at ``moment`` (naive UTC)."""
        return moment.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(self.zone)).date()

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """``day``'s working hours as naive UTC instants (whatever the day is)."""
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=zoneinfo.ZoneInfo(self.zone))
        return (_utc(midnight + dt.timedelta(minutes=self.start)),
                _utc(midnight + dt.timedelta(minutes=self.end)))

    def add(self, moment: dt.datetime, seconds: float) -> dt.datetime:
        """The instant at which ``seconds`` of working time have passed since ``moment``.

        Outside working hours the clock waits for the next working hours to begin;
        ``seconds`` of 0 is the first working instant at or after ``moment``.
        """
        left = dt.timedelta(seconds=seconds)
        day = self.local_day(moment)
        for _ in range(MAX_DAYS):
            if self.is_working_day(day):
                opens, closes = self.window(day)
                begin = max(moment, opens)
                if begin < closes:
                    if begin + left <= closes:
                        return begin + left
                    left -= closes - begin
            day += dt.timedelta(days=1)
        raise ValueError("no working time within three years: check the holidays")

    def between(self, first: dt.datetime, last: dt.datetime) -> float:
        """Seconds of working time in [first, last) (0 when ``last`` is not later)."""
        if last <= first:
            return 0.0
        total = 0.0
        day, final = self.local_day(first), self.local_day(last)
        while day <= final:
            if self.is_working_day(day):
                opens, closes = self.window(day)
                begin, end = max(first, opens), min(last, closes)
                if end > begin:
                    total += (end - begin).total_seconds()
            day += dt.timedelta(days=1)
        return total


def _utc(local: dt.datetime) -> dt.datetime:
    return local.astimezone(dt.UTC).replace(tzinfo=None)
