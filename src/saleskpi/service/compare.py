"""Reps side by side: the comparison table and the leaderboard.

Both are plain data built from ``SalesKpiService.scorecard`` so that the CLI, the
API and the web page show the same marks and the same ranks. Nothing here prints.

Comparison: every rep in the query's scope is a row (reps with no data too), every
KPI a column. Each rep's value is set against the team average (the mean over
the reps that have a value, ``saleskpi.service.core.averages``): the relative
difference ``(value - average) / |average|``, and a mark, "better" or "worse",
when that difference is beyond the threshold, in the KPI's own direction
(``higher_is_better``). The team average is taken over the reps of the query
active in the period (``saleskpi.service.core.averages``);
``Comparison.filtered`` hides rows but does not change it.

Leaderboard: reps ranked on one KPI, best first; ties share a rank (1, 2, 2, 4);
reps without a value come last, unranked. With a date range the ranks are set
against the previous period of the same length (``previous_range``); with a
period grain, against the period before.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from saleskpi.domain.conditions import Threshold
from saleskpi.domain.i18n import _
from saleskpi.domain.periods import Against, before
from saleskpi.domain.query import (
    EVERYTHING,
    KpiQuery,
    KpiValue,
    ResultRow,
    Scope,
    period_start,
    plain_number,
)

if TYPE_CHECKING:
    from saleskpi.service.core import SalesKpiService

DEFAULT_KPIS: tuple[str, ...] = (
    "calls", "meetings", "call_to_meeting_conversion", "deals_won", "revenue", "win_rate",
    "average_deal_size", "lead_response_time", "speed_to_lead_5min",
)
DEFAULT_THRESHOLD = 0.10
# Strengths and weaknesses listed per rep, most pronounced first.
HIGHLIGHTS = 3
# Float noise must not push a value that is exactly at the threshold over it.
_EPSILON = 1e-9

Mark = Literal["better", "worse"]
Position = Literal["above", "below"]


# -- comparison ----------------------------------------------------------------------


@dataclass
class Cell:
    """One rep's value of one KPI, set against the team average."""

    value: float | None
    unit: str
    numerator: float | None = None
    denominator: float | None = None
    is_ratio: bool = False
    # (value - average) / |average|; None when either is missing, or when the
    # average is 0 and the value is not (the difference is then unbounded).
    vs_average: float | None = None
    position: Position | None = None  # beyond the threshold: above or below the average
    mark: Mark | None = None  # the same, in the KPI's direction
    ci_low: float | None = None  # 95% interval of a proportion, as the scorecard gives it
    ci_high: float | None = None

    def goodness(self, higher_is_better: bool) -> float:
        """How much better than average (negative: worse), for ordering highlights."""
        if self.position is None:
            return 0.0
        if self.vs_average is None:
            difference = math.inf if self.position == "above" else -math.inf
        else:
            difference = self.vs_average
        return difference if higher_is_better else -difference

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "value": plain_number(self.value),
            "numerator": plain_number(self.numerator),
            "denominator": plain_number(self.denominator),
            "unit": self.unit,
            "vs_average": plain_number(self.vs_average),
            "mark": self.mark,
        }
        return out | _interval(self.ci_low, self.ci_high)


def _interval(low: float | None, high: float | None) -> dict[str, object]:
    """``ci_low``/``ci_high`` where the scorecard gives an interval (proportions)."""
    if low is None:
        return {}
    return {"ci_low": plain_number(low), "ci_high": plain_number(high)}


@dataclass
class RepRow:
    rep: str
    name: str
    period: str | None
    cells: dict[str, Cell]
    strengths: list[str] = field(default_factory=list)  # KPI keys, most pronounced first
    weaknesses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rep": self.rep,
            "rep_name": self.name,
            "period": self.period,
            "values": {key: cell.to_dict() for key, cell in self.cells.items()},
            "strengths": list(self.strengths),
            "weaknesses": list(self.weaknesses),
        }


@dataclass
class SummaryRow:
    """The team-average or the total row of one period."""

    period: str | None
    values: dict[str, KpiValue]

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "values": {key: {"value": plain_number(v.value),
                             "numerator": plain_number(v.numerator),
                             "denominator": plain_number(v.denominator),
                             "unit": v.unit,
                             **_interval(v.ci_low, v.ci_high)}
                       for key, v in self.values.items()},
        }


