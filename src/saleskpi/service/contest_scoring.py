"""A contest's standings from the KPIs: one scorecard by rep over the contest's days.

Every figure comes from ``SalesKpiService.scorecard`` (the catalogue's definitions,
the company's time zone, the service's cache), asked for the contest's
participants only: the scope of a contest is its participants, whoever reads it
(``saleskpi.service.contests`` decides who may read it and what of it).

- A rep's score is the KPI's value, the points of the formula (the sum of each
  KPI's value times its points; no value counts as 0), or the share of their own
  target for the contest's days (``contest_rules.span_target``), in the KPI's
  direction (``attainment_of``: above 1 is good either way).
- A team's score is the per-person average of its reps' scores, over the reps
  active in the period only: those with anything counted in the contest's KPIs or
  in the usual activity (calls, meetings, e-mails, deals won or lost). A rep on
  leave or just hired would pull a small team down; a big team would win on size.
  Team membership is the reps' team now (as the rest of saleskpi counts teams).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from saleskpi.domain.contest_rules import (
    match_result,
    places,
    round_robin,
    span_target,
    tally,
    weeks,
)
from saleskpi.domain.contest_rules import winners as winners_of
from saleskpi.domain.contests import (
    Contest,
    ContestDefinition,
    Entry,
    Match,
    MatchResult,
    Record,
    Standings,
)
from saleskpi.domain.query import KpiQuery, ResultRow, Scope
from saleskpi.domain.targets import TargetRecord, effective
from saleskpi.service.attainment import attainment_of, is_cumulative
from saleskpi.service.core import active

if TYPE_CHECKING:
    from saleskpi.service.core import SalesKpiService

# What makes a rep "active" in a team contest, besides the contest's own KPIs.
ACTIVITY_KPIS = ("calls", "meetings", "emails", "deals_won", "deals_lost")


@dataclass
class Score:
    """One participant's figures over some days (before places are given)."""

    score: float | None
    value: float | None = None
    target: float | None = None
    breakdown: dict[str, float | None] = field(default_factory=dict)
    tiebreak: float | None = None
    members: int | None = None
    active: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class Field:
    """Who takes part: each participant's reps and name."""

    reps: dict[str, tuple[str, ...]]  # participant key -> its reps
    names: dict[str, str]


def field_of(service: SalesKpiService, definition: ContestDefinition) -> Field:
    people = service.visible_reps()
    if definition.participants == "reps":
        names = {r.rep: r.name for r in people}
        return Field({m: (m,) for m in definition.members},
                     {m: names.get(m, m) for m in definition.members})
    teams: dict[str, list[str]] = defaultdict(list)
    for rep in people:
        if rep.team in definition.members:
            teams[rep.team].append(rep.rep)
    return Field({m: tuple(teams.get(m, ())) for m in definition.members},
                 {m: m for m in definition.members})


def higher_is_better(service: SalesKpiService, definition: ContestDefinition) -> bool:
    """The score's direction: points and shares of target always up, a KPI its own way."""
    if definition.kpi is None or definition.rank_by == "target":
        return True
    return service.catalog.get(definition.kpi).higher_is_better


def score_unit(service: SalesKpiService, definition: ContestDefinition) -> str:
    if definition.kpi is None:
        return "points"
    if definition.rank_by == "target":
        return "ratio"
    unit = service.catalog.get(definition.kpi).unit
    return service.settings.currency if unit == "money" else unit


def measure(service: SalesKpiService, definition: ContestDefinition, field_: Field,
            start: dt.date, end: dt.date) -> dict[str, Score]:
    """Each participant's score over [start, end]."""
    catalog = service.catalog
    tie = definition.tie_kpi
    activity = [k for k in ACTIVITY_KPIS if k in catalog.kpis] \
        if definition.participants == "teams" else []
    asked = tuple(dict.fromkeys([*definition.kpis(), *([tie] if tie else []), *activity]))
    reps = sorted({rep for members in field_.reps.values() for rep in members})
    rows: dict[str, ResultRow] = {}
    if reps:
        card = service.scorecard(KpiQuery(asked, by=("rep",), start=start, end=end),
                                 Scope(rep_ids=frozenset(reps)), totals=False)
        rows = {row.keys.get("rep") or "": row for row in card.rows}
    targets = _targets(service, definition, reps)
    per_rep = {rep: _rep_score(service, definition, rows.get(rep), targets.get(rep, []),
                               start, end) for rep in reps}
    if definition.participants == "reps":
        return {key: per_rep[key] for key in field_.reps}
    return {key: _team_score(definition, [(per_rep[r], rows.get(r)) for r in members])
            for key, members in field_.reps.items()}


def _targets(service: SalesKpiService, definition: ContestDefinition,
             reps: Sequence[str]) -> dict[str, list[TargetRecord]]:
    if definition.rank_by != "target" or definition.kpi is None:
        return {}
    wanted = set(reps)
    found: dict[str, list[TargetRecord]] = defaultdict(list)
    # Each rep target as its person's: set for an old CRM's id, it is the person's.
    for target in effective(service.as_people(service.list_targets(kpis=(definition.kpi,)))):
        if target.level == "rep" and target.rep_id in wanted:
            found[target.rep_id or ""].append(target)
    return found


def _value(row: ResultRow | None, kpi: str) -> float | None:
    if row is None or kpi not in row.values:
        return None
    return row.values[kpi].value


