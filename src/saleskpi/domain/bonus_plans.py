"""Bonus plans as data: the workspace's ``bonus_plans.yaml``, checked before use.

A plan says who it pays (every rep, the reps of some teams, or named reps), for
which period (a month or a quarter), in which currency, and how: components tied
to a catalogue KPI, one-off bonuses, and caps. It has versions: each applies from
its ``effective_from`` day, and a period is paid by the version in force on the
period's first day (``BonusPlan.version_for``), so changing a plan mid-year leaves
the periods before the change as they were paid.

Numbers are read exactly (``Decimal`` from the text YAML holds, never through a
float). Thresholds of an ``attainment`` component are percentages of the rep's
target (``80`` or ``"80%"``); those of a ``value`` component are the KPI's own
units (``"30%"`` is 0.3 there, for rates). Rates and multipliers may be written
as ``0.05`` or ``"5%"``. See docs/motivation.md for examples.

The catalogue's KPI keys are checked by the service (this layer knows no catalogue).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _

PLANS_FILE = "bonus_plans.yaml"
HUNDRED = Decimal(100)


class BonusPlanError(InvalidQuery):
    """``bonus_plans.yaml`` cannot be used: the message names the file, plan and field."""

    default_code = "bad_bonus_plan"


def _number(value: Any) -> Any:
    """A number as written: 1500, 0.05, "5%", "10 000" (a "%" divides by 100)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
        percent = text.endswith("%")
        try:
            number = Decimal(text.removesuffix("%"))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number (examples: 1500, 0.05, 5%)") from None
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a number")
        return number / HUNDRED if percent else number
    return value


def _percent_points(value: Any) -> Any:
    """An attainment threshold in percent: 80 and "80%" are both 80 %."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return _number(value.strip().removesuffix("%"))
    return _number(value)


Number = Annotated[Decimal, BeforeValidator(_number)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    """From this threshold up (to the next tier's), paid at ``rate``."""

    start: Decimal = Field(alias="from", ge=0)
    rate: Number = Field(ge=0)


class Accelerator(_Strict):
    """The part of the measure above ``above`` is paid ``multiplier`` times its rate."""

    above: Decimal
    multiplier: Number = Field(ge=1)


class Decelerator(_Strict):
    """Below ``below`` the whole component is paid ``multiplier`` times (0: nothing)."""

    below: Decimal
    multiplier: Number = Field(default=Decimal(0), ge=0, lt=1)


Measure = Literal["attainment", "value"]
TierMode = Literal["marginal", "retroactive"]
# Where a component's thresholds are, as (container, key) in its YAML mapping.
_THRESHOLDS = (("accelerator", "above"), ("decelerator", "below"))


class Component(_Strict):
    """One KPI paid through tiers.

    ``attainment``: the measure is the rep's actual against their target, in percent;
    a tier's ``rate`` is the share of ``target_bonus`` paid per 100 % in that tier
    (rate 1 pays the target bonus at 100 %). ``value``: the measure is the KPI itself,
    and ``rate`` is money per unit of it (0.05 of revenue, 200 per deal won).
    ``marginal`` tiers pay each slice of the measure at its own tier's rate;
    ``retroactive`` ones pay the whole measure at the rate of the tier reached.
    """

    name: str = Field(min_length=1)
    kpi: str = Field(min_length=1)
    measure: Measure = "attainment"
    target_bonus: Number | None = Field(default=None, gt=0)
    tier_mode: TierMode = "marginal"
    tiers: tuple[Tier, ...] = ()
    accelerator: Accelerator | None = None
    decelerator: Decelerator | None = None
    cap: Number | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _thresholds_in_units(cls, data: Any) -> Any:
        """Thresholds read in the measure's units: percent for attainment (80 or "80%"),
        the KPI's own for a value ("30%" = 0.3); an attainment accelerator starts at
        100 % unless told."""
        if not isinstance(data, dict):
            return data
        convert = _percent_points if data.get("measure", "attainment") == "attainment" \
            else _number
        data = dict(data)
        tiers = data.get("tiers")
        if tiers is None and data.get("measure", "attainment") == "attainment":
            tiers = [{"from": 0, "rate": 1}]
        if isinstance(tiers, list):
            data["tiers"] = [{**t, "from": _checked(convert, t["from"], f"tiers.{i}.from")}
                             if isinstance(t, dict) and "from" in t else t
                             for i, t in enumerate(tiers)]
        for container, key in _THRESHOLDS:
            part = data.get(container)
            if isinstance(part, dict):
                part = dict(part)
                if key in part:
                    part[key] = _checked(convert, part[key], f"{container}.{key}")
                elif container == "accelerator" and convert is _percent_points:
                    part[key] = HUNDRED
                data[container] = part
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Component:
        if self.measure == "attainment" and self.target_bonus is None:
            raise ValueError("an attainment component needs target_bonus: the amount paid "
                             "at 100 % of the target")
        if self.measure == "value" and self.target_bonus is not None:
            raise ValueError("target_bonus is for attainment components; a value component "
                             "pays its tiers' rate per unit of the KPI")
        if not self.tiers:
            raise ValueError("a value component needs tiers (e.g. - {from: 0, rate: 0.05})")
        starts = self.starts()
        if any(b <= a for a, b in pairwise(starts)):
            raise ValueError("tiers: each tier's 'from' must be above the one before")
        return self

    def starts(self) -> list[Decimal]:
        """The tiers' thresholds, in the measure's units (percent for attainment)."""
        return [t.start for t in self.tiers]

    @property
    def unit_amount(self) -> Decimal:
        """What one unit of the measure times a rate of 1 pays: 1 % of the target bonus
        for attainment, 1 (money per KPI unit) for a value."""
        return self.target_bonus / HUNDRED if self.target_bonus is not None else Decimal(1)


def _checked(convert: Any, value: Any, field: str) -> Any:
    try:
        return convert(value)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


class OneOff(_Strict):
    """A fixed amount once a condition holds in the period: the KPI at least a value,
    its attainment at least a percentage, or its growth on the period before at least
    a share ("average check +15 %": ``growth_at_least: 15%``)."""

    name: str = Field(min_length=1)
    kpi: str = Field(min_length=1)
    amount: Number = Field(gt=0)
    at_least: Number | None = None
    # In percent, as attainment thresholds are: 120 or "120%".
    attainment_at_least: Annotated[Decimal | None, BeforeValidator(_percent_points)] = None
    growth_at_least: Number | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> OneOff:
        given = [n for n in ("at_least", "attainment_at_least", "growth_at_least")
                 if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one condition: at_least, attainment_at_least or "
                             "growth_at_least")
        return self

    @property
    def condition(self) -> str:
        if self.at_least is not None:
            return "at_least"
        return "attainment_at_least" if self.attainment_at_least is not None \
            else "growth_at_least"


class PlanVersion(_Strict):
    """What a plan pays from ``effective_from`` until the next version."""

    effective_from: dt.date
    components: tuple[Component, ...] = ()
    one_offs: tuple[OneOff, ...] = ()
    cap: Number | None = Field(default=None, ge=0, description="the most the whole plan "
                               "pays a rep in a period, one-offs included")

    @model_validator(mode="after")
    def _named_once(self) -> PlanVersion:
        names = [c.name for c in self.components] + [o.name for o in self.one_offs]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"names used twice: {', '.join(doubled)}")
        if not names:
            raise ValueError("a version needs components or one_offs")
        return self

    def kpis(self) -> list[str]:
        return list(dict.fromkeys([c.kpi for c in self.components]
                                  + [o.kpi for o in self.one_offs]))


