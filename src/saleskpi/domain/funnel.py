"""What a funnel request asks and what it returns (plain dataclasses, ``to_dict`` for JSON)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from saleskpi.domain.query import plain_number

# A rep's stage conversion this far below the team's marks where the funnel leaks.
LEAK_GAP = 0.10


@dataclass(frozen=True)
class FunnelOptions:
    """The request: which pipeline, whose deals, which dates.

    ``start``/``end`` are local days (inclusive) in the company's zone and select
    the deals that entered a stage in that range; ``as_of`` is the local day at
    whose end the open pipeline is reconstructed (None: now).
    """

    pipeline: str | None = None
    by_rep: bool = False
    as_of: dt.date | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class StageRow:
    """One stage of one slice (the team or a rep)."""

    stage: str
    entered: int = 0  # deals whose first entry into the stage is in the date range
    converted: int = 0  # of those: later entered a later stage or were won
    dropped: int = 0  # of those: finally lost while in this stage
    finished: int = 0  # stays in the stage that ended (time in stage sample)
    median_days: float | None = None
    p90_days: float | None = None
    open_deals: int = 0  # in this stage at the as-of instant
    open_amount: float | None = None
    # Rep rows only: conversion minus the team's, and whether it is a leak.
    vs_team: float | None = None
    leak: bool = False

    @property
    def conversion(self) -> float | None:
        return _ratio(self.converted, self.entered)

    @property
    def drop_off(self) -> float | None:
        return _ratio(self.dropped, self.entered)

    def compare(self, team: StageRow) -> None:
        """Set ``vs_team`` and ``leak`` against the team's row for the same stage."""
        mine, theirs = self.conversion, team.conversion
        if mine is None or theirs is None:
            self.vs_team, self.leak = None, False
            return
        self.vs_team = mine - theirs
        # Rounded so that 50% vs 60% (a float gap of -0.0999...) is not a leak.
        self.leak = round(self.vs_team, 9) < -LEAK_GAP

    def to_dict(self, *, rep_row: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stage": self.stage,
            "entered": self.entered,
            "converted": self.converted,
            "stage_conversion": plain_number(self.conversion),
            "dropped": self.dropped,
            "stage_drop_off": plain_number(self.drop_off),
            "time_in_stage": {
                "median_days": plain_number(self.median_days),
                "p90_days": plain_number(self.p90_days),
                "count": self.finished,
            },
            "open_deals": self.open_deals,
            "open_amount": plain_number(self.open_amount),
        }
        if rep_row:
            out["conversion_vs_team"] = plain_number(self.vs_team)
            out["leak"] = self.leak
        return out


@dataclass
class FunnelSlice:
    """The funnel of the team (``rep`` None: every rep in scope) or of one rep."""

    rep: str | None
    rep_name: str | None
    stages: list[StageRow]

    @property
    def open_deals(self) -> int:
        return sum(s.open_deals for s in self.stages)

    @property
    def open_amount(self) -> float | None:
        amounts = [s.open_amount for s in self.stages if s.open_amount is not None]
        return sum(amounts) if amounts else None

    @property
    def leaks(self) -> list[str]:
        return [s.stage for s in self.stages if s.leak]

    def to_dict(self) -> dict[str, Any]:
        rep_row = self.rep is not None
        out: dict[str, Any] = {"rep": self.rep, "rep_name": self.rep_name} if rep_row else {}
        out |= {
            "open_deals": self.open_deals,
            "open_amount": plain_number(self.open_amount),
            "stages": [s.to_dict(rep_row=rep_row) for s in self.stages],
        }
        if rep_row:
            out["leaks"] = self.leaks
        return out


@dataclass
class PipelineFunnel:
    pipeline: str | None
    stages: list[str]  # in funnel order; won and lost close every pipeline
    order_from: str  # "data" or "funnel.yaml"
    team: FunnelSlice
    reps: list[FunnelSlice] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "stage_order": self.stages,
            "order_from": self.order_from,
            "team": self.team.to_dict(),
            "reps": [r.to_dict() for r in self.reps],
        }


@dataclass
class FunnelReport:
    options: FunnelOptions
    as_of: dt.datetime  # the instant (UTC, naive) the open pipeline is taken at
    timezone: str
    currency: str
    pipelines: list[PipelineFunnel]
    # Open deals in scope with no stage history: they cannot be placed in a stage.
    open_without_history: int = 0

    def to_dict(self) -> dict[str, Any]:
        options = self.options
        return {
            "as_of": options.as_of.isoformat() if options.as_of else None,
            "as_of_utc": self.as_of.isoformat(timespec="seconds"),
            "from": options.start.isoformat() if options.start else None,
            "to": options.end.isoformat() if options.end else None,
            "pipeline": options.pipeline,
            "by": ["rep"] if options.by_rep else [],
            "where": {dim: list(values) for dim, values in options.where},
            "timezone": self.timezone,
            "currency": self.currency,
            "leak_gap": LEAK_GAP,
            "open_deals_without_history": self.open_without_history,
            "pipelines": [p.to_dict() for p in self.pipelines],
        }