def _rep_score(service: SalesKpiService, definition: ContestDefinition,
               row: ResultRow | None, targets: list[TargetRecord], start: dt.date,
               end: dt.date) -> Score:
    tie = definition.tie_kpi
    tiebreak = _value(row, tie) if tie else None
    if definition.kpi is None:
        breakdown = {r.kpi: _value(row, r.kpi) for r in definition.points}
        points = sum(r.points * (breakdown[r.kpi] or 0.0) for r in definition.points)
        return Score(points, breakdown=breakdown, tiebreak=tiebreak)
    spec = service.catalog.get(definition.kpi)
    value = _value(row, definition.kpi)
    cumulative = is_cumulative(spec)
    if cumulative and value is None:
        value = 0.0  # nothing counted: none done
    if definition.rank_by == "value":
        return Score(value, value=value, tiebreak=tiebreak,
                     note=None if value is not None else "no_value")
    plan = span_target(targets, start, end, cumulative=cumulative,
                       holidays=service.settings.holidays)
    share = attainment_of(plan, value, spec.higher_is_better) if plan is not None else None
    note = "no_target" if not plan else ("no_value" if share is None else None)
    return Score(share, value=value, target=plan, tiebreak=tiebreak, note=note)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _team_score(definition: ContestDefinition,
                members: Sequence[tuple[Score, ResultRow | None]]) -> Score:
    """The per-person average of the team's active reps (see the module's docstring)."""
    working = [score for score, row in members if row is not None and active(row)]
    scored = [s for s in working if s.score is not None]
    note = None
    if not working:
        note = "no_active_reps"
    elif not scored:
        note = next((s.note for s in working if s.note), "no_value")
    breakdown = {r.kpi: _mean([s.breakdown.get(r.kpi) or 0.0 for s in working])
                 for r in definition.points}
    return Score(_mean([s.score for s in scored]), value=_mean([s.value for s in working]),
                 breakdown=breakdown, tiebreak=_mean([s.tiebreak for s in working]),
                 members=len(members), active=len(working), note=note)


# -- the board ------------------------------------------------------------------------------
def standings(service: SalesKpiService, contest: Contest, *, today: dt.date,
              final: bool = False, computed_at: dt.datetime | None = None) -> Standings:
    """The contest's standings with what is counted by the end of ``today`` (company time).

    ``final``: the standings a closed contest keeps (every week's match decided).
    """
    definition = contest.definition
    field_ = field_of(service, definition)
    higher = higher_is_better(service, definition)
    scores = measure(service, definition, field_, definition.start, definition.end)
    tie = definition.tie_kpi
    ranks = places({k: s.score for k, s in scores.items()}, higher_is_better=higher,
                   tiebreak={k: s.tiebreak for k, s in scores.items()} if tie else None,
                   tiebreak_higher=service.catalog.get(tie).higher_is_better if tie else True)
    # Nobody wins with nothing: where more is better, a score of 0 takes no prize.
    won = [key for key in winners_of(ranks, definition.winners)
           if not higher or (scores[key].score or 0.0) > 0]
    entries = [Entry(key=key, name=field_.names[key], rank=ranks[key], score=s.score,
                     value=s.value, target=s.target, breakdown=s.breakdown,
                     tiebreak=s.tiebreak, members=s.members, active=s.active, note=s.note,
                     winner=key in won)
               for key, s in scores.items()]
    entries.sort(key=lambda e: (e.rank is None, e.rank or 0, e.name.casefold(), e.key))
    matches: list[Match] = []
    records: list[Record] = []
    if definition.head_to_head:
        matches = _matches(service, definition, field_, higher, today=today, final=final)
        records = _records(matches, field_)
    measured = None if today < definition.start else min(today, definition.end)
    return Standings(
        contest_id=contest.id, name=definition.name, participants=definition.participants,
        rank_by=definition.rank_by, kpi=definition.kpi, points=definition.points,
        unit=score_unit(service, definition), higher_is_better=higher,
        start=definition.start, end=definition.end, measured_to=measured,
        computed_at=computed_at or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
        final=final, entries=entries, matches=matches, records=records, winners=won)


def _matches(service: SalesKpiService, definition: ContestDefinition, field_: Field,
             higher: bool, *, today: dt.date, final: bool) -> list[Match]:
    """Every week's pairs: decided once the week is over (or the contest closed), live
    during it, scheduled before it."""
    keys = list(field_.reps)
    found = []
    for number, (first, last) in enumerate(weeks(definition.start, definition.end)):
        pairs = round_robin(keys, number)
        scores = measure(service, definition, field_, first, last) \
            if final or first <= today else {}
        for home, away in pairs:
            mine = scores.get(home)
            theirs = scores.get(away) if away is not None else None
            result: MatchResult
            if not scores:
                result = "scheduled"
            elif away is None:
                result = "bye"
            elif not final and last >= today:
                result = "live"
            else:
                result = match_result(mine.score if mine else None,
                                      theirs.score if theirs else None,
                                      higher_is_better=higher)
            found.append(Match(week=number + 1, start=first, end=last, home=home, away=away,
                               home_score=mine.score if mine else None,
                               away_score=theirs.score if theirs else None, result=result))
    return found


def _records(matches: Sequence[Match], field_: Field) -> list[Record]:
    tallies = tally((m.home, m.away, m.result) for m in matches)
    scores: dict[str, float | None] = {key: tallies[key].score if key in tallies else 0.0
                                       for key in field_.reps}
    ranks = places(scores)
    records = []
    for key in field_.reps:
        t = tallies.get(key)
        records.append(Record(key=key, name=field_.names[key], played=t.played if t else 0,
                              wins=t.wins if t else 0, draws=t.draws if t else 0,
                              losses=t.losses if t else 0, score=scores[key] or 0.0,
                              rank=ranks[key] or 1))
    records.sort(key=lambda r: (r.rank, r.name.casefold(), r.key))
    return records
