"""The funnel's queries as Ibis expressions, compiled for any dialect Ibis knows.

Imported only to compile a funnel shape the caches do not hold
(``saleskpi.engine.compile``); ``saleskpi.engine.funnel`` runs the SQL and says what
the numbers mean. Every deal's history becomes one ordered list of events: its stage
entries and its closes; consecutive entries into the same stage are one stay.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from saleskpi.engine.build import render
from saleskpi.engine.derived import seconds_between
from saleskpi.engine.shape import FUNNEL_ORDER_TABLE, Compiled, FunnelShape
from saleskpi.engine.views import ViewContext, build_view

# Sort keys for events at the same instant: stages in funnel order, closes last.
UNKNOWN_POS = 1_000_000_000
CLOSE_POS = 2_000_000_000
# The funnel query's rows: one part per kind of figure, the others' columns NULL.
FUNNEL_COLUMNS = ("part", "pipeline", "stage", "rep", "team_row", "entered", "converted",
                  "dropped", "finished", "median_days", "p90_days", "open_deals",
                  "open_amount")
ORDER_COLUMNS = ("pipeline", "stage", "median", "mean", "deals")
Params = list[tuple[str, ir.Scalar]]


class _Builder:
    """The expressions of one funnel shape; collects its named parameters in order."""

    def __init__(self, ctx: ViewContext, shape: FunnelShape) -> None:
        self.ctx = ctx
        self.shape = shape
        self.named: Params = []

    def param(self, name: str) -> ir.Scalar:
        placeholder = ibis.param("string")
        self.named.append((name, placeholder))
        return placeholder

    # -- the deals and their stage history ------------------------------------------------
    def deals(self) -> ir.Table:
        """The deals in scope: id, source, owner, status, close, amount and pipeline."""
        shape = self.shape
        if shape.query == "order":
            # The order is the pipeline's, learned from every deal: no scope, no amounts.
            view = self.ctx.tables("deals")
        else:
            view = build_view(self.ctx, "deals", {"amount_rc"}, list(shape.dims))
        filters: list[ir.BooleanValue] = []
        for index, (dim, arity) in enumerate(shape.filter_arity):
            values = [self.param(f"f{index}_{i}") for i in range(arity)]
            # No values (a scope that sees no one) lets nothing through.
            filters.append(view[f"dim_{dim}"].isin(values).fill_null(False) if values
                           else ibis.literal(False))
        if filters:
            view = view.filter(*filters)
        amount = (ibis.null("float64") if shape.query == "order"
                  else view.amount_rc.cast("float64"))
        return view.select(src=view.datasource, deal=view.id, rep=view.rep_id,
                           status=view.status, closed_at=view.closed_at, amount=amount,
                           d_pipeline=view.pipeline)

    def stage_changes(self, deals: ir.Table) -> ir.Table:
        """The deals' stage entries, each a ``stage``, a ``won`` or a ``lost`` event."""
        s = self.ctx.tables("stage_changes")
        s = s.filter(s.entered_at.notnull(), s.stage.fill_null("").strip() != "")
        s = s.join(deals, [s.deal_id == deals.deal, s.datasource == deals.src])
        word = s.stage.strip().lower()
        kind = ibis.cases((word.isin(self.shape.won), "won"),
                          (word.isin(self.shape.lost), "lost"), else_="stage")
        return s.select(src=s.datasource, deal=s.deal_id, stage=s.stage.strip(),
                        ts=s.entered_at, s_pipeline=s.pipeline, kind=kind)

    def with_history(self, deals: ir.Table, changes: ir.Table) -> ir.Table:
        """Each deal with its pipeline (its own, else its history's latest) and history."""
        c = changes
        history = c.group_by(_hsrc=c.src, _hdeal=c.deal).aggregate(
            _s_pipeline=c.s_pipeline.argmax(c.ts, where=c.s_pipeline.notnull()),
            last_stage_at=c.ts.max(where=c.kind == "stage"),
            # The latest won and lost entries: is the deal's close in its history?
            _won_at=c.ts.max(where=c.kind == "won"),
            _lost_at=c.ts.max(where=c.kind == "lost"),
        )
        d = deals.left_join(history, [deals.src == history._hsrc, deals.deal == history._hdeal])
        return d.select(
            "src", "deal", "rep", "status", "closed_at", "amount",
            pipeline=d.d_pipeline.coalesce(d._s_pipeline),
            has_history=d._hdeal.notnull(), last_stage_at=d.last_stage_at,
            _won_at=d._won_at, _lost_at=d._lost_at,
        )

    def events(self, deal: ir.Table, changes: ir.Table) -> ir.Table:
        """Every deal's events in order: ``seq``, and ``next_at`` (the next event's time).

        A deal closed without a won or lost entry after its last stage entry is
        closed by its own status at ``closed_at`` (not before that last entry).
        """
        closed_in_history = ibis.cases(
            (deal.status == "won", deal._won_at), (deal.status == "lost", deal._lost_at))
        recorded = closed_in_history.notnull() & (
            deal.last_stage_at.isnull() | (closed_in_history >= deal.last_stage_at))
        closes = deal.filter(deal.has_history, deal.status.isin(["won", "lost"]),
                             deal.closed_at.notnull(), ~recorded)
        closes = closes.select(
            "src", "deal", stage=ibis.null("string"),
            ts=ibis.greatest(closes.closed_at, closes.last_stage_at.coalesce(closes.closed_at)),
            kind=closes.status)
        happened = changes.select("src", "deal", "stage", "ts", "kind").union(closes)
        owner = deal.select(_dsrc=deal.src, _ddeal=deal.deal, pipeline=deal.pipeline,
                            rep=deal.rep, amount=deal.amount)
        ev = happened.join(owner, [happened.src == owner._dsrc, happened.deal == owner._ddeal])
        ev = ev.drop("_dsrc", "_ddeal")
        # Each stage's place in its pipeline's order (filled in before the query runs).
        order = self.ctx.tables(FUNNEL_ORDER_TABLE).select(
            _opipeline="pipeline", _ostage="stage", _opos="pos")
        ev = ev.left_join(order, [ev.pipeline.identical_to(order._opipeline),
                                  ev.stage == order._ostage])
        stage_pos = ev._opos.cast("int64").coalesce(UNKNOWN_POS)
        ev = ev.select("src", "deal", "pipeline", "rep", "amount", "stage", "ts", "kind",
                       pos=ibis.cases((ev.kind != "stage", CLOSE_POS), else_=stage_pos))

        def in_order(table: ir.Table) -> Any:
            return ibis.window(group_by=[table.src, table.deal], order_by=[
                table.ts, table.pos, table.kind, ibis.asc(table.stage, nulls_first=False)])

        w = in_order(ev)
        marked = ev.mutate(_prev_kind=ev.kind.lag().over(w), _prev_stage=ev.stage.lag().over(w))
        kept = marked.filter(
            marked._prev_kind.isnull() | (marked.kind != marked._prev_kind)
            | ((marked.kind == "stage") & ~marked.stage.identical_to(marked._prev_stage))
        ).drop("_prev_kind", "_prev_stage")
        w = in_order(kept)
        return kept.mutate(seq=ibis.row_number().over(w), next_at=kept.ts.lead().over(w))

    # -- the queries ------------------------------------------------------------------------
    def order(self) -> ir.Table:
        """Per pipeline and stage: the positions at which deals first enter it."""
        deals = self.deals()
        changes = self.stage_changes(deals)
        deal = self.with_history(deals, changes)
        stages = changes.filter(changes.kind == "stage")
        owner = deal.select(_dsrc=deal.src, _ddeal=deal.deal, pipeline=deal.pipeline)
        stages = stages.join(owner, [stages.src == owner._dsrc, stages.deal == owner._ddeal])
        firsts = stages.group_by("src", "deal", "pipeline", "stage").aggregate(ts=stages.ts.min())
        w = ibis.window(group_by=[firsts.src, firsts.deal], order_by=[firsts.ts, firsts.stage])
        positions = firsts.mutate(position=ibis.row_number().over(w) + 1)
        return positions.group_by("pipeline", "stage").aggregate(
            median=positions.position.quantile(0.5), mean=positions.position.mean(),
            deals=positions.count())

    def funnel(self) -> ir.Table:
        """Conversion, drop-off and time in stage, the open pipeline, deals without history."""
        deals = self.deals()
        changes = self.stage_changes(deals)
        deal = self.with_history(deals, changes)
        evs = self.events(deal, changes)
        parts = [*self._flow(evs), *self._open(evs), self._without_history(deal)]
        return ibis.union(*parts)

    def _flow(self, evs: ir.Table) -> list[ir.Table]:
        deal = ibis.window(group_by=[evs.src, evs.deal], order_by=evs.seq)
        # What the deal did after each event: the furthest stage it entered, and a win.
        after = ibis.window(group_by=[evs.src, evs.deal], order_by=evs.seq, following=(1, None))
        later = evs.mutate(
            _later_pos=ibis.cases((evs.kind == "stage", evs.pos)).max().over(after),
            _later_won=ibis.cases((evs.kind == "won", 1), else_=0).max().over(after),
            # How the deal ends (its last event), and which was its last stage entry.
            _final_kind=evs.kind.last().over(deal),
            _last_stage_seq=ibis.cases((evs.kind == "stage", evs.seq)).max().over(deal))
        visits = later.filter(later.kind == "stage")
        stays = ibis.window(group_by=[visits.src, visits.deal, visits.stage],
                            order_by=visits.seq)
        in_range: ir.BooleanValue = ibis.literal(True)
        if self.shape.has_start:
            in_range &= visits.ts >= self.param("start").cast("timestamp")
        if self.shape.has_end:
            in_range &= visits.ts < self.param("end").cast("timestamp")
        final_stay = ibis.cases((visits.seq == visits._last_stage_seq, 1), else_=0)
        facts = visits.select(
            "pipeline", "stage", "rep",
            _is_first=ibis.row_number().over(stays) == 0,
            _in_range=in_range,
            _converted=(visits._later_won > 0).fill_null(False)
            | (visits._later_pos > visits.pos).fill_null(False),
            # Finally lost while in this stage: lost, and its last stage entry was this one.
            _dropped=((visits._final_kind == "lost")
                      & (final_stay.max().over(stays) == 1)).fill_null(False),
            _days=seconds_between(visits.next_at, visits.ts) / 86400.0,
        )
        counted = facts._is_first & facts._in_range
        figures = {
            "entered": facts.count(where=counted),
            "converted": facts.count(where=counted & facts._converted),
            "dropped": facts.count(where=counted & facts._dropped),
            "finished": facts._days.count(where=facts._in_range),
            "median_days": facts._days.quantile(0.5, where=facts._in_range),
            "p90_days": facts._days.quantile(0.9, where=facts._in_range),
        }
        return [self._part("flow", facts.group_by(*keys).aggregate(**figures))
                for keys in self._groupings()]

    def _open(self, evs: ir.Table) -> list[ir.Table]:
        """Each deal in the stage of its latest event before the as-of instant, if open."""
        before = evs.filter(evs.ts < self.param("as_of").cast("timestamp"))
        latest = ibis.window(group_by=[before.src, before.deal],
                             order_by=ibis.desc(before.seq))
        snap = before.mutate(_nth=ibis.row_number().over(latest))
        snap = snap.filter(snap._nth == 0, snap.kind == "stage")
        figures = {"open_deals": snap.count(), "open_amount": snap.amount.sum()}
        return [self._part("open", snap.group_by(*keys).aggregate(**figures))
                for keys in self._groupings()]

    def _without_history(self, deal: ir.Table) -> ir.Table:
        """Open deals in scope with no stage history: they cannot be placed in a stage."""
        conditions = [deal.status == "open", ~deal.has_history]
        if self.shape.has_pipeline:
            conditions.append(deal.pipeline == self.param("pipeline"))
        found = deal.filter(*conditions)
        counted = found.aggregate(open_deals=found.count())
        return self._part("without", counted.mutate(pipeline=ibis.null("string"),
                                                    stage=ibis.null("string")))

    def _groupings(self) -> list[tuple[str, ...]]:
        """The team's rows, and each rep's when asked for."""
        team = ("pipeline", "stage")
        return [team, (*team, "rep")] if self.shape.by_rep else [team]

    @staticmethod
    def _part(part: str, rows: ir.Table) -> ir.Table:
        """``rows`` with every funnel column: the ones it lacks are NULL."""
        types = {"pipeline": "string", "stage": "string", "rep": "string",
                 "entered": "int64", "converted": "int64", "dropped": "int64",
                 "finished": "int64", "median_days": "float64", "p90_days": "float64",
                 "open_deals": "int64", "open_amount": "float64"}
        columns: dict[str, ir.Value] = {
            "part": ibis.literal(part),
            "team_row": ibis.literal("rep" not in rows.columns and part != "without"),
        }
        for name, kind in types.items():
            columns[name] = (rows[name].cast(kind) if name in rows.columns
                             else ibis.null(kind))
        return rows.select(**columns)


def build_expression(ctx: ViewContext, shape: FunnelShape) -> tuple[ir.Table, Params]:
    """The funnel shape's expression and its named parameters in order."""
    builder = _Builder(ctx, shape)
    expression = builder.order() if shape.query == "order" else builder.funnel()
    return expression, builder.named


def to_sql(ctx: ViewContext, shape: FunnelShape, dialect: str) -> Compiled:
    """The shape's SQL with a named placeholder (``$as_of``, ``$f0_1``...) per parameter."""
    expression, named = build_expression(ctx, shape)
    sql, params = render(expression, named, dialect)
    return Compiled(sql, params, tuple(expression.columns))
