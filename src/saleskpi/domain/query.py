"""What was asked: KPIs, slices, a period grain, a date range and filters."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _

Period = Literal["day", "week", "month", "quarter", "year", "all"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "year", "all")
# A target is for a bounded period: "all time" has no end to measure against.
TARGET_PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "year")
TRUNCATE_UNIT = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}
# The built-in slices; anything else is a custom field (``rep.<field>`` for the rep's).
DIMENSIONS = ("rep", "team", "source", "segment", "product", "pipeline")
Where = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class KpiQuery:
    kpis: tuple[str, ...]
    by: tuple[str, ...] = ()
    period: Period = "all"
    start: dt.date | None = None  # first day, inclusive, in the company's zone
    end: dt.date | None = None  # last day, inclusive
    where: Where = ()

    def where_dims(self) -> tuple[str, ...]:
        return tuple(dim for dim, _values in self.where)

    def dims(self) -> tuple[str, ...]:
        """Every slice a view must carry: the ones shown and the ones filtered on."""
        return tuple(dict.fromkeys((*self.by, *self.where_dims())))


@dataclass(frozen=True)
class Scope:
    """Whose data the caller may see. None means no limit on that level."""

    rep_ids: frozenset[str] | None = None
    teams: frozenset[str] | None = None

    def as_filters(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        filters: list[tuple[str, tuple[str, ...]]] = []
        if self.rep_ids is not None:
            filters.append(("rep", tuple(sorted(self.rep_ids))))
        if self.teams is not None:
            filters.append(("team", tuple(sorted(self.teams))))
        return tuple(filters)


EVERYTHING = Scope()


def parse_period(text: str, allowed: tuple[Period, ...] = PERIODS) -> Period:
    """``text`` as a period grain; a sentence naming the choices otherwise."""
    for option in allowed:
        if option == text.strip().lower():
            return option
    raise InvalidQuery(_("unknown period {period!r}; use one of {known}",
                         period=text, known=", ".join(allowed)), code="bad_period")


def parse_where(items: list[str] | tuple[str, ...]) -> Where:
    """``["team=Kyiv,London", "source=ads"]`` as filters: one parser for every surface."""
    filters = []
    for item in items:
        dim, sep, values = item.partition("=")
        found = tuple(v.strip() for v in values.split(",") if v.strip())
        if not sep or not dim.strip() or not found:
            raise InvalidQuery(_("--where expects DIM=VALUE (several values: DIM=A,B), "
                                 "got {item!r}", item=item), code="bad_where")
        filters.append((dim.strip(), found))
    return tuple(filters)


# Resource limits: one question must not keep the server busy for minutes. Each is
# refused at once, before anything is computed, with a sentence naming the limit.
# Dates a question may name: wide enough for any sales history, narrow enough that
# a period's end (and the company's zone) never leaves what a date can hold.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)
# The most periods one answer may have, per grain: ten years by day or week, twenty
# by month or quarter, every year a date may name by year.
MAX_PERIODS: dict[Period, int] = {"day": 3660, "week": 522, "month": 240, "quarter": 80,
                                  "year": 300}
MAX_KPIS = 50  # KPIs in one question
MAX_BY = 4  # slices in one question
# Ids and offsets are 64-bit integers in SQLite and DuckDB: nothing larger is asked.
MAX_ID = 2**63 - 1
# Rows × KPIs of one answer (every slice and period, before paging): about three
# seconds of work (a year by day for 458 reps is 167,170).
MAX_CELLS = 200_000


def check_date(day: dt.date | None, name: str = "date") -> None:
    """``InvalidQuery`` (``bad_date``) for a date outside MIN_DATE..MAX_DATE."""
    if day is not None and not MIN_DATE <= day <= MAX_DATE:
        raise InvalidQuery(_("{name} {day}: dates must lie between {low} and {high}",
                             name=name, day=day.isoformat(), low=MIN_DATE.isoformat(),
                             high=MAX_DATE.isoformat()), code="bad_date")


def check_range(start: dt.date | None, end: dt.date | None) -> None:
    check_date(start, "--from")
    check_date(end, "--to")
    if start and end and start > end:
        raise InvalidQuery(_("--from {start} is after --to {end}: swap the two dates",
                             start=start.isoformat(), end=end.isoformat()), code="bad_range")


def count_periods(first: dt.date, last: dt.date, period: Period) -> int:
    """How many periods of the grain touch [first, last], counted without listing them."""
    if period == "all" or first > last:
        return 1 if period == "all" else 0
    if period == "day":
        return (last - first).days + 1
    if period == "week":
        return (period_start(last, "week") - period_start(first, "week")).days // 7 + 1
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    return ((last.year * 12 + last.month - 1) // months
            - (first.year * 12 + first.month - 1) // months + 1)


def check_periods(first: dt.date | None, last: dt.date | None, period: Period) -> None:
    """``InvalidQuery`` (``too_many_periods``) when [first, last] by ``period`` is too long."""
    if period == "all" or first is None or last is None:
        return
    count, limit = count_periods(first, last, period), MAX_PERIODS[period]
    if count > limit:
        raise InvalidQuery(_("{count} periods by {period} asked; one answer has at most "
                             "{limit}: narrow --from/--to or choose a coarser --period",
                             count=count, period=period, limit=limit),
                           code="too_many_periods")


def check_cells(rows: int, kpis: int) -> None:
    """``InvalidQuery`` (``too_many_rows``) when rows × KPIs of an answer exceed MAX_CELLS."""
    if rows * max(kpis, 1) > MAX_CELLS:
        raise InvalidQuery(_("the answer would have {rows} rows × {kpis} KPIs; at most "
                             "{limit} values are computed at once: ask fewer KPIs or "
                             "slices, a shorter range, a coarser --period or add --where",
                             rows=rows, kpis=kpis, limit=MAX_CELLS), code="too_many_rows")


def make_query(kpis: list[str] | tuple[str, ...], *, by: list[str] | tuple[str, ...] = (),
               period: str = "all", start: dt.date | None = None, end: dt.date | None = None,
               where: list[str] | tuple[str, ...] = ()) -> KpiQuery:
    """A scorecard question from what a user typed, checked the same way everywhere."""
    if not kpis:
        raise InvalidQuery(_("ask for at least one KPI; see 'saleskpi kpis'"), code="no_kpi")
    kpis, by = tuple(dict.fromkeys(kpis)), tuple(dict.fromkeys(by))  # asked twice: once
    if len(kpis) > MAX_KPIS:
        raise InvalidQuery(_("{count} KPIs asked; one question has at most {limit}",
                             count=len(kpis), limit=MAX_KPIS), code="too_many_kpis")
    if len(by) > MAX_BY:
        raise InvalidQuery(_("{count} slices asked; one question has at most {limit}",
                             count=len(by), limit=MAX_BY), code="too_many_slices")
    check_range(start, end)
    grain = parse_period(period)
    check_periods(start, end, grain)
    return KpiQuery(kpis, by, grain, start, end, parse_where(where))


def period_start(day: dt.date, period: Period) -> dt.date:
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    raise ValueError(period)


def next_period(start: dt.date, period: Period) -> dt.date:
    if period == "day":
        return start + dt.timedelta(days=1)
    if period == "week":
        return start + dt.timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return dt.date(start.year + month // 12, month % 12 + 1, 1)


def periods_between(first: dt.date, last: dt.date, period: Period) -> Iterator[dt.date]:
    """Starts of the periods that touch [first, last]."""
    current = period_start(first, period)
    while current <= last:
        yield current
        current = next_period(current, period)


def local_midnight_utc(day: dt.date, zone: str) -> dt.datetime:
    """The UTC instant at which ``day`` begins in ``zone`` (naive, as stored)."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=zoneinfo.ZoneInfo(zone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