@dataclass
class Comparison:
    query: KpiQuery  # with the KPIs compared and by=("rep",)
    kpis: list[str]
    threshold: float
    higher_is_better: dict[str, bool]
    units: dict[str, str]
    rows: list[RepRow]
    averages: list[SummaryRow]
    totals: list[SummaryRow]
    timezone: str = "UTC"
    currency: str = "USD"

    def periods(self) -> list[str | None]:
        """The periods in order (one, None, unless a period grain was asked)."""
        seen = dict.fromkeys(s.period for s in self.averages)
        seen.update(dict.fromkeys(r.period for r in self.rows))
        return sorted(seen, key=lambda p: (p is None, p or ""))

    def average(self, period: str | None) -> SummaryRow | None:
        return next((s for s in self.averages if s.period == period), None)

    def total(self, period: str | None) -> SummaryRow | None:
        return next((s for s in self.totals if s.period == period), None)

    def sorted_by(self, kpi: str, descending: bool | None = None) -> Comparison:
        """Rows ordered on one KPI within each period; no value last either way.

        ``descending=None`` puts the best first: descending when higher is
        better, ascending otherwise (e.g. lead response time).
        """
        if kpi not in self.higher_is_better:
            raise KeyError(kpi)
        if descending is None:
            descending = self.higher_is_better[kpi]
        sign = -1.0 if descending else 1.0
        order = {p: i for i, p in enumerate(self.periods())}

        def key(row: RepRow) -> tuple[int, bool, float, str, str]:
            value = row.cells[kpi].value
            return (order[row.period], value is None, sign * (value or 0.0),
                    row.name.casefold(), row.rep)

        return replace(self, rows=sorted(self.rows, key=key))

    def filtered(self, conditions: Iterable[Threshold]) -> Comparison:
        """Only the rows meeting every condition; a rep with no value meets none."""
        conditions = list(conditions)
        for condition in conditions:
            if condition.kpi not in self.higher_is_better:
                raise KeyError(condition.kpi)
        rows = [r for r in self.rows
                if all(c.holds(r.cells[c.kpi].value) for c in conditions)]
        return replace(self, rows=rows)

    def to_dict(self) -> dict[str, Any]:
        query = self.query
        return {
            "kpis": list(self.kpis),
            "period": query.period,
            "from": query.start.isoformat() if query.start else None,
            "to": query.end.isoformat() if query.end else None,
            "where": {dim: list(values) for dim, values in query.where},
            "timezone": self.timezone,
            "currency": self.currency,
            "threshold": self.threshold,
            "higher_is_better": dict(self.higher_is_better),
            "rows": [r.to_dict() for r in self.rows],
            "averages": [a.to_dict() for a in self.averages],
            "totals": [t.to_dict() for t in self.totals],
        }

    def to_csv(self) -> str:
        """One line per rep, then the averages and totals (column ``row`` says which).

        Text cells that a spreadsheet would run as formulas are neutralised.
        """
        from saleskpi.domain.text import safe_cell

        grain = self.query.period != "all"
        ratios = {k for k in self.kpis if any(r.cells[k].is_ratio for r in self.rows)
                  or any(t.values[k].is_ratio for t in self.totals)}
        header = ["row", "rep", "rep_name", *(["period"] if grain else [])]
        for key in self.kpis:
            header.append(key)
            if key in ratios:
                header += [f"{key}_numerator", f"{key}_denominator"]
            header += [f"{key}_vs_average", f"{key}_mark"]
        header += ["strengths", "weaknesses"]

        def line(kind: str, rep: str | None, name: str | None, period: str | None,
                 values: dict[str, Any], strengths: Sequence[str] = (),
                 weaknesses: Sequence[str] = ()) -> list[object]:
            cells: list[object] = [kind, rep, name, *([period] if grain else [])]
            for key in self.kpis:
                value = values[key]
                cells.append(plain_number(value.value))
                if key in ratios:
                    cells += [plain_number(value.numerator), plain_number(value.denominator)]
                if isinstance(value, Cell):
                    cells += [plain_number(value.vs_average), value.mark]
                else:
                    cells += [None, None]
            cells += [";".join(strengths), ";".join(weaknesses)]
            return [safe_cell(c) for c in cells]

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in self.rows:
            writer.writerow(line("rep", row.rep, row.name, row.period, row.cells,
                                 row.strengths, row.weaknesses))
        for kind, summaries in (("average", self.averages), ("total", self.totals)):
            for summary in summaries:
                writer.writerow(line(kind, None, None, summary.period, summary.values))
        return buffer.getvalue()


