"""Reverse planning: from a sales goal to the calls and meetings it takes.

The source article's example: 50 sales a month at a 5% call-to-sale rate need
1,000 calls, about 48 a working day over 21 days; with 15% of calls turning into
meetings and 1 meeting in 3 into a sale, the same 50 sales need 150 meetings and
1,000 calls. The arithmetic here is exact (fractions), so "1,000" is never
1,000.0000000001 rounded up to 1,001.

Everything in this module is pure: no database, no files, no clock. The CLI, the
API and the web page pass in the rates (given by hand or read from history) and
show the result, or its ``to_dict()``.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.query import plain_number

# Funnel steps, in the order a prospect goes through them.
CALL_TO_MEETING = "call_to_meeting"
MEETING_TO_WON = "meeting_to_won"
CALL_TO_WON = "call_to_won"
STEPS = (CALL_TO_MEETING, MEETING_TO_WON)
RATE_KEYS = (CALL_TO_WON, CALL_TO_MEETING, MEETING_TO_WON)
# Which counts each rate divides: numerator / denominator.
RATE_PARTS = {
    CALL_TO_MEETING: ("meetings", "calls"),
    MEETING_TO_WON: ("deals_won", "meetings"),
    CALL_TO_WON: ("deals_won", "calls"),
}
GOALS = ("deals_won", "revenue")

GoalKpi = Literal["deals_won", "revenue"]
Funnel = Literal["two_step", "direct"]


class PlanningError(SalesKpiError):
    """The inputs cannot give a plan; ``code`` and ``values`` say why (the caller words it)."""
    default_code = "bad_plan"

    def __init__(self, code: str, **values: object) -> None:
        super().__init__(f"{code}: {values}")
        self.code = code
        self.values = values


def working_days(start: dt.date, end: dt.date,
                 holidays: Collection[dt.date] = ()) -> int:
    """Monday to Friday days in [start, end], both inclusive, less the company's
    ``holidays`` (the ``holidays`` setting) that fall on them."""
    if end < start:
        return 0
    days = (end - start).days + 1
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(rest):
        if (start + dt.timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count - sum(1 for h in set(holidays) if start <= h <= end and h.weekday() < 5)


def _number(value: Fraction | None) -> float | int | None:
    return plain_number(float(value)) if value is not None else None


def _ceil(value: Fraction) -> int:
    return math.ceil(value)


@dataclass(frozen=True)
class Rate:
    """One conversion rate; with its counts when it was measured, not given."""

    key: str
    value: Fraction
    numerator: float | None = None
    denominator: float | None = None
    origin: Literal["history", "given"] = "given"

    @classmethod
    def measured(cls, key: str, numerator: float, denominator: float) -> Rate | None:
        """numerator / denominator from history; None when there is nothing to divide."""
        if not denominator:
            return None
        return cls(key, Fraction(int(numerator)) / Fraction(int(denominator)),
                   numerator, denominator, "history")

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"key": self.key, "value": _number(self.value),
                                  "origin": self.origin}
        if self.origin == "history":
            out["numerator"] = plain_number(self.numerator)
            out["denominator"] = plain_number(self.denominator)
        return out


@dataclass(frozen=True)
class Need:
    """How much of one thing the goal takes: in the period and per working day."""

    what: str  # deals_won, meetings or calls
    exact: Fraction  # in the period, before rounding
    working_days: int

    @property
    def per_period(self) -> int:
        return _ceil(self.exact)

    @property
    def per_day_exact(self) -> Fraction:
        """The rounded-up period need spread over the working days (47.6 for 1,000 / 21)."""
        return Fraction(self.per_period, self.working_days)

    @property
    def per_day(self) -> int:
        """What to do every working day to get there (48 for 1,000 / 21)."""
        return _ceil(self.per_day_exact)

    def to_dict(self) -> dict[str, object]:
        return {
            "what": self.what,
            "per_period": self.per_period,
            "per_period_exact": _number(self.exact),
            "per_day": self.per_day,
            "per_day_exact": _number(self.per_day_exact),
        }


@dataclass(frozen=True)
class StepOption:
    """What-if: one conversion step brought up to the team's median rate."""

    step: str
    current: Fraction
    team_median: Fraction | None
    peers: int  # reps with data for this rate
    calls: int | None  # calls the goal would take at the median rate
    calls_saved: int  # fewer calls than now (0 when the rate is at or above the median)
    calls_saved_per_day: int

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "current": _number(self.current),
            "team_median": _number(self.team_median),
            "peers": self.peers,
            "calls": self.calls,
            "calls_saved": self.calls_saved,
            "calls_saved_per_day": self.calls_saved_per_day,
        }


