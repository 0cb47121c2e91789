"""Deals with their stage entries, and the reps' own forecasts, for the forecast.

Rows are the scorecard's: the deals view (amounts in the reporting currency, the rep
as the person across sources, the rep's team) filtered by the caller's scope, which
the service adds to ``where``. Terminal stages (won, lost: ``funnel.yaml``) are not
stage entries: a deal's close is its status and ``closed_at``.

The queries are Ibis expressions compiled for the store's dialect (DuckDB,
PostgreSQL, ClickHouse), every filter value bound (``saleskpi.engine.bound``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir

from saleskpi.catalog.funnel import FunnelConfig
from saleskpi.domain.forecasting import CommitEntry, DealHistory
from saleskpi.domain.query import Where
from saleskpi.engine.bound import BoundValues, bound_sql
from saleskpi.engine.database import Database
from saleskpi.engine.views import ViewContext, build_view


def _view(db: Database, view: str, currency: str) -> ir.Table:
    ctx = ViewContext(tables=lambda name: db.ibis.table(name), currency=currency,
                      several_sources=db.sources_of_reps() > 1)
    return build_view(ctx, view, {"amount_rc"}, ["rep", "team"])


def _in_scope(view: ir.Table, where: Where, params: BoundValues) -> ir.Table:
    """``view``'s rows the rep and team filters (the scope) let through, values bound."""
    filters: list[ir.BooleanValue] = []
    for index, (dim, values) in enumerate(where):
        if dim not in ("rep", "team"):
            raise ValueError(f"the forecast filters by rep and team only, not {dim!r}")
        options = [params(f"f{index}_{i}", str(value)) for i, value in enumerate(values)]
        # No values (a scope that sees no one) lets nothing through.
        filters.append(view[f"dim_{dim}"].isin(options).fill_null(False) if options
                       else ibis.literal(False))
    return view.filter(*filters) if filters else view


def _text(value: ir.Value) -> ir.Value:
    return value.cast("string")


def _probability(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number / 100 if number > 1 else number


def _stage_entries(db: Database, deals: ir.Table, terminal: list[str],
                   params: BoundValues) -> ir.Table:
    """(source, deal, stage, entered) of the non-terminal stage entries of ``deals``."""
    keys = deals.select(deal_source=deals.datasource, deal_key=_text(deals.id))
    changes = db.ibis.table("stage_changes")
    stage = changes.stage.strip()
    filters = [changes.entered_at.notnull(), stage.fill_null("") != ""]
    if terminal:
        names = [params(f"terminal_{i}", name) for i, name in enumerate(terminal)]
        filters.append(~stage.lower().isin(names))
    entries = changes.filter(*filters).select(
        source=changes.datasource, deal=_text(changes.deal_id), stage=stage,
        entered=changes.entered_at)
    joined = entries.join(keys, [entries.source == keys.deal_source,
                                 entries.deal == keys.deal_key])
    return joined.select("source", "deal", "stage", "entered").order_by(
        "source", "deal", "entered")


def load_deals(db: Database, config: FunnelConfig, *, currency: str,
               where: Where = ()) -> list[DealHistory]:
    """Every deal ``where`` lets through, with its non-terminal stage entries."""
    view = _view(db, "deals", currency)
    terminal = sorted({*config.won_names(), *config.lost_names()})
    entries: dict[tuple[str, str], list[tuple[str, dt.datetime]]] = {}
    # Each query binds exactly its own values (DuckDB refuses a value it has no place for).
    params = BoundValues()
    staged = _stage_entries(db, _in_scope(view, where, params), terminal, params)
    for source, deal, stage, entered in db.fetch(bound_sql(db, staged, params),
                                                 params.values):
        entries.setdefault((source, deal), []).append((str(stage), entered))
    params = BoundValues()
    deals = _in_scope(view, where, params)
    rows = deals.select(
        deals.datasource, _text(deals.id).name("id"), _text(deals.dim_rep).name("rep"),
        _text(deals.dim_team).name("team"), deals.pipeline, deals.stage, deals.status,
        deals.created_at, deals.closed_at, deals.expected_close_at, deals.probability,
        deals.amount_rc.cast("float64").name("amount"),
    ).order_by("datasource", "id")
    found = []
    for (source, deal, rep, team, pipeline, stage, status, created, closed, expected,
         probability, amount) in db.fetch(bound_sql(db, rows, params), params.values):
        found.append(DealHistory(
            source=source, id=deal, rep=rep or "", team=team, pipeline=pipeline,
            stage=stage, status=str(status or "open").lower(), created_at=created,
            closed_at=closed, expected_close_at=expected,
            probability=_probability(probability),
            amount=None if amount is None else float(amount),
            entries=tuple(entries.get((source, deal), ()))))
    return found


def load_commits(db: Database, *, currency: str, where: Where = ()) -> list[CommitEntry]:
    """The reps' and teams' own forecasts (the ``forecasts`` entity) ``where`` lets through."""
    params = BoundValues()
    commits = _in_scope(_view(db, "forecasts", currency), where, params)
    commits = commits.filter(commits.amount_rc.notnull())
    rows = commits.select(
        commits.made_at, commits.period_start, commits.period_end,
        commits.amount_rc.cast("float64").name("amount"),
        ibis.ifelse(commits.rep_id.isnull(), ibis.null("string"),
                    _text(commits.dim_rep)).name("rep"),
        _text(commits.dim_team).name("team"), commits.category)
    return [CommitEntry(made_at=made, period_start=start, period_end=end, amount=float(amount),
                        rep=rep, team=team, category=category)
            for made, start, end, amount, rep, team, category
            in db.fetch(bound_sql(db, rows, params), params.values)]
