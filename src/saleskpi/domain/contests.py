"""Contests as data: what a contest measures, who takes part, and its standings.

A contest ranks reps, or teams, over a period (first and last day, inclusive, in
the company's time zone) on one catalogue KPI or on a points formula (points per
unit of several KPIs that add up: 1 per call, 5 per meeting, 20 per deal won).
It ranks by the value itself or by the share of each one's own target. Teams are
ranked by the per-person average of their reps who were active in the period, so
that teams of different sizes compete fairly. Ties share a place unless the tie
rule names a KPI that breaks them. Optionally, participants meet head to head
every week (Monday to Sunday), paired by a round robin.

The definition is checked here (pure rules); whether its KPIs exist in the
catalogue, and whether they add up, is checked by ``saleskpi.service.contests``.
Standings are pydantic models too: a closed contest keeps them, as JSON, exactly
as they were when it was closed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.query import MAX_DATE, MIN_DATE

RankBy = Literal["value", "target"]
Participants = Literal["reps", "teams"]
SHARED = "shared"  # the tie rule by default: tied participants share a place (1, 2, 2, 4)
TIE_KPI_PREFIX = "kpi:"  # "kpi:revenue": the better revenue takes the higher place
MAX_DAYS = 366  # a contest spans at most a year (53 weeks of head-to-head matches)
MAX_MEMBERS = 500
MAX_POINTS_RULES = 20
MAX_WINNERS = 100


class ContestError(InvalidQuery):
    """A contest that cannot be made as written: the field and what to write instead."""

    default_code = "bad_contest"


class PointsRule(BaseModel):
    """``points`` for each unit of ``kpi`` (a KPI that adds up: a count or a sum)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kpi: str = Field(min_length=1, max_length=200)
    points: float = Field(allow_inf_nan=False)

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: float) -> float:
        if value == 0:
            raise ValueError(_("points per unit must not be 0"))
        return value


class ContestDefinition(BaseModel):
    """What a contest measures, over which days, between whom, and how it ranks them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    kpi: str | None = Field(default=None, max_length=200,
                            description="The catalogue KPI ranked; or give points.")
    points: list[PointsRule] = Field(
        default_factory=list, max_length=MAX_POINTS_RULES,
        description="Points per unit of KPIs that add up, e.g. calls=1, meetings=5.")
    start: dt.date = Field(description="First day, inclusive (company time).")
    end: dt.date = Field(description="Last day, inclusive (company time).")
    participants: Participants = "reps"
    members: list[str] = Field(description="Rep ids, or team names.", max_length=MAX_MEMBERS)
    rank_by: RankBy = Field(default="value", description="value, or target: the share of "
                            "each one's own target.")
    tie_rule: str = Field(default=SHARED, max_length=210,
                          description="shared (tied share a place) or kpi:KEY (the better "
                          "value of KEY takes the higher place).")
    head_to_head: bool = Field(default=False, description="Weekly pairs by round robin.")
    winners: int = Field(default=1, ge=1, le=MAX_WINNERS,
                         description="Places that win (ties at the last one win too).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError(_("give the contest a name"))
        return value

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(m.strip() for m in value if m.strip()))
        if len(cleaned) < 2:
            raise ValueError(_("a contest needs at least two different participants"))
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> ContestDefinition:
        if (self.kpi is None) == (not self.points):
            raise ValueError(_("give either one KPI or a points formula, not both and not "
                               "neither"))
        keys = [rule.kpi for rule in self.points]
        if len(set(keys)) != len(keys):
            raise ValueError(_("a KPI appears twice in the points formula"))
        if self.points and self.rank_by == "target":
            raise ValueError(_("a points formula has no target: rank it by value"))
        for day, name in ((self.start, "start"), (self.end, "end")):
            if not MIN_DATE <= day <= MAX_DATE:
                raise ValueError(_("{name} {day}: dates must lie between {low} and {high}",
                                   name=name, day=day.isoformat(), low=MIN_DATE.isoformat(),
                                   high=MAX_DATE.isoformat()))
        if self.end < self.start:
            raise ValueError(_("the contest ends ({end}) before it starts ({start})",
                               end=self.end.isoformat(), start=self.start.isoformat()))
        if (self.end - self.start).days + 1 > MAX_DAYS:
            raise ValueError(_("a contest lasts at most {days} days", days=MAX_DAYS))
        if self.tie_rule != SHARED and not (self.tie_rule.startswith(TIE_KPI_PREFIX)
                                            and self.tie_kpi):
            raise ValueError(_("tie_rule: write shared, or kpi:KEY (e.g. kpi:revenue)"))
        return self

    @property
    def tie_kpi(self) -> str | None:
        """The KPI that breaks ties (``kpi:KEY``), or None when tied places are shared."""
        if not self.tie_rule.startswith(TIE_KPI_PREFIX):
            return None
        return self.tie_rule.removeprefix(TIE_KPI_PREFIX).strip() or None

    def kpis(self) -> tuple[str, ...]:
        """Every KPI the score is made of (the one ranked, or those of the formula)."""
        return (self.kpi,) if self.kpi is not None else tuple(r.kpi for r in self.points)

    def formula_text(self) -> str:
        """The points formula as typed: ``calls=1, meetings=5``."""
        return ", ".join(f"{r.kpi}={r.points:g}" for r in self.points)


def parse_definition(data: dict[str, Any]) -> ContestDefinition:
    """``data`` as a contest, or ``ContestError`` naming each wrong field and why."""
    try:
        return ContestDefinition.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ContestError(_("the contest is not valid: {problems}",
                             problems="; ".join(problems))) from None


def parse_points(items: list[str]) -> list[PointsRule]:
    """``["calls=1", "meetings=5"]`` (as the CLI and the web form take them) as rules."""
    rules = []
    for item in items:
        for part in item.replace(";", ",").split(","):
            if not part.strip():
                continue
            kpi, sep, value = part.partition("=")
            try:
                points = float(value.strip().replace(",", "."))
            except ValueError:
                points = None
            if not sep or not kpi.strip() or points is None:
                raise ContestError(_("points: write KPI=POINTS, e.g. calls=1 or "
                                     "deals_won=20; got {item!r}", item=part.strip()))
            rules.append(PointsRule(kpi=kpi.strip(), points=points))
    return rules


# -- standings ----------------------------------------------------------------------------
class Entry(BaseModel):
    """One participant's place. ``score`` is what is ranked: the KPI's value, the points,
    or the share of the target (0.8 = 80%). A team's figures are per-person averages."""

    key: str = Field(description="The rep id or the team name.")
    name: str
    rank: int | None = Field(description="1 is first; null: no score to rank.")
    score: float | None
    value: float | None = Field(default=None, description="The KPI's value (target: the "
                                "actual so far).")
    target: float | None = Field(default=None, description="The target for the contest's "
                                 "days (target ranking).")
    breakdown: dict[str, float | None] = Field(
        default_factory=dict, description="Points formula: each KPI's value.")
    tiebreak: float | None = Field(default=None, description="The tie rule KPI's value.")
    members: int | None = Field(default=None, description="Teams: reps in the team.")
    active: int | None = Field(default=None, description="Teams: reps active in the period, "
                               "those the average is over.")
    note: str | None = Field(default=None, description="Why there is no score: no_target, "
                             "no_active_reps, no_value.")
    winner: bool = False
    details: bool = Field(default=True, description="False: figures outside the reader's "
                          "scope are left out (value, target, breakdown).")


