"""The filter bar: period, grain and slices, read from (and written back to) the URL.

Filters travel in the query string, so any view can be bookmarked or shared; forms
use GET. Malformed values are reported on the page and ignored, not a 422.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.periods import RangeName, parse_range, resolve_range
from saleskpi.domain.query import DIMENSIONS as SLICES
from saleskpi.domain.query import (
    MAX_DATE,
    MAX_PERIODS,
    MIN_DATE,
    PERIODS,
    Period,
    Where,
    count_periods,
)
from saleskpi.surfaces.web.i18n import _

# Every slice of the query vocabulary, team and rep first (the filter bar's order).
DIMENSIONS = ("team", "rep", *(d for d in SLICES if d not in ("team", "rep")))
FILTER_KEYS = ("from", "to", "period", "range", *DIMENSIONS)
# Parameters that pick a download, not a view: never carried into links.
NOT_CARRIED = ("export", "format")
MAX_VALUE = 200


@dataclass(frozen=True)
class Filters:
    start: dt.date | None = None
    end: dt.date | None = None
    period: Period = "all"
    slices: tuple[tuple[str, str], ...] = ()  # (dimension, "value[,value]")
    errors: tuple[str, ...] = ()
    # How the dates were chosen: given ("custom"), a named range (default month to date).
    range_name: RangeName = "custom"
    partial: bool = False

    def value(self, dim: str) -> str:
        return dict(self.slices).get(dim, "")

    def where(self, *, without: Iterable[str] = ()) -> Where:
        skip = set(without)
        where = ((dim, tuple(v.strip() for v in text.split(",") if v.strip()))
                 for dim, text in self.slices if dim not in skip)
        return tuple((dim, values) for dim, values in where if values)

    @property
    def grain(self) -> Period:
        """The period grain of trend charts: the chosen one, or months (or coarser, when
        the range has more months than one answer may have)."""
        return self.period if self.period != "all" else fitting_grain(self.start, self.end,
                                                                      "month")

    def single(self, dim: str) -> str | None:
        """The one value of a slice, if exactly one is chosen."""
        values = dict(self.where()).get(dim, ())
        return values[0] if len(values) == 1 else None


def _date(params: QueryParams, name: str, errors: list[str]) -> dt.date | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        errors.append(_("{field}: {value!r} is not a date; write it as YYYY-MM-DD",
                        field=name, value=text[:40]))
        return None
    if not MIN_DATE <= day <= MAX_DATE:
        errors.append(_("{field}: {day} is ignored; dates must lie between {low} and {high}",
                        field=name, day=day.isoformat(), low=MIN_DATE.isoformat(),
                        high=MAX_DATE.isoformat()))
        return None
    return day


def parse_filters(params: QueryParams, today: dt.date | None = None) -> Filters:
    """The filters of the URL; with ``today`` (the company's), no dates mean ``range``:
    month to date by default (all time with a period grain)."""
    errors: list[str] = []
    start, end = _date(params, "from", errors), _date(params, "to", errors)
    if start and end and start > end:
        errors.append(_("'from' is after 'to'; the dates were swapped"))
        start, end = end, start
    period_text = params.get("period", "all") or "all"
    period: Period = next((p for p in PERIODS if p == period_text), "all")
    if period_text != period:
        errors.append(_("unknown period {period!r}; use one of {known}",
                        period=period_text[:40], known=", ".join(PERIODS)))
    range_name: RangeName = "custom"
    partial = False
    if today is not None:
        try:
            named = parse_range(params.get("range"))
        except InvalidQuery as exc:
            errors.append(exc.message)
            named = None
        dates = resolve_range(today, start, end, named, period)
        start, end, range_name, partial = dates.start, dates.end, dates.name, dates.partial
    fitting = fitting_grain(start, end, period)
    if fitting != period:
        errors.append(_("{period}: too many periods from {start} to {end}; shown by {grain}",
                        period=period, start=start, end=end, grain=fitting))
        period = fitting
    slices = []
    for dim in DIMENSIONS:
        text = params.get(dim, "").strip()
        if len(text) > MAX_VALUE:
            errors.append(_("{field}: the value is too long", field=dim))
        elif text:
            slices.append((dim, text))
    return Filters(start, end, period, tuple(slices), tuple(errors), range_name, partial)


def as_people(filters: Filters, person_of: Callable[[str], str | None]) -> Filters:
    """``filters`` with each rep named by the person key it stands for (``person_of``:
    a rep's name or any source's id, when it is one person's), so that the rep box
    shows the person a link named by an old CRM's id (``?rep=o1``) is filtered to."""
    slices = tuple((dim, ",".join(person_of(v.strip()) or v.strip() for v in text.split(",")
                                  if v.strip())) if dim == "rep" else (dim, text)
                   for dim, text in filters.slices)
    return replace(filters, slices=slices) if slices != filters.slices else filters


def within(filters: Filters, teams: set[str], reps: set[str]) -> Filters:
    """``filters`` less the teams and reps the user may not see (``reps``: ids and names),
    each named on the page.

    A team lead opening a link the head of sales shared (``?team=London``) would get an
    empty page with "all" in the team box; instead the page says so and shows their own.
    The same words whether the team exists or not: nothing is learned of other teams.
    """
    kept: list[tuple[str, str]] = []
    errors = list(filters.errors)
    for dim, text in filters.slices:
        if dim in ("team", "rep"):
            allowed = teams if dim == "team" else reps
            values = [v.strip() for v in text.split(",") if v.strip()]
            for value in (v for v in values if v not in allowed):
                errors.append(_("{field} {value!r} is not among those you may see: left out",
                                field=dim, value=value[:40]))
            text = ",".join(v for v in values if v in allowed)
            if not text:
                continue
        kept.append((dim, text))
    return replace(filters, slices=tuple(kept), errors=tuple(errors))


def fitting_grain(start: dt.date | None, end: dt.date | None, period: Period) -> Period:
    """``period``, or the first coarser grain whose periods from start to end fit in one
    answer (a page shows what it can instead of refusing)."""
    if period == "all" or start is None or end is None:
        return period
    for grain in PERIODS[PERIODS.index(period):-1]:
        if count_periods(start, end, grain) <= MAX_PERIODS[grain]:
            return grain
    return "all"


def quick_ranges(today: dt.date) -> list[tuple[str, dt.date | None, dt.date | None]]:
    """Common ranges for one click: this and last month, this quarter, this year, all time
    (no dates)."""
    month = today.replace(day=1)
    last_month_end = month - dt.timedelta(days=1)
    quarter = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    return [
        (_("This month"), month, today),
        (_("Last month"), last_month_end.replace(day=1), last_month_end),
        (_("This quarter"), quarter, today),
        (_("This year"), today.replace(month=1, day=1), today),
        (_("All time"), None, None),
    ]


def link(path: str, params: QueryParams | Mapping[str, str],
         **overrides: str | Sequence[str] | None) -> str:
    """``path`` with the current query, some parameters replaced (None removes them)."""
    items = params.multi_items() if isinstance(params, QueryParams) else list(params.items())
    kept = [(k, v) for k, v in items if k not in overrides and k not in NOT_CARRIED]
    for key, value in overrides.items():
        if value is None or value == "":
            continue
        if isinstance(value, str):
            kept.append((key, value))
        else:
            kept += [(key, v) for v in value]
    return f"{path}?{urlencode(kept)}" if kept else path
