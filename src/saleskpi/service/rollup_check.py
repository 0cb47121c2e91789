"""``saleskpi verify``: the rollups against the raw rows, KPI by KPI (docs/rollups.md).

Every KPI that the rollups can answer is computed twice, once from the rollups and
once from the per-record tables, by rep and month and by a few other slices; any
value that differs is reported with the KPI, the row's keys and both values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from saleskpi.catalog.load import Catalog
from saleskpi.domain.query import KpiQuery, Scorecard
from saleskpi.domain.settings import Settings
from saleskpi.engine.rollups import RollupSpec, keepable, usable, wanted_specs
from saleskpi.engine.scorecard import Engine
from saleskpi.store import rollups
from saleskpi.store.backend import open_store

# The slices checked: by rep (the scorecard's own), and samples of the others.
SLICES: tuple[tuple[str, ...], ...] = (("rep",), ("team", "source"), ("segment",),
                                       ("product", "pipeline"))
CHUNK = 25  # KPIs per question (a question holds at most 50)
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Difference:
    kpi: str
    slices: dict[str, str | None]  # the row's keys: rep, team..., period (a month)
    raw: float | None
    rollup: float | None


@dataclass
class Verification:
    kpis: list[str] = field(default_factory=list)
    rollups: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    values: int = 0  # values compared
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def checked_kpis(catalog: Catalog, kept: dict[tuple[str, str], RollupSpec],
                 zone: str, currency: str) -> list[str]:
    """KPIs every measure of which a kept rollup answers (shares: through their base)."""
    found = []
    for key, spec in catalog.kpis.items():
        if spec.kind == "share":
            continue
        measures = catalog.measures(key)
        if measures and all(keepable(m) and usable(kept.get((m.entity, m.time)), [m], (), zone,
                                                   currency) is not None for m in measures):
            found.append(key)
    return found


def verify(settings: Settings, catalog: Catalog, *, rebuild: bool = False,
           progress: Callable[[str], object] = lambda _m: None) -> Verification:
    """Compare rollups with the raw computation; ``rebuild``: rebuild them all first."""
    result = Verification()
    if rebuild:
        with open_store(settings) as store:
            wanted = wanted_specs(catalog, settings.timezone, settings.currency)
            result.rebuilt = [s.name for s in rollups.build(store, wanted, progress,
                                                            force=True)]
    with open_store(settings, read_only=True) as store:
        kept = rollups.kept(store)
        result.rollups = sorted(s.name for s in kept.values())
        result.kpis = checked_kpis(catalog, kept, settings.timezone, settings.currency)

        def engine(use_rollups: bool) -> Engine:
            return Engine(store, catalog, timezone=settings.timezone,
                          currency=settings.currency, use_rollups=use_rollups)

        for by in SLICES:
            for first in range(0, len(result.kpis), CHUNK):
                query = KpiQuery(tuple(result.kpis[first:first + CHUNK]), by=by,
                                 period="month")
                progress(", ".join(by))
                raw = engine(False).scorecard(query, totals=False)
                rolled = engine(True).scorecard(query, totals=False)
                result.values += _compare(raw, rolled, result.differences)
    return result


def _values(card: Scorecard) -> Iterator[tuple[tuple[tuple[str, str | None], ...], str,
                                               float | None]]:
    for row in card.rows:
        for key, value in row.values.items():
            yield tuple(row.keys.items()), key, value.value


def _compare(raw: Scorecard, rolled: Scorecard, differences: list[Difference]) -> int:
    """Add the values that differ to ``differences``; how many values were compared.

    A row only one side has (a rollup row added or lost) counts as zeros on the other.
    """
    left = {(keys, kpi): value for keys, kpi, value in _values(raw)}
    right = {(keys, kpi): value for keys, kpi, value in _values(rolled)}
    for slot in sorted(left.keys() | right.keys(), key=repr):
        a, b = left.get(slot), right.get(slot)
        if not _same(a, b):
            differences.append(Difference(slot[1], dict(slot[0]), a, b))
    return len(left.keys() | right.keys())


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return (a or 0.0) == (b or 0.0) if (a is None) != (b is None) else True
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
