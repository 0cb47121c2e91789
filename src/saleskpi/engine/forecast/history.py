"""Deals with their stage entries, and the reps' own forecasts, for the forecast.

Rows are the scorecard's: the deals view (amounts in the reporting currency, the rep
as the person across sources, the rep's team) filtered by the caller's scope, which
the service adds to ``where``. Terminal stages (won, lost: ``funnel.yaml``) are not
stage entries: a deal's close is its status and ``closed_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis

from saleskpi.catalog.funnel import FunnelConfig
from saleskpi.domain.forecasting import CommitEntry, DealHistory
from saleskpi.domain.query import Where
from saleskpi.engine.database import Database
from saleskpi.engine.views import ViewContext, build_view

_DEALS = """
SELECT v.datasource, CAST(v.id AS VARCHAR), CAST(v.dim_rep AS VARCHAR),
       CAST(v.dim_team AS VARCHAR), v.pipeline, v.stage, v.status, v.created_at, v.closed_at,
       v.expected_close_at, v.probability, CAST(v.amount_rc AS DOUBLE PRECISION)
FROM ({view}) v
WHERE {filters}
ORDER BY 1, 2
"""

_ENTRIES = """
SELECT s.datasource, CAST(s.deal_id AS VARCHAR), trim(s.stage), s.entered_at
FROM stage_changes s
JOIN ({view}) v
  ON v.datasource = s.datasource AND CAST(v.id AS VARCHAR) = CAST(s.deal_id AS VARCHAR)
WHERE {filters} AND s.entered_at IS NOT NULL AND trim(coalesce(s.stage, '')) <> ''
  AND lower(trim(s.stage)) NOT IN (SELECT unnest(CAST($terminal AS VARCHAR[])))
ORDER BY 1, 2, 4
"""

_COMMITS = """
SELECT v.made_at, v.period_start, v.period_end, CAST(v.amount_rc AS DOUBLE PRECISION),
       CASE WHEN v.rep_id IS NULL THEN NULL ELSE CAST(v.dim_rep AS VARCHAR) END,
       CAST(v.dim_team AS VARCHAR), v.category
FROM ({view}) v
WHERE {filters} AND v.amount_rc IS NOT NULL
"""


def _filters(where: Where) -> tuple[str, dict[str, Any]]:
    """Rep and team filters (the scope) over the view's ``dim_*`` columns, values bound."""
    parts = ["true"]
    params: dict[str, Any] = {}
    for index, (dim, values) in enumerate(where):
        if dim not in ("rep", "team"):
            raise ValueError(f"the forecast filters by rep and team only, not {dim!r}")
        names = [f"f{index}_{i}" for i in range(len(values))]
        params.update(zip(names, values, strict=True))
        # No values (a scope that sees no one) lets nothing through.
        parts.append(f'v."dim_{dim}" IN ({", ".join("$" + n for n in names)})' if names
                     else "false")
    return " AND ".join(parts), params


def _view_sql(db: Database, view: str, currency: str) -> str:
    ctx = ViewContext(tables=db.ibis.table, currency=currency,
                      several_sources=db.sources_of_reps() > 1)
    table = build_view(ctx, view, {"amount_rc"}, ["rep", "team"])
    return str(ibis.to_sql(table, dialect=db.dialect.name))


def _probability(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number / 100 if number > 1 else number


def load_deals(db: Database, config: FunnelConfig, *, currency: str,
               where: Where = ()) -> list[DealHistory]:
    """Every deal ``where`` lets through, with its non-terminal stage entries."""
    view = _view_sql(db, "deals", currency)
    filters, params = _filters(where)
    entries: dict[tuple[str, str], list[tuple[str, dt.datetime]]] = {}
    terminal = sorted({*config.won_names(), *config.lost_names()})
    for source, deal, stage, entered in db.fetch(
            _ENTRIES.format(view=view, filters=filters), {**params, "terminal": terminal}):
        entries.setdefault((source, deal), []).append((str(stage), entered))
    deals = []
    for (source, deal, rep, team, pipeline, stage, status, created, closed, expected,
         probability, amount) in db.fetch(_DEALS.format(view=view, filters=filters), params):
        deals.append(DealHistory(
            source=source, id=deal, rep=rep or "", team=team, pipeline=pipeline,
            stage=stage, status=str(status or "open").lower(), created_at=created,
            closed_at=closed, expected_close_at=expected,
            probability=_probability(probability),
            amount=None if amount is None else float(amount),
            entries=tuple(entries.get((source, deal), ()))))
    return deals


def load_commits(db: Database, *, currency: str, where: Where = ()) -> list[CommitEntry]:
    """The reps' and teams' own forecasts (the ``forecasts`` entity) ``where`` lets through."""
    view = _view_sql(db, "forecasts", currency)
    filters, params = _filters(where)
    return [CommitEntry(made_at=made, period_start=start, period_end=end, amount=float(amount),
                        rep=rep, team=team, category=category)
            for made, start, end, amount, rep, team, category
            in db.fetch(_COMMITS.format(view=view, filters=filters), params)]