def against_average(value: float | None, average: float | None, *, higher_is_better: bool,
                    threshold: float) -> tuple[float | None, Position | None, Mark | None]:
    """The relative difference from the average, and the position and mark beyond ``threshold``."""
    if value is None or average is None:
        return None, None, None
    difference = value - average
    if average != 0:
        relative: float | None = difference / abs(average)
        beyond = abs(difference / average) > threshold + _EPSILON
    else:
        relative = 0.0 if value == 0 else None
        beyond = abs(difference) > _EPSILON
    if not beyond:
        return relative, None, None
    position: Position = "above" if difference > 0 else "below"
    mark: Mark = "better" if (difference > 0) == higher_is_better else "worse"
    return relative, position, mark


def compare(service: SalesKpiService, query: KpiQuery, scope: Scope = EVERYTHING,
            threshold: float = DEFAULT_THRESHOLD, *, now: dt.datetime | None = None,
            highlights: int = HIGHLIGHTS, totals: bool = True) -> Comparison:
    """Every rep in ``scope`` against the team average on ``query.kpis`` (default KPIs if empty).

    ``query.by`` is ignored: the rows are always reps. ``query.period`` may be a
    grain; each period is then compared with its own average. ``totals=False``: no
    total rows (a rep's page shows none; the totals are a company-wide question of
    their own, by team, when cut for a team).
    """
    from saleskpi.service.core import averages

    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(_("the threshold must be a number of 0 or more, e.g. 0.1 for 10%"))
    kpis = tuple(dict.fromkeys(query.kpis or DEFAULT_KPIS))
    asked = replace(query, kpis=kpis, by=("rep",))
    card = service.scorecard(asked, scope, totals=totals, now=now)
    higher = {key: service.catalog.get(key).higher_is_better for key in kpis}
    average_rows = averages(card) if card.rows else []
    if scope.rep_ids is not None and len(scope.rep_ids) == 1 and scope.teams is None:
        # A rep sees only their own row: the average of that one row would be their
        # own figures. Their team's average (an aggregate, no team mate's row) is
        # what they compare themselves with.
        (rep_id,) = scope.rep_ids
        average_rows = service.team_average(asked, rep_id, now=now)
    mean_of = {r.keys.get("period"): r for r in average_rows}
    rows = []
    for result in card.rows:
        period = result.keys.get("period")
        average = mean_of.get(period)
        cells = {key: _cell(result.values[key],
                            average.values[key].value if average else None,
                            higher_is_better=higher[key], threshold=threshold)
                 for key in kpis}
        rep = result.keys.get("rep") or ""
        row = RepRow(rep, result.labels.get("rep_name") or rep, period, cells)
        row.strengths, row.weaknesses = _highlights(cells, higher, highlights)
        rows.append(row)
    rows.sort(key=lambda r: (r.period is None, r.period or "", r.name.casefold(), r.rep))
    settings = service.settings
    return Comparison(
        query=asked, kpis=list(kpis), threshold=threshold, higher_is_better=higher,
        units=dict(card.units), rows=rows,
        averages=[_summary(r) for r in average_rows], totals=[_summary(r) for r in card.totals],
        timezone=settings.timezone, currency=settings.currency,
    )


def _cell(value: KpiValue, average: float | None, *, higher_is_better: bool,
          threshold: float) -> Cell:
    relative, position, mark = against_average(
        value.value, average, higher_is_better=higher_is_better, threshold=threshold)
    return Cell(value.value, value.unit, value.numerator, value.denominator, value.is_ratio,
                relative, position, mark, value.ci_low, value.ci_high)


