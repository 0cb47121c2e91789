"""How much a plan pays one rep for one period, line by line (pure arithmetic).

The order of the computation, which each explanation line follows:

1. **Component measure.** ``attainment``: actual / target × 100 (target / actual
   for KPIs where lower is better), in percent; ``value``: the KPI itself.
2. **Slices.** The measure is cut at each tier's threshold and at the
   accelerator's: a slice [a, b) pays (b − a) × rate × unit × multiplier, where
   the rate is the slice's own tier's (``marginal``) or the tier the whole measure
   reached (``retroactive``), the unit is 1 % of the target bonus (attainment) or 1
   (money per KPI unit), and the multiplier is the accelerator's above its
   threshold, else 1. Each slice is a line.
3. **Decelerator.** Below its threshold the component's sum is multiplied by its
   multiplier (0: nothing is paid): one line with the (negative) change.
4. **Component cap.** At most ``cap``: one line with the cut when it is hit.
5. **One-offs.** Each condition checked; a line per one-off, paid or not.
6. **Total cap.** The plan's ``cap`` on everything above: one line when hit.

**Rounding.** Every amount a line adds (a slice, the decelerator's change) is
rounded to the currency's minor unit (2 decimals for UAH, USD, EUR; 0 for JPY),
half up, as it is computed; totals are sums of the lines, so the explanation adds
up to the cent. Attainment is kept exact and only rounded for display.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from itertools import pairwise
from typing import Literal

from saleskpi.domain.bonus_plans import HUNDRED, Component, OneOff, PlanVersion
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.query import MAX_DATE, MIN_DATE
from saleskpi.domain.targets import period_bounds

ZERO = Decimal(0)
LineKind = Literal["slice", "no_target", "no_value", "decelerator", "cap", "one_off",
                   "total_cap"]


@cache
def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (0.01 for UAH, 1 for JPY)."""
    from babel.numbers import get_currency_precision  # not on every CLI command's path

    return Decimal(1).scaleb(-get_currency_precision(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Measured:
    """What the period measured for one KPI of one rep."""

    kpi: str
    actual: Decimal | None  # None: no value (a rate with no cases)
    target: Decimal | None = None  # the rep's target for the period (None: none set)
    previous: Decimal | None = None  # the KPI over the period before (for growth)
    higher_is_better: bool = True
    whole: bool = False  # counted in whole units (deals, calls): a what-if rounds up

    @property
    def attainment(self) -> Decimal | None:
        """actual / target in percent (target / actual where lower is better)."""
        if self.actual is None or self.target is None:
            return None
        if self.higher_is_better:
            return self.actual / self.target * HUNDRED if self.target else None
        return self.target / self.actual * HUNDRED if self.actual else None


@dataclass(frozen=True)
class Line:
    """One step of the computation, as the explanation shows it."""

    kind: LineKind
    name: str  # the component's or one-off's name ("" for the total cap)
    kpi: str | None
    amount: Decimal  # what the line adds (negative for a cut)
    actual: Decimal | None = None
    target: Decimal | None = None
    attainment: Decimal | None = None  # percent
    low: Decimal | None = None  # the slice of the measure: [low, high)
    high: Decimal | None = None
    rate: Decimal | None = None
    multiplier: Decimal | None = None
    cap: Decimal | None = None
    cap_hit: bool = False
    met: bool | None = None  # one-offs: whether the condition held
    threshold: Decimal | None = None  # a one-off's condition, the decelerator's floor
    condition: str | None = None  # a one-off's: at_least, attainment_at_least, growth_at_least
    previous: Decimal | None = None  # a growth one-off's: the KPI over the period before
    percent: bool = False  # low, high and threshold are percent of target (attainment)


@dataclass(frozen=True)
class ComponentResult:
    name: str
    kpi: str
    amount: Decimal
    cap_hit: bool
    measure: Decimal | None  # attainment in percent, or the KPI's value


@dataclass(frozen=True)
class BonusResult:
    currency: str
    lines: tuple[Line, ...]
    components: tuple[ComponentResult, ...]
    one_offs: Decimal
    total: Decimal
    total_cap_hit: bool

    @property
    def cap_hit(self) -> bool:
        return self.total_cap_hit or any(c.cap_hit for c in self.components)


def _measure(component: Component, measured: Measured) -> Decimal | None:
    if component.measure == "attainment":
        return measured.attainment
    return measured.actual


def _rate_at(component: Component, x: Decimal) -> Decimal:
    """The rate of the tier ``x`` falls in (0 below the first tier)."""
    rate = ZERO
    for tier in component.tiers:
        if x >= tier.start:
            rate = tier.rate
    return rate


def _cuts(component: Component, x: Decimal) -> list[Decimal]:
    """Where [0, x) is cut into slices: the accelerator's threshold below x, and the
    tiers' for marginal tiers (retroactive ones pay every slice at one rate)."""
    points = set(component.starts()) if component.tier_mode == "marginal" else set()
    if component.accelerator is not None:
        points.add(component.accelerator.above)
    return [ZERO, *sorted(p for p in points if ZERO < p < x), x]


def component_lines(component: Component, measured: Measured,
                    currency: str) -> tuple[list[Line], ComponentResult]:
    """The lines of one component and what it pays (steps 1-4 of the module)."""
    x = _measure(component, measured)
    # What every line of the component repeats: the KPI, actual, target and attainment.
    nothing = round_money(ZERO, currency)
    base = Line("slice", component.name, component.kpi, nothing, actual=measured.actual,
                target=measured.target, attainment=measured.attainment,
                percent=component.measure == "attainment")
    if x is None:
        missing: LineKind = "no_target" if component.measure == "attainment" \
            and measured.target is None else "no_value"
        return ([replace(base, kind=missing)],
                ComponentResult(component.name, component.kpi, nothing, False, None))
    lines: list[Line] = []
    reached = _rate_at(component, x)
    cuts = _cuts(component, x)
    accelerator = component.accelerator
    for low, high in pairwise(cuts):
        if high <= low:
            continue
        rate = reached if component.tier_mode == "retroactive" else _rate_at(component, low)
        multiplier = accelerator.multiplier if accelerator is not None \
            and low >= accelerator.above else Decimal(1)
        amount = round_money((high - low) * rate * component.unit_amount * multiplier,
                             currency)
        lines.append(replace(base, low=low, high=high, rate=rate, multiplier=multiplier,
                             amount=amount))
    if not lines:  # nothing measured (0 % or none of the KPI): one line says so
        lines.append(replace(base, low=ZERO, high=x, rate=reached, multiplier=Decimal(1)))
    paid = sum((line.amount for line in lines), nothing)
    slowed = component.decelerator
    if slowed is not None and x < slowed.below:
        reduced = round_money(paid * slowed.multiplier, currency)
        lines.append(replace(base, kind="decelerator", multiplier=slowed.multiplier,
                             threshold=slowed.below, amount=reduced - paid))
        paid = reduced
    cap = component.cap
    hit = cap is not None and paid > cap
    if cap is not None and hit:
        capped = round_money(cap, currency)
        lines.append(replace(base, kind="cap", cap=cap, cap_hit=True, amount=capped - paid))
        paid = capped
    return lines, ComponentResult(component.name, component.kpi, paid, hit, x)


def one_off_met(one_off: OneOff, measured: Measured) -> bool:
    """Whether the one-off's condition holds (no value, target or history: not met)."""
    if one_off.at_least is not None:
        actual = measured.actual
        if actual is None:
            return False
        return actual >= one_off.at_least if measured.higher_is_better \
            else actual <= one_off.at_least
    if one_off.attainment_at_least is not None:
        attainment = measured.attainment
        return attainment is not None and attainment >= one_off.attainment_at_least
    assert one_off.growth_at_least is not None
    if measured.actual is None or not measured.previous:
        return False
    growth = measured.actual / measured.previous - 1
    if not measured.higher_is_better:
        growth = -growth
    return growth >= one_off.growth_at_least


def one_off_threshold(one_off: OneOff) -> Decimal:
    """The condition's number: the KPI's value, or attainment or growth in percent."""
    if one_off.at_least is not None:
        return one_off.at_least
    if one_off.attainment_at_least is not None:
        return one_off.attainment_at_least
    assert one_off.growth_at_least is not None
    return one_off.growth_at_least * HUNDRED


def compute(version: PlanVersion, measured: Mapping[str, Measured],
            currency: str) -> BonusResult:
    """What ``version`` pays for the measured KPIs, with every line of the computation.

    ``measured`` has every KPI the version uses (a missing one counts as no value).
    """
    def get(kpi: str) -> Measured:
        return measured.get(kpi) or Measured(kpi, None)

    lines: list[Line] = []
    components = []
    for component in version.components:
        found, result = component_lines(component, get(component.kpi), currency)
        lines += found
        components.append(result)
    extra = round_money(ZERO, currency)
    for one_off in version.one_offs:
        m = get(one_off.kpi)
        met = one_off_met(one_off, m)
        amount = round_money(one_off.amount if met else ZERO, currency)
        extra += amount
        # Target and attainment only where the condition is about them, the period before
        # only for growth: the line shows what decided it.
        on_target = one_off.condition == "attainment_at_least"
        lines.append(Line("one_off", one_off.name, one_off.kpi, amount, actual=m.actual,
                          target=m.target if on_target else None,
                          attainment=m.attainment if on_target else None,
                          previous=m.previous if one_off.condition == "growth_at_least"
                          else None, met=met, threshold=one_off_threshold(one_off),
                          condition=one_off.condition,
                          percent=one_off.condition != "at_least"))
    total = sum((c.amount for c in components), ZERO) + extra
    cap = version.cap
    capped = cap is not None and total > cap
    if cap is not None and capped:
        limit = round_money(cap, currency)
        lines.append(Line("total_cap", "", None, limit - total, cap=cap, cap_hit=True))
        total = limit
    return BonusResult(currency, tuple(lines), tuple(components), extra, total, capped)


# -- what-if ---------------------------------------------------------------------------
WhatIfKind = Literal["tier", "accelerator", "decelerator", "one_off"]


@dataclass(frozen=True)
class WhatIf:
    """The next step up on one component or one-off: how much more of the KPI it takes
    and what the plan would pay then (everything else as it is)."""

    kind: WhatIfKind
    name: str
    kpi: str
    actual: Decimal
    needed: Decimal  # the KPI's value that reaches the step
    more: Decimal  # needed − actual (whole units for counted KPIs)
    threshold: Decimal  # the step, in the measure's units (attainment: percent)
    rate: Decimal | None  # the tier's rate from there (tiers and accelerators)
    total_now: Decimal
    total_then: Decimal

    @property
    def gain(self) -> Decimal:
        return self.total_then - self.total_now


def _needed_value(m: Measured, threshold: Decimal, attainment: bool) -> Decimal | None:
    """The KPI's value at which the measure reaches ``threshold``."""
    if not attainment:
        return threshold
    if m.target is None:
        return None
    return m.target * threshold / HUNDRED


def _more(m: Measured, needed: Decimal) -> Decimal:
    assert m.actual is not None
    more = needed - m.actual
    if m.whole:
        more = Decimal(math.ceil(more))
    return more


def _next_step(component: Component, x: Decimal) -> tuple[WhatIfKind, Decimal] | None:
    """The nearest threshold above ``x``: a tier, the accelerator or the decelerator."""
    steps: list[tuple[Decimal, WhatIfKind]] = [(s, "tier") for s in component.starts()]
    if component.accelerator is not None:
        steps.append((component.accelerator.above, "accelerator"))
    if component.decelerator is not None:
        steps.append((component.decelerator.below, "decelerator"))
    above = sorted((s, k) for s, k in steps if s > x)
    return (above[0][1], above[0][0]) if above else None


def what_if(version: PlanVersion, measured: Mapping[str, Measured],
            currency: str) -> list[WhatIf]:
    """Per component the next threshold above where the rep is, per one-off not yet met
    its condition: the KPI's value that reaches it and the plan's total then.

    Only KPIs where higher is better and with a value now; the total is computed again
    with that one KPI changed, so caps and other one-offs on the same KPI count.
    """
    now = compute(version, measured, currency).total
    steps: list[WhatIf] = []

    def then(kpi: str, value: Decimal) -> Decimal:
        changed = {**measured, kpi: replace(measured[kpi], actual=value)}
        return compute(version, changed, currency).total

    for component in version.components:
        m = measured.get(component.kpi)
        if m is None or m.actual is None or not m.higher_is_better:
            continue
        x = _measure(component, m)
        if x is None:
            continue
        found = _next_step(component, x)
        if found is None:
            continue
        kind, threshold = found
        value_needed = _needed_value(m, threshold, component.measure == "attainment")
        if value_needed is None:
            continue
        more = _more(m, value_needed)
        value = m.actual + more
        rate = _rate_at(component, threshold) if kind != "decelerator" else None
        steps.append(WhatIf(kind, component.name, component.kpi, m.actual, value, more,
                            threshold, rate, now, then(component.kpi, value)))
    for one_off in version.one_offs:
        m = measured.get(one_off.kpi)
        if m is None or m.actual is None or not m.higher_is_better or one_off_met(one_off, m):
            continue
        needed: Decimal | None
        if one_off.at_least is not None:
            needed = one_off.at_least
        elif one_off.attainment_at_least is not None:
            needed = _needed_value(m, one_off.attainment_at_least, True)
        else:
            assert one_off.growth_at_least is not None
            needed = m.previous * (1 + one_off.growth_at_least) if m.previous else None
        if needed is None:
            continue
        more = _more(m, needed)
        value = m.actual + more
        steps.append(WhatIf("one_off", one_off.name, one_off.kpi, m.actual, value, more,
                            one_off_threshold(one_off), None, now, then(one_off.kpi, value)))
    return steps


# -- periods ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodPay:
    """One plan's period for one rep: which version paid it and what was measured."""

    period_start: dt.date
    period_end: dt.date
    measured_to: dt.date  # actuals up to the end of this day
    version: PlanVersion
    measured: Mapping[str, Measured]
    result: BonusResult

    @property
    def complete(self) -> bool:
        return self.measured_to >= self.period_end


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")


def asked_day(text: str | None, today: dt.date) -> dt.date:
    """The day whose periods are paid: the last day of the month (``2026-09``), quarter
    (``2026-Q3``) or the day (``2026-09-15``) named, or today when that is earlier
    (a period not over is measured to date); today when nothing is named. Each plan
    pays its own period (month or quarter) that contains this day."""
    if text is None or not text.strip() or text.strip().lower() in ("current", "now"):
        return today
    value = text.strip()
    first: dt.date | None = None
    last: dt.date | None = None
    try:
        if month := _MONTH.match(value):
            first = dt.date(int(month[1]), int(month[2]), 1)
            last = period_bounds(first, "month")[1]
        elif quarter := _QUARTER.match(value):
            first = dt.date(int(quarter[1]), int(quarter[2]) * 3 - 2, 1)
            last = period_bounds(first, "quarter")[1]
        else:
            first = last = dt.date.fromisoformat(value)
    except ValueError:
        first = None
    if first is None or last is None or not MIN_DATE <= first <= MAX_DATE:
        raise InvalidQuery(_("--period {period!r}: give a month (2026-09), a quarter "
                             "(2026-Q3) or a day (2026-09-15)", period=text),
                           code="bad_period")
    if first > today:
        raise InvalidQuery(_("--period {period!r} has not started yet (today is {today})",
                             period=text, today=today.isoformat()), code="bad_period")
    return min(last, today)
