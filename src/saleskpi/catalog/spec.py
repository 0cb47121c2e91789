"""The KPI catalogue's vocabulary: what a KPI definition may say.

Kinds, after MetricFlow: ``simple`` aggregates one column of one fact view,
``ratio`` divides two measures and always reports both, ``derived`` is a formula
over other KPIs. Definitions are data (YAML), validated here before use.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Agg = Literal["count", "count_distinct", "sum", "avg", "median", "p90", "min", "max"]
Unit = Literal["count", "money", "ratio", "days", "hours", "minutes", "seconds", "months",
               "number"]
Kind = Literal["simple", "ratio", "derived", "share"]

# Durations are measured in seconds; a KPI's unit says how they are shown.
SECONDS_PER_UNIT: dict[str, float] = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0}


class Measure(BaseModel):
    """One aggregation over one fact view, placed in periods by one time column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    agg: Agg = "count"
    column: str | None = None
    time: str
    where: tuple[str, ...] = ()
    # Snapshot measures count what is open at an instant of each period (its end,
    # or its start with ``at: start``): rows between the ``time`` column and
    # ``until`` (NULL = still open), or rows whose ``time`` falls in the
    # ``window_days`` before the instant.
    until: str | None = None
    window_days: int | None = Field(default=None, gt=0)
    at: Literal["end", "start"] = "end"

    @property
    def is_snapshot(self) -> bool:
        return self.until is not None or self.window_days is not None

    @model_validator(mode="after")
    def _column_needed(self) -> Measure:
        if self.agg not in ("count",) and not self.column:
            raise ValueError(f"agg {self.agg!r} needs a column")
        return self


class KpiSpec(BaseModel):
    """One KPI as the catalogue defines it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Kind = "simple"
    name: dict[str, str] = Field(description="display name per language: en, ru, uk")
    description: dict[str, str] = Field(default_factory=dict)
    unit: Unit = "count"
    higher_is_better: bool = True
    group: str = "other"
    # simple
    entity: str | None = None
    agg: Agg = "count"
    column: str | None = None
    time: str | None = None
    where: tuple[str, ...] = ()
    until: str | None = None
    window_days: int | None = Field(default=None, gt=0)
    at: Literal["end", "start"] = "end"
    # ratio: a KPI key or an inline measure
    numerator: str | Measure | None = None
    denominator: str | Measure | None = None
    # derived
    formula: str | None = None
    # share: this slice's part of the KPI ``of`` over all slices (e.g. revenue share)
    of: str | None = None
    # where the definition came from, for error messages
    origin: str = "builtin"

    @model_validator(mode="after")
    def _fields_for_kind(self) -> KpiSpec:
        if "en" not in self.name:
            raise ValueError("name needs at least an 'en' entry")
        if self.kind == "simple":
            missing = [f for f in ("entity", "time") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a simple KPI needs {', '.join(missing)}")
            if self.agg != "count" and not self.column:
                raise ValueError(f"agg {self.agg!r} needs a column")
        elif self.kind == "ratio":
            if self.numerator is None or self.denominator is None:
                raise ValueError("a ratio KPI needs numerator and denominator")
        elif self.kind == "share":
            if self.of is None:
                raise ValueError("a share KPI needs 'of': the KPI it is a share of")
        elif self.formula is None:
            raise ValueError("a derived KPI needs formula")
        return self

    def measure(self) -> Measure:
        """The aggregation of a simple KPI."""
        assert self.kind == "simple" and self.entity and self.time
        return Measure(
            entity=self.entity, agg=self.agg, column=self.column, time=self.time,
            where=self.where, until=self.until, window_days=self.window_days, at=self.at,
        )

    def display_name(self, lang: str) -> str:
        return self.name.get(lang) or self.name["en"]

    def display_description(self, lang: str) -> str:
        return self.description.get(lang) or self.description.get("en", "")