@dataclass
class KpiValue:
    value: float | None
    unit: str
    numerator: float | None = None
    denominator: float | None = None
    is_ratio: bool = False
    # 95% Wilson interval, for proportions
    ci_low: float | None = None
    ci_high: float | None = None
    # Why there is no value: "data:<entity>" (nothing imported that it needs) or
    # "by:<slice>" (the KPI cannot be split that way, e.g. spend by rep).
    unavailable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"value": plain_number(self.value), "unit": self.unit}
        if self.is_ratio:
            out["numerator"] = plain_number(self.numerator)
            out["denominator"] = plain_number(self.denominator)
        if self.ci_low is not None:
            out["ci_low"] = plain_number(self.ci_low)
            out["ci_high"] = plain_number(self.ci_high)
        if self.unavailable:
            out["needs"] = [u.split(":", 1)[1] for u in self.unavailable if u.startswith("data:")]
            out["not_by"] = [u.split(":", 1)[1] for u in self.unavailable if u.startswith("by:")]
        return out


def plain_number(number: float | None) -> float | int | None:
    """Whole numbers as integers in JSON (208, not 208.0); others rounded to 6 places."""
    if number is None:
        return None
    if float(number).is_integer():
        return int(number)
    return round(number, 6)


@dataclass
class ResultRow:
    keys: dict[str, str | None]  # slice values and "period"
    values: dict[str, KpiValue] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # e.g. rep_name
    # False when the row is only there to complete the grid (an idle rep, a month
    # without sales): its values are zeros or empty.
    from_data: bool = True


@dataclass
class Scorecard:
    query: KpiQuery
    rows: list[ResultRow]
    totals: list[ResultRow]
    units: dict[str, str]


@dataclass(frozen=True)
class Sums:
    """KPIs that add up, as plain numbers by key: no grid, no rows (``Engine.sums``).

    ``values``: key texts (in ``keys``' order: the query's ``by``, then "period") ->
    KPI -> value, for the keys the data has; a key not listed holds zeros.
    """

    keys: tuple[str, ...]
    values: dict[tuple[str | None, ...], dict[str, float]]