MatchResult = Literal["home", "away", "draw", "bye", "live", "scheduled"]


class Match(BaseModel):
    """One week's head-to-head meeting of two participants (away null: a bye)."""

    week: int = Field(description="1 is the contest's first week.")
    start: dt.date
    end: dt.date
    home: str
    away: str | None
    home_score: float | None = None
    away_score: float | None = None
    result: MatchResult


class Record(BaseModel):
    """A participant's head-to-head record over the weeks played to the end."""

    key: str
    name: str
    played: int
    wins: int
    draws: int
    losses: int
    score: float = Field(description="Wins plus half the draws.")
    rank: int


class Standings(BaseModel):
    """A contest's board, live or final (kept as it was when the contest was closed)."""

    model_config = ConfigDict(extra="ignore")

    contest_id: int
    name: str
    participants: Participants
    rank_by: RankBy
    kpi: str | None
    points: list[PointsRule] = Field(default_factory=list)
    unit: str = Field(description="Of the score: the KPI's unit (money: the currency), "
                      "points, or ratio for the share of target.")
    higher_is_better: bool
    start: dt.date
    end: dt.date
    measured_to: dt.date | None = Field(description="The last day counted so far; null "
                                        "before the contest starts.")
    computed_at: dt.datetime = Field(description="When these standings were computed (UTC).")
    final: bool = Field(description="True once the contest is closed: these never change.")
    entries: list[Entry]
    matches: list[Match] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)
    winners: list[str] = Field(default_factory=list, description="Keys of the winners.")


ContestStatus = Literal["upcoming", "running", "ended", "closed"]


class Contest(BaseModel):
    """A stored contest: its definition, who made it, and, once closed, its result."""

    id: int
    definition: ContestDefinition
    created_at: dt.datetime
    created_by: str
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    winners: list[str] = Field(default_factory=list)
    final: Standings | None = None

    def status(self, today: dt.date) -> ContestStatus:
        """closed (results kept), ended (its last day is over: ready to close), running or
        upcoming, on ``today`` in the company's time zone."""
        if self.closed_at is not None:
            return "closed"
        if today > self.definition.end:
            return "ended"
        return "running" if today >= self.definition.start else "upcoming"
