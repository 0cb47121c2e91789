"""Which days a question covers when none are given, and what it is compared with.

* Without ``--from``/``--to`` a question covers **month to date** (the month of today,
  in the company's time zone, up to today); ``--range`` picks another window
  (``wtd``, ``qtd``, ``ytd``, ``last_month``, ``all``). With a period grain
  (``--period month``) and no dates the default is all time: a trend.
* A range that runs to date is compared with **the same days of the period before**
  (1–2 December with 1–2 November, not with 29–30 November), or with the same days a
  year before (``against="last_year"``).
* A period is **partial** when the question covers only part of it, or it is not
  over yet: charts mark it so that a month two days old does not read as a collapse.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.query import Period, next_period, period_start

RangeName = Literal["mtd", "wtd", "qtd", "ytd", "last_month", "all", "custom"]
RANGES: tuple[RangeName, ...] = ("mtd", "wtd", "qtd", "ytd", "last_month", "all")
DEFAULT_RANGE: RangeName = "mtd"
Against = Literal["previous", "last_year"]
AGAINST: tuple[Against, ...] = ("previous", "last_year")
# Each "to date" range and the calendar period it runs through.
TO_DATE: dict[str, Period] = {"wtd": "week", "mtd": "month", "qtd": "quarter", "ytd": "year"}
MONTHS_OF: dict[Period, int] = {"month": 1, "quarter": 3, "year": 12}


def parse_range(text: str | None) -> RangeName | None:
    """``--range`` as typed (code ``unknown_range``); None when not given."""
    if text is None or not text.strip():
        return None
    cleaned = text.strip().lower().replace("-", "_")
    for name in RANGES:
        if name == cleaned:
            return name
    raise InvalidQuery(_("unknown range {range!r}; use one of {known}", range=text,
                         known=", ".join(RANGES)), code="unknown_range")


def parse_against(text: str | None) -> Against:
    """``--against``: previous (default) or last_year (code ``bad_against``)."""
    cleaned = (text or "previous").strip().lower().replace("-", "_")
    for name in AGAINST:
        if name == cleaned:
            return name
    raise InvalidQuery(_("unknown comparison {against!r}; use previous or last_year",
                         against=text), code="bad_against")


@dataclass(frozen=True)
class DateRange:
    """The days a question covers (None: unbounded), how they were chosen, and whether
    they end before the calendar period they belong to does (``partial``)."""

    start: dt.date | None
    end: dt.date | None
    name: RangeName
    partial: bool

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "from": _iso(self.start), "to": _iso(self.end),
                "partial": self.partial}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def resolve_range(today: dt.date, start: dt.date | None, end: dt.date | None,
                  name: RangeName | None, grain: Period = "all") -> DateRange:
    """The days asked: ``start``/``end`` if either is given, else the named range, else
    month to date (all time with a period grain)."""
    if start is not None or end is not None:
        return DateRange(start, end, "custom", range_is_partial(start, end, today))
    chosen: RangeName = name or (DEFAULT_RANGE if grain == "all" else "all")
    if chosen == "all":
        return DateRange(None, None, "all", False)
    if chosen == "last_month":
        last = period_start(today, "month") - dt.timedelta(days=1)
        return DateRange(period_start(last, "month"), last, "last_month", False)
    first = period_start(today, TO_DATE[chosen])
    return DateRange(first, today, chosen, range_is_partial(first, today, today))


def range_is_partial(start: dt.date | None, end: dt.date | None, today: dt.date) -> bool:
    """Whether [start, end] reaches today (the day is not over), or stops short of the end
    of the calendar month it ends in while starting on a month's first day (to date)."""
    if end is None:
        return False
    if end >= today:
        return True
    return start is not None and start.day == 1 and start <= end \
        and (end + dt.timedelta(days=1)).day != 1


def period_is_partial(first: dt.date, grain: Period, start: dt.date | None,
                      end: dt.date | None, today: dt.date) -> bool:
    """Whether the ``grain`` period starting ``first`` is only partly covered by
    [start, end], or is not over by ``today``."""
    if grain == "all":
        return False
    last = next_period(first, grain) - dt.timedelta(days=1)
    covered_to = min(x for x in (last, end, today) if x is not None)
    covered_from = max(first, start) if start else first
    return covered_from > first or covered_to < last


def shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, kept within the month (31 March − 1 → 29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Before:
    """The days a range is compared with and the rule that chose them: ``months`` (whole
    months, the same number before), ``to_date`` (the same days of the period before),
    ``days`` (the same number of days just before), ``last_year`` (the same days a year
    before)."""

    start: dt.date
    end: dt.date
    rule: Literal["months", "to_date", "days", "last_year"]


def to_date_grain(start: dt.date, end: dt.date) -> Period | None:
    """The calendar period [start, end] runs through from its first day, short of its end."""
    for grain in ("month", "quarter", "year"):
        months = MONTHS_OF[grain]
        if period_start(start, grain) == start and period_start(end, grain) == start:
            last = shift_months(start, months) - dt.timedelta(days=1)
            if end < last:
                return grain
    return None


def before(start: dt.date, end: dt.date, against: Against = "previous") -> Before:
    """What [start, end] is compared with.

    ``last_year``: the same days a year before. ``previous``: whole calendar months →
    the same number of whole months before (March → February); a month, quarter or
    year to date → the same days of the one before (1–2 December → 1–2 November);
    any other range → the same number of days just before it.
    """
    if end < start:
        raise ValueError("end before start")
    if against == "last_year":
        return Before(shift_months(start, -12), shift_months(end, -12), "last_year")
    day_before = start - dt.timedelta(days=1)
    if start.day == 1 and (end + dt.timedelta(days=1)).day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        return Before(shift_months(start, -months), day_before, "months")
    grain = to_date_grain(start, end)
    if grain is not None:
        months = MONTHS_OF[grain]
        return Before(shift_months(start, -months), shift_months(end, -months), "to_date")
    days = (end - start).days + 1
    return Before(start - dt.timedelta(days=days), day_before, "days")
