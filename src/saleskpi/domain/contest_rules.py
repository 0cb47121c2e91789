"""The arithmetic of contests: places, ties, weeks, round-robin pairs, targets for a span.

Pure functions on plain values, so that each rule can be read (and counted by hand)
on its own; ``saleskpi.service.contests`` feeds them the KPI values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from saleskpi.domain.contests import MatchResult
from saleskpi.domain.planning import working_days
from saleskpi.domain.targets import TargetRecord

DIGITS = 9  # values equal to 9 places are a tie (float sums of the same counts)


def _better(a: float | None, b: float | None, higher: bool) -> bool:
    """Whether ``a`` beats ``b``; any value beats none."""
    if a is None:
        return False
    if b is None:
        return True
    a, b = round(a, DIGITS), round(b, DIGITS)
    return a > b if higher else a < b


def places(scores: Mapping[str, float | None], *, higher_is_better: bool = True,
           tiebreak: Mapping[str, float | None] | None = None,
           tiebreak_higher: bool = True) -> dict[str, int | None]:
    """Competition places (1, 2, 2, 4): one plus the number of participants ahead.

    Ahead means a better score or, with ``tiebreak``, the same score and a better
    tie-break value (a tie-break value beats none). Still equal: the same place.
    No score: no place.
    """
    ranks: dict[str, int | None] = {}
    for key, score in scores.items():
        if score is None:
            ranks[key] = None
            continue
        ahead = 0
        for other, theirs in scores.items():
            if other == key or theirs is None:
                continue
            tied = round(theirs, DIGITS) == round(score, DIGITS)
            if _better(theirs, score, higher_is_better) or (
                    tied and tiebreak is not None
                    and _better(tiebreak.get(other), tiebreak.get(key), tiebreak_higher)):
                ahead += 1
        ranks[key] = ahead + 1
    return ranks


def winners(ranks: Mapping[str, int | None], places_that_win: int) -> list[str]:
    """Everyone placed ``places_that_win`` or better (a tie at the last place wins too)."""
    won = [(rank, key) for key, rank in ranks.items()
           if rank is not None and rank <= places_that_win]
    return [key for _rank, key in sorted(won)]


# -- weeks and pairs -----------------------------------------------------------------------
def weeks(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The contest's weeks, Monday to Sunday, the first and last cut to its days."""
    found = []
    first = start
    while first <= end:
        sunday = first + dt.timedelta(days=6 - first.weekday())
        last = min(sunday, end)
        found.append((first, last))
        first = last + dt.timedelta(days=1)
    return found


def round_robin(keys: Sequence[str], week: int) -> list[tuple[str, str | None]]:
    """The pairs of week ``week`` (from 0) by the circle method: the first participant
    stays, the others turn one place a week, so that everyone meets everyone once in
    n - 1 weeks (then again). An odd number adds a bye (``None``)."""
    players: list[str | None] = list(keys)
    if len(players) % 2:
        players.append(None)
    count = len(players)
    if count < 2:
        return []
    rest = players[1:]
    turn = week % (count - 1)
    rest = rest[-turn:] + rest[:-turn] if turn else rest
    order = [players[0], *rest]
    pairs: list[tuple[str, str | None]] = []
    for i in range(count // 2):
        home, away = order[i], order[count - 1 - i]
        if home is None:  # the bye sits at home: the player meets nobody this week
            home, away = away, None
        assert home is not None
        pairs.append((home, away))
    return pairs


def match_result(home: float | None, away: float | None, *, higher_is_better: bool,
                 bye: bool = False) -> MatchResult:
    if bye:
        return "bye"
    if _better(home, away, higher_is_better):
        return "home"
    if _better(away, home, higher_is_better):
        return "away"
    return "draw"


@dataclass
class Tally:
    played: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0

    @property
    def score(self) -> float:
        return self.wins + self.draws / 2


def tally(results: Iterable[tuple[str, str | None, MatchResult]]) -> dict[str, Tally]:
    """Wins, draws and losses per participant over decided matches (home, away, result);
    byes and weeks not over count for nobody."""
    found: dict[str, Tally] = {}
    for home, away, result in results:
        if away is None or result not in ("home", "away", "draw"):
            continue
        for key, won in ((home, "home"), (away, "away")):
            record = found.setdefault(key, Tally())
            record.played += 1
            if result == "draw":
                record.draws += 1
            elif result == won:
                record.wins += 1
            else:
                record.losses += 1
    return found


# -- targets ---------------------------------------------------------------------------------
def _share(first: dt.date, last: dt.date, target: TargetRecord,
           holidays: Collection[dt.date]) -> float:
    """The part of ``target``'s period that [first, last] is, by working days (by calendar
    days for a period without any, a weekend's target)."""
    whole = working_days(target.period_start, target.period_end, holidays)
    if whole:
        return working_days(first, last, holidays) / whole
    return ((last - first).days + 1) / ((target.period_end - target.period_start).days + 1)


def span_target(targets: Sequence[TargetRecord], start: dt.date, end: dt.date, *,
                cumulative: bool, holidays: Collection[dt.date] = ()) -> float | None:
    """A rep's target for the days [start, end], from their targets of one KPI.

    A target for exactly these days is the answer. Otherwise the targets that
    overlap the days are used, longer periods first (a month's plan, not also the
    weeks inside it), and must together cover every day: a KPI that adds up gets
    each target's share by working days (a 2,100 monthly plan of 21 working days
    is 500 for a week of 5); any other KPI (a rate) the average of the targets
    weighted by the working days each covers. None when the days are not covered.
    """
    exact = [t for t in targets if t.period_start == start and t.period_end == end]
    if exact:
        return exact[-1].value
    overlapping = sorted((t for t in targets if t.period_start <= end and t.period_end >= start),
                         key=lambda t: (-(t.period_end - t.period_start).days, t.period_start))
    chosen: list[TargetRecord] = []
    for target in overlapping:
        if all(target.period_end < c.period_start or target.period_start > c.period_end
               for c in chosen):
            chosen.append(target)
    spans = [(t, max(t.period_start, start), min(t.period_end, end)) for t in chosen]
    if not chosen or sum((last - first).days + 1 for _t, first, last in spans) \
            < (end - start).days + 1:
        return None
    if cumulative:
        return sum(t.value * _share(first, last, t, holidays) for t, first, last in spans)
    weights = [working_days(first, last, holidays) for _t, first, last in spans]
    if not any(weights):  # the days are a weekend: weighed by calendar days
        weights = [(last - first).days + 1 for _t, first, last in spans]
    return sum(t.value * w for (t, _f, _l), w in zip(spans, weights, strict=True)) / sum(weights)