def _highlights(cells: dict[str, Cell], higher: dict[str, bool],
                count: int) -> tuple[list[str], list[str]]:
    """The KPIs where the rep is furthest above (strengths) and below (weaknesses) average."""
    score = {key: cell.goodness(higher[key]) for key, cell in cells.items()}
    better = sorted((k for k, c in cells.items() if c.mark == "better"), key=lambda k: -score[k])
    worse = sorted((k for k, c in cells.items() if c.mark == "worse"), key=lambda k: score[k])
    return better[:count], worse[:count]


def _summary(row: ResultRow) -> SummaryRow:
    return SummaryRow(row.keys.get("period"), dict(row.values))


# -- leaderboard -----------------------------------------------------------------------


_Ranks = dict[str, tuple[int | None, float | None]]  # rep -> (rank, value)


@dataclass(frozen=True)
class PreviousPeriod:
    """What ranks are compared with.

    ``rule`` is "months" (the range is whole calendar months: the same number of
    whole months just before), "to_date" (a month, quarter or year to date: the same
    days of the one before), "days" (the same number of days just before),
    "last_year" (the same days a year before) or "period" (a period grain: each
    period against the one before; ``start`` and ``end`` are then the period before
    the first one shown).
    """

    start: dt.date
    end: dt.date
    rule: Literal["months", "to_date", "days", "last_year", "period"]

    def to_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "rule": self.rule}


def previous_range(start: dt.date, end: dt.date, against: Against = "previous"
                   ) -> PreviousPeriod:
    """What [start, end] is compared with (``saleskpi.domain.periods.before``).

    Whole calendar months map to the same number of whole months before (March
    → February, Q2 → Q1), a month to date to the same days of the month before
    (1–2 December → 1–2 November), any other range to the same number of days just
    before it; ``against="last_year"``: the same days a year before.
    """
    found = before(start, end, against)
    return PreviousPeriod(found.start, found.end, found.rule)


@dataclass
class Standing:
    rep: str
    name: str
    period: str | None
    value: KpiValue
    rank: int | None  # None: no value, unranked
    previous_rank: int | None = None
    previous_value: float | None = None

    @property
    def rank_change(self) -> int | None:
        """Places gained since the previous period (negative: lost)."""
        if self.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.rank

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "rep": self.rep,
            "rep_name": self.name,
            "period": self.period,
            "value": plain_number(self.value.value),
            "numerator": plain_number(self.value.numerator),
            "denominator": plain_number(self.value.denominator),
            "previous_rank": self.previous_rank,
            "previous_value": plain_number(self.previous_value),
            "rank_change": self.rank_change,
        }