@dataclass(frozen=True)
class ReversePlan:
    goal_kpi: GoalKpi
    goal: Fraction
    deal_size: Fraction | None
    funnel: Funnel
    rates: tuple[Rate, ...]
    working_days: int
    needs: tuple[Need, ...]  # deals_won, [meetings,] calls
    options: tuple[StepOption, ...] = ()
    # The step whose improvement to the team median saves the most calls, if any.
    improvement: StepOption | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def need(self, what: str) -> Need | None:
        return next((n for n in self.needs if n.what == what), None)

    @property
    def calls(self) -> Need:
        need = self.need("calls")
        assert need is not None
        return need

    def to_dict(self) -> dict[str, object]:
        return {
            "goal": {"kpi": self.goal_kpi, "value": _number(self.goal)},
            "deal_size": _number(self.deal_size),
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "working_days": self.working_days,
            "funnel": self.funnel,
            "rates": [r.to_dict() for r in self.rates],
            "needs": [n.to_dict() for n in self.needs],
            "options": [o.to_dict() for o in self.options],
            "improvement": self.improvement.to_dict() if self.improvement else None,
            **self.extra,
        }


def _median(values: Sequence[Fraction]) -> Fraction | None:
    return Fraction(statistics.median(values)) if values else None


def plan_activity(
    goal_kpi: GoalKpi,
    goal: Fraction | int,
    rates: Sequence[Rate],
    working_days: int,
    *,
    deal_size: Fraction | None = None,
    team_rates: Mapping[str, Sequence[Fraction]] | None = None,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
) -> ReversePlan:
    """The calls (and meetings) a goal takes, per period and per working day.

    ``rates`` are either ``call_to_meeting`` and ``meeting_to_won`` (the two-step
    funnel, preferred when both are there) or ``call_to_won``. A ``revenue`` goal
    is first turned into deals with ``deal_size`` (rounded up: half a deal is
    not a sale). ``team_rates`` are the peers' rates per step (one per rep with
    data); the step that, brought up to their median, saves the most calls is
    the ``improvement``.
    """
    goal = Fraction(goal)
    if goal_kpi not in GOALS:
        raise PlanningError("goal_kpi", kpi=goal_kpi)
    if goal <= 0:
        raise PlanningError("goal", value=goal)
    if working_days <= 0:
        raise PlanningError("working_days", days=working_days)
    by_key = {r.key: r for r in rates}
    if all(k in by_key for k in STEPS) and (
            all(by_key[k].value > 0 for k in STEPS) or CALL_TO_WON not in by_key):
        funnel: Funnel = "two_step"
        used = [by_key[k] for k in STEPS]
    elif CALL_TO_WON in by_key:
        funnel = "direct"  # also when a step of the two is 0 but calls did lead to sales
        used = [by_key[CALL_TO_WON]]
    else:
        raise PlanningError("rates", given=sorted(by_key))
    for rate in used:
        if rate.value <= 0:
            raise PlanningError("zero_rate", step=rate.key)
    if goal_kpi == "revenue":
        if deal_size is None or deal_size <= 0:
            raise PlanningError("deal_size")
        deals = Fraction(_ceil(goal / deal_size))
    else:
        deals = goal

    def calls_for(values: Mapping[str, Fraction]) -> Fraction:
        if funnel == "two_step":
            return deals / values[MEETING_TO_WON] / values[CALL_TO_MEETING]
        return deals / values[CALL_TO_WON]

    current = {r.key: r.value for r in used}
    needs = [Need("deals_won", deals, working_days)]
    if funnel == "two_step":
        needs.append(Need("meetings", deals / current[MEETING_TO_WON], working_days))
    calls = Need("calls", calls_for(current), working_days)
    needs.append(calls)

    options: list[StepOption] = []
    for key in current:
        peers = list((team_rates or {}).get(key, ()))
        median = _median(peers)
        if median is None:
            continue
        if median > current[key]:
            then = Need("calls", calls_for({**current, key: median}), working_days)
            saved = calls.per_period - then.per_period
            saved_per_day = calls.per_day - then.per_day
            options.append(StepOption(key, current[key], median, len(peers), then.per_period,
                                      saved, saved_per_day))
        else:
            options.append(StepOption(key, current[key], median, len(peers), None, 0, 0))
    helpful = [o for o in options if o.calls_saved > 0]
    best = max(helpful, key=lambda o: o.calls_saved) if helpful else None
    shown = tuple(sorted(rates, key=lambda r: RATE_KEYS.index(r.key)
                         if r.key in RATE_KEYS else len(RATE_KEYS)))
    return ReversePlan(goal_kpi, goal, deal_size, funnel, shown, working_days, tuple(needs),
                       tuple(options), best, period_start, period_end)