Who = Literal["all", "team", "reps"]
PlanPeriod = Literal["month", "quarter"]


class BonusPlan(_Strict):
    name: str = Field(min_length=1)
    title: str | None = None
    who: Who = "all"
    teams: tuple[str, ...] = ()
    reps: tuple[str, ...] = ()
    period: PlanPeriod = "month"
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    versions: tuple[PlanVersion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _who_and_versions(self) -> BonusPlan:
        if self.who == "team" and not self.teams:
            raise ValueError("who: team needs teams: [TEAM, ...]")
        if self.who == "reps" and not self.reps:
            raise ValueError("who: reps needs reps: [REP_ID, ...]")
        if self.who != "team" and self.teams:
            raise ValueError("teams is for who: team")
        if self.who != "reps" and self.reps:
            raise ValueError("reps is for who: reps")
        days = [v.effective_from for v in self.versions]
        if len(set(days)) != len(days):
            raise ValueError("two versions have the same effective_from")
        object.__setattr__(self, "versions", tuple(sorted(
            self.versions, key=lambda v: v.effective_from)))
        return self

    def version_for(self, period_start: dt.date) -> PlanVersion | None:
        """The version in force on the period's first day (None: the plan had not started)."""
        found = None
        for version in self.versions:
            if version.effective_from <= period_start:
                found = version
        return found

    def pays(self, rep: str, team: str | None) -> bool:
        if self.who == "reps":
            return rep in self.reps
        if self.who == "team":
            return team in self.teams
        return True

    def kpis(self) -> list[str]:
        return list(dict.fromkeys(k for v in self.versions for k in v.kpis()))


class BonusPlans(_Strict):
    plans: tuple[BonusPlan, ...] = ()

    def get(self, name: str) -> BonusPlan | None:
        return next((p for p in self.plans if p.name == name), None)


def parse_plans(data: object, path: Path | str) -> BonusPlans:
    """``bonus_plans.yaml``'s content (parsed YAML) as checked plans, or a
    ``BonusPlanError`` naming the file, the plan and the field."""
    if data is None:
        return BonusPlans()
    items = data.get("plans") if isinstance(data, dict) else None
    if not isinstance(data, dict) or set(data) - {"plans"} or not isinstance(items, list):
        raise BonusPlanError(_("{path}: expected a top-level 'plans:' list (see "
                               "docs/motivation.md)", path=str(path)))
    plans = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        label = repr(name) if isinstance(name, str) else f"#{index + 1}"
        try:
            plans.append(BonusPlan.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "plan"
            message = str(err["msg"]).removeprefix("Value error, ")
            raise BonusPlanError(_("{path}: plan {plan}: {field}: {problem}", path=str(path),
                                   plan=label, field=where, problem=message)) from None
    names = [p.name for p in plans]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise BonusPlanError(_("{path}: plan {plan}: name: used by two plans", path=str(path),
                               plan=repr(doubled[0]), ))
    return BonusPlans(plans=tuple(plans))