@dataclass
class Leaderboard:
    query: KpiQuery
    kpi: str
    unit: str
    is_ratio: bool
    higher_is_better: bool
    rows: list[Standing]
    previous: PreviousPeriod | None  # None: no rank change (no date range or grain)

    def top(self, count: int) -> Leaderboard:
        """Reps ranked ``count`` or better; all of a tie at the cut are kept."""
        return replace(self, rows=[r for r in self.rows
                                   if r.rank is not None and r.rank <= count])

    def to_dict(self) -> dict[str, Any]:
        query = self.query
        return {
            "kpi": self.kpi,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "period": query.period,
            "from": query.start.isoformat() if query.start else None,
            "to": query.end.isoformat() if query.end else None,
            "where": {dim: list(values) for dim, values in query.where},
            "previous": self.previous.to_dict() if self.previous else None,
            "rows": [r.to_dict() for r in self.rows],
        }

    def to_csv(self) -> str:
        from saleskpi.domain.text import safe_cell

        grain = self.query.period != "all"
        header = ["rank", "rep", "rep_name", *(["period"] if grain else []), self.kpi]
        if self.is_ratio:
            header += [f"{self.kpi}_numerator", f"{self.kpi}_denominator"]
        header += ["previous_rank", "rank_change"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in self.rows:
            cells: list[object] = [row.rank, row.rep, row.name,
                                   *([row.period] if grain else []),
                                   plain_number(row.value.value)]
            if self.is_ratio:
                cells += [plain_number(row.value.numerator),
                          plain_number(row.value.denominator)]
            cells += [row.previous_rank, row.rank_change]
            writer.writerow([safe_cell(c) for c in cells])
        return buffer.getvalue()


def rank(values: dict[str, float | None], *, higher_is_better: bool) -> dict[str, int | None]:
    """Competition ranks (1, 2, 2, 4): one plus the number of strictly better values."""
    present = sorted(round(v, 9) for v in values.values() if v is not None)
    ranks: dict[str, int | None] = {}
    for key, value in values.items():
        if value is None:
            ranks[key] = None
            continue
        rounded = round(value, 9)
        ranks[key] = 1 + sum(1 for v in present
                             if (v > rounded if higher_is_better else v < rounded))
    return ranks


def leaderboard(service: SalesKpiService, query: KpiQuery, scope: Scope = EVERYTHING, *,
                now: dt.datetime | None = None, against: Against = "previous") -> Leaderboard:
    """Reps ranked on ``query.kpis[0]`` within ``scope``, with rank change where defined.

    Rank change: with ``period="all"`` and both ``start`` and ``end``, against
    ``previous_range(start, end)``; with a period grain, each period against
    the one before it (for the first one shown, that period is fetched as
    well). Otherwise there is no previous period and no change.
    """
    if len(query.kpis) != 1:
        raise ValueError("a leaderboard ranks exactly one KPI")
    kpi = query.kpis[0]
    asked = replace(query, by=("rep",))
    spec = service.catalog.get(kpi)
    card = service.scorecard(asked, scope, totals=False, now=now)
    higher = spec.higher_is_better

    def ranked(rows: list[ResultRow]) -> dict[str | None, _Ranks]:
        """period -> rep -> (rank, value)."""
        groups: dict[str | None, dict[str, float | None]] = {}
        for row in rows:
            groups.setdefault(row.keys.get("period"), {})[row.keys.get("rep") or ""] = (
                row.values[kpi].value)
        out: dict[str | None, _Ranks] = {}
        for period, values in groups.items():
            ranks = rank(values, higher_is_better=higher)
            out[period] = {rep: (ranks[rep], value) for rep, value in values.items()}
        return out

    current = ranked(card.rows)
    before: dict[str | None, _Ranks] = {}
    previous: PreviousPeriod | None = None
    if asked.period == "all":
        if asked.start and asked.end:
            previous = previous_range(asked.start, asked.end, against)
            earlier = service.scorecard(replace(asked, start=previous.start, end=previous.end),
                                        scope, totals=False, now=now)
            before[None] = ranked(earlier.rows).get(None, {})
    else:
        grain = asked.period
        for period in current:
            if period is None:
                continue
            prior = period_start(dt.date.fromisoformat(period) - dt.timedelta(days=1), grain)
            if prior.isoformat() in current:
                before[period] = current[prior.isoformat()]
        shown = sorted(p for p in current if p is not None)
        if asked.start or shown:
            first = period_start(asked.start, grain) if asked.start else (
                dt.date.fromisoformat(shown[0]))
            day_before = first - dt.timedelta(days=1)
            previous = PreviousPeriod(period_start(day_before, grain), day_before, "period")
            earlier = service.scorecard(
                replace(asked, start=previous.start, end=previous.end), scope, totals=False,
                now=now)
            before[first.isoformat()] = ranked(earlier.rows).get(previous.start.isoformat(), {})

    rows: list[Standing] = []
    for result in card.rows:
        period = result.keys.get("period")
        rep = result.keys.get("rep") or ""
        current_rank, _value = current[period][rep]
        was_rank, was_value = before.get(period, {}).get(rep, (None, None))
        rows.append(Standing(rep, result.labels.get("rep_name") or rep, period,
                             result.values[kpi], current_rank, was_rank, was_value))
    rows.sort(key=lambda r: (r.period is None, r.period or "", r.rank is None, r.rank or 0,
                             r.name.casefold(), r.rep))
    is_ratio = any(r.value.is_ratio for r in rows)
    return Leaderboard(asked, kpi, card.units[kpi], is_ratio, higher, rows, previous)
