"""The funnel's queries as Ibis expressions, compiled for any dialect Ibis knows.

Imported only to compile a funnel shape the caches do not hold
(``saleskpi.engine.compile``); ``saleskpi.engine.funnel`` runs the SQL and says what
the numbers mean. Every deal's history becomes one ordered list of events: its stage
entries and its closes; consecutive entries into the same stage are one stay.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from saleskpi.domain.query import DIMENSIONS
from saleskpi.engine.build import render
from saleskpi.engine.derived import seconds_between
from saleskpi.engine.money import exact_sum
from saleskpi.engine.shape import (
    FUNNEL_DEALS_TABLE,
    FUNNEL_EVENTS_TABLE,
    FUNNEL_ORDER_TABLE,
    Compiled,
    FunnelShape,
)
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
# What each event carries of its deal.
OWNER_COLUMNS = ("pipeline", "rep", "amount")


class _Builder:
    """The expressions of one funnel shape; collects its named parameters in order."""

    def __init__(self, ctx: ViewContext, shape: FunnelShape) -> None:
        self.ctx = ctx
        self.shape = shape
        self.named: Params = []

    def param(self, name: str) -> ir.Scalar:
        """The parameter ``name``: one placeholder however many parts use it."""
        for known, placeholder in self.named:
            if known == name:
                return placeholder
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
            # With reps from several sources a deal's owner is the person (``dim_rep``):
            # one row per person by rep, whichever source each deal came from.
            dims = list(dict.fromkeys((*shape.dims, *self._person_dims())))
            view = build_view(self.ctx, "deals", {"amount_rc"}, dims)
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
        owner = view.dim_rep if "dim_rep" in view.columns and self._person_dims() \
            else view.rep_id
        return view.select(src=view.datasource, deal=view.id, rep=owner,
                           status=view.status, closed_at=view.closed_at, amount=amount,
                           d_pipeline=view.pipeline)

    def _person_dims(self) -> tuple[str, ...]:
        """("rep",) when a rep is a person matched across sources, else ()."""
        return ("rep",) if self.ctx.several_sources and self.shape.query != "order" else ()

    def stage_kinds(self) -> ir.Table:
        """Each stage as spelled in the history (``_raw``, never blank): its name
        trimmed and whether it is a ``stage``, a ``won`` or a ``lost`` entry.

        A history of millions of entries spells its stages a few dozen ways: trimming
        and classifying each entry was most of the time spent summing histories up;
        each spelling once, joined back, is a fraction of it.
        """
        s = self.ctx.tables("stage_changes")
        raw = s.select(_raw=s.stage).distinct()
        raw = raw.filter(raw._raw.fill_null("").strip() != "")
        word = raw._raw.strip().lower()
        kind = ibis.cases((word.isin(self.shape.won), "won"),
                          (word.isin(self.shape.lost), "lost"), else_="stage")
        # Worked out as aggregates of the spelling's one row: a projection would be
        # moved past the join by the optimizer (DuckDB's), once per entry again.
        return raw.group_by("_raw").aggregate(_stage=raw._raw.strip().max(),
                                              _kind=kind.max())

    def stage_changes(self, deals: ir.Table | None, owned: bool = False) -> ir.Table:
        """The deals' stage entries, each a ``stage``, a ``won`` or a ``lost`` event
        (``deals`` None: every deal's, for a caller that joins them to their deals;
        ``owned``: each with its deal's ``OWNER_COLUMNS``, read from ``deals``)."""
        s = self.ctx.tables("stage_changes")
        s = s.filter(s.entered_at.notnull())
        kinds = self.stage_kinds()
        s = s.join(kinds, s.stage == kinds._raw)
        if deals is not None:
            s = s.join(deals, [s.deal_id == deals.deal, s.datasource == deals.src])
        owner = {c: deals[c] for c in OWNER_COLUMNS} if owned and deals is not None else {}
        return s.select(src=s.datasource, deal=s.deal_id, stage=s._stage,
                        ts=s.entered_at, s_pipeline=s.pipeline, kind=s._kind, **owner)

    def with_history(self, deals: ir.Table, changes: ir.Table) -> ir.Table:
        """Each deal with its pipeline (its own, else its history's latest) and history."""
        c = changes
        history = c.group_by(_hsrc=c.src, _hdeal=c.deal).aggregate(
            _s_pipeline=c.s_pipeline.argmax(c.ts, where=c.s_pipeline.notnull()),
            last_stage_at=c.ts.max(where=c.kind == "stage"),
            # The latest won and lost entries: is the deal's close in its history?
            _won_at=c.ts.max(where=c.kind == "won"),
            _lost_at=c.ts.max(where=c.kind == "lost"),
            # What tells whether the deal can count in the funnel's question (``relevant``).
            **({"_last_at": c.ts.max(),
                "_entries_in_range": c.count(where=(c.kind == "stage")
                                             & self._in_range(c.ts))}
               if self.shape.query == "funnel" else {}),
        )
        d = deals.left_join(history, [deals.src == history._hsrc, deals.deal == history._hdeal])
        return d.select(
            "src", "deal", "rep", "status", "closed_at", "amount",
            *(("_last_at", "_entries_in_range") if self.shape.query == "funnel" else ()),
            pipeline=d.d_pipeline.coalesce(d._s_pipeline),
            has_history=d._hdeal.notnull(), last_stage_at=d.last_stage_at,
            _won_at=d._won_at, _lost_at=d._lost_at,
        )

    def _in_range(self, ts: ir.TimestampValue) -> ir.BooleanValue:
        """Whether a stage entry at ``ts`` is in the question's date range."""
        in_range: ir.BooleanValue = ibis.literal(True)
        if self.shape.has_start:
            in_range &= ts >= self.param("start").cast("timestamp")
        if self.shape.has_end:
            in_range &= ts < self.param("end").cast("timestamp")
        return in_range

    def _closes(self, deal: ir.Table) -> tuple[ir.BooleanValue, ir.TimestampValue]:
        """Whether the deal is closed by its own status rather than by its history (its
        history has no won or lost entry after its last stage entry), and when."""
        closed_in_history = ibis.cases(
            (deal.status == "won", deal._won_at), (deal.status == "lost", deal._lost_at))
        recorded = closed_in_history.notnull() & (
            deal.last_stage_at.isnull() | (closed_in_history >= deal.last_stage_at))
        by_status = (deal.has_history & deal.status.isin(["won", "lost"])
                     & deal.closed_at.notnull() & ~recorded).fill_null(False)
        at = ibis.greatest(deal.closed_at, deal.last_stage_at.coalesce(deal.closed_at))
        return by_status, at

    def relevant(self, deal: ir.Table) -> ir.Table:
        """The deals with history that can count in this question: the others' events
        are never ordered (ordering every deal's history took most of the funnel's time).

        A deal counts in the flow only through a stage entry in the date range (every
        deal with history when there is none); in the open pipeline only if it has an
        event at or after the as-of instant, or its last event is a stage entry (not a
        close): a deal whose every event is before the instant and whose last one
        closed it is closed then. Closes sort after stage entries at the same instant,
        so the last event is a close when the latest close is no earlier than the last
        stage entry, or when the deal's status closes it (``_closes``).
        """
        by_status, status_at = self._closes(deal)
        latest_close = ibis.greatest(deal._won_at.coalesce(deal._lost_at),
                                     deal._lost_at.coalesce(deal._won_at))
        ends_closed = by_status | (latest_close.notnull() & (
            deal.last_stage_at.isnull() | (latest_close >= deal.last_stage_at)))
        as_of = self.param("as_of").cast("timestamp")
        all_before = (deal._last_at < as_of) & (~by_status | (status_at < as_of))
        in_flow: ir.BooleanValue = ibis.literal(True)
        if self.shape.has_start or self.shape.has_end:
            in_flow = deal._entries_in_range > 0
        keep = in_flow | ~(ends_closed & all_before).fill_null(False)
        return deal.filter(deal.has_history, keep)

    def events(self, deal: ir.Table, changes: ir.Table) -> ir.Table:
        """Every deal's events in order: ``seq``, ``next_at`` (the next event's time),
        ``later_pos`` (the furthest stage it entered after the event), ``later_won``
        (whether a win followed) and ``final_kind`` (how its history ends).

        A deal closed without a won or lost entry after its last stage entry is
        closed by its own status at ``closed_at`` (not before that last entry).
        """
        by_status, status_at = self._closes(deal)
        # Entries read with their deal's columns (everyone's funnel) meet the deals once.
        owned = set(OWNER_COLUMNS) <= set(changes.columns)
        carried = OWNER_COLUMNS if owned else ()
        closes = deal.filter(by_status).select("src", "deal", *carried,
                                               stage=ibis.null("string"), ts=status_at,
                                               kind=deal.status)
        happened = changes.select("src", "deal", *carried, "stage", "ts", "kind").union(closes)
        if owned:
            ev = happened
        else:
            owner = deal.select(_dsrc=deal.src, _ddeal=deal.deal,
                                **{c: deal[c] for c in OWNER_COLUMNS})
            ev = happened.join(owner, [happened.src == owner._dsrc,
                                       happened.deal == owner._ddeal])
            ev = ev.drop("_dsrc", "_ddeal")
        # Each stage's place in its pipeline's order (filled in before the query runs).
        order = self.ctx.tables(FUNNEL_ORDER_TABLE).select(
            _opipeline="pipeline", _ostage="stage", _opos="pos")
        ev = ev.left_join(order, [ev.pipeline.identical_to(order._opipeline),
                                  ev.stage == order._ostage])
        stage_pos = ev._opos.cast("int64").coalesce(UNKNOWN_POS)
        ev = ev.select("src", "deal", "pipeline", "rep", "amount", "stage", "ts", "kind",
                       pos=ibis.cases((ev.kind != "stage", CLOSE_POS), else_=stage_pos))

        def in_order(table: ir.Table, following: tuple[int, None] | None = None) -> Any:
            return ibis.window(group_by=[table.src, table.deal], order_by=[
                table.ts, table.pos, table.kind, ibis.asc(table.stage, nulls_first=False)],
                following=following)

        w = in_order(ev)
        marked = ev.mutate(_prev_kind=ev.kind.lag().over(w), _prev_stage=ev.stage.lag().over(w))
        kept = marked.filter(
            marked._prev_kind.isnull() | (marked.kind != marked._prev_kind)
            | ((marked.kind == "stage") & ~marked.stage.identical_to(marked._prev_stage))
        ).drop("_prev_kind", "_prev_stage")
        w = in_order(kept)
        # What the deal did after each event, in the same window (one sort of the
        # events, not one per figure: a window pass cost as much as the rest of _flow).
        after = in_order(kept, following=(1, None))
        return kept.mutate(
            seq=ibis.row_number().over(w), next_at=kept.ts.lead().over(w),
            later_pos=ibis.cases((kept.kind == "stage", kept.pos)).max().over(after),
            later_won=ibis.cases((kept.kind == "won", 1), else_=0).max().over(after),
            final_kind=kept.kind.last().over(w))

    # -- the queries ------------------------------------------------------------------------
    def order(self) -> ir.Table:
        """Per pipeline and stage: the positions at which deals first enter it."""
        deals = self.deals()
        # Every deal's: each entry meets its deal in the joins below, after summing up.
        changes = self.stage_changes(None)
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
        # Everyone's funnel sums up every deal's history before meeting the deals (a
        # million summaries joined, not a few million entries); a scope's first.
        changes = self.stage_changes(deals if self.shape.filter_arity else None)
        deal = self.with_history(deals, changes)
        if self.shape.stage == "deals":
            return deal
        if self.shape.stage == "kept_deals":
            return self._with_slices(deal)
        if self.shape.stage == "all_events":
            return self._with_slices(self.all_events(deal))
        if self.shape.kept:
            kept = ibis.table(self._with_slices(deal).schema(), name=FUNNEL_DEALS_TABLE)
            kept_events = ibis.table(self._with_slices(self.all_events(deal)).schema(),
                                     name=FUNNEL_EVENTS_TABLE)
            return self._union(self._kept_in_filters(deals, kept_events),
                               self._kept_in_filters(deals, kept))
        # ClickHouse: the deals and their events are read from the tables the staging
        # queries filled, as it would compute them again for every use (``_parts``).
        staged = self.shape.stage is not None or self.shape.part is not None
        if staged:
            deal = ibis.table(deal.schema(), name=FUNNEL_DEALS_TABLE)
        relevant = self.relevant(deal)
        if not self.shape.filter_arity:
            # Everyone's funnel: the relevant deals' entries read again rather than kept
            # from the summary, as keeping every deal's entries for the few that are
            # ordered cost more than the read. A scope's few entries are kept.
            changes = self.stage_changes(relevant.select("src", "deal", *OWNER_COLUMNS),
                                         owned=True)
        evs = self.events(relevant, changes)
        if self.shape.stage == "events":
            return evs
        if staged:
            evs = ibis.table(evs.schema(), name=FUNNEL_EVENTS_TABLE)
        return self._union(evs, deal)

    def _with_slices(self, rows: ir.Table) -> ir.Table:
        """Kept ``rows`` (deals' summaries or events) with each slice of their deal
        (``dim_rep``, ``dim_team``, ``dim_source``...), as the deals view has them: a
        question filters the kept rows by them without meeting any other table."""
        view = build_view(self.ctx, "deals", set(), list(DIMENSIONS))
        slices = view.select(_xsrc=view.datasource, _xdeal=view.id,
                             **{f"dim_{dim}": view[f"dim_{dim}"] for dim in DIMENSIONS})
        joined = rows.left_join(slices, [rows.src == slices._xsrc,
                                         rows.deal == slices._xdeal])
        return joined.drop("_xsrc", "_xdeal")

    def _kept_in_filters(self, deals: ir.Table, rows: ir.Table) -> ir.Table:
        """The kept ``rows`` of the deals the filters let through (a deal's summary and
        events are the same whoever asks, so filtering them equals filtering first): by
        the slices they carry, and a custom field's through the deals view."""
        conditions: list[ir.BooleanValue] = []
        custom = False
        for index, (dim, arity) in enumerate(self.shape.filter_arity):
            if dim not in DIMENSIONS:
                custom = True
                continue
            values = [self.param(f"f{index}_{i}") for i in range(arity)]
            conditions.append(rows[f"dim_{dim}"].isin(values).fill_null(False) if values
                              else ibis.literal(False))
        if conditions:
            rows = rows.filter(*conditions)
        if custom:
            keys = deals.select(_fsrc=deals.src, _fdeal=deals.deal)
            rows = rows.semi_join(keys, [rows.src == keys._fsrc, rows.deal == keys._fdeal])
        return rows

    def _union(self, evs: ir.Table, deal: ir.Table) -> ir.Table:
        """The funnel's parts over the events and the deals with their history summed up."""
        parts = [*self._flow(evs), *self._open(evs), *self._seen(deal),
                 self._without_history(deal)]
        assert len(parts) == self.shape.part_count()
        if self.shape.part is not None:
            return parts[self.shape.part]
        return ibis.union(*parts)

    def all_events(self, deal: ir.Table) -> ir.Table:
        """Every deal's stage entries (``events``: what followed each, in the deal's whole
        history) with their stays marked (``_stay_marks``): what any question without a
        scope reads, kept between questions.

        A question reads only its date range and as-of instant of them: ordering the
        relevant deals' events for each question was most of the funnel's time. Closes
        are not kept: the flow and the open pipeline count stage entries only.
        """
        having = deal.filter(deal.has_history)
        changes = self.stage_changes(having.select("src", "deal", *OWNER_COLUMNS), owned=True)
        evs = self.events(having, changes)
        visits = evs.filter(evs.kind == "stage")
        # The deal's last stage entry is the one no stage entry follows.
        marked = self._stay_marks(visits.mutate(
            _final_stay=ibis.cases((visits.later_pos.isnull(), 1), else_=0)))
        return marked.drop("_ssrc", "_sdeal", "_sstage", "_first_seq", "_final_stay")

    def _flow(self, evs: ir.Table) -> list[ir.Table]:
        visits = evs.filter(evs.kind == "stage")
        if "_is_first" in visits.columns:
            # Kept events, marked already: only the range's entries count, and as the
            # files are sorted by time the others' row groups are not even read.
            visits = visits.filter(self._in_range(visits.ts))
        else:
            # The deal's last stage entry is the one no stage entry follows.
            visits = self._stay_marks(visits.mutate(
                _final_stay=ibis.cases((visits.later_pos.isnull(), 1), else_=0)))
        facts = visits.select(
            "pipeline", "stage", "rep", "_is_first",
            _in_range=self._in_range(visits.ts),
            _converted=(visits.later_won > 0).fill_null(False)
            | (visits.later_pos > visits.pos).fill_null(False),
            # Finally lost while in this stage: lost, and its last stage entry was this one.
            _dropped=((visits.final_kind == "lost") & (visits._ends_here == 1)).fill_null(False),
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

    def _stay_marks(self, visits: ir.Table) -> ir.Table:
        """Each stage entry marked ``_is_first`` (the deal's first entry into that stage)
        and ``_ends_here`` (1 if the deal's last stage entry was into that stage).

        In one query (DuckDB, PostgreSQL) the entries are grouped by deal and stage and
        joined back: DuckDB took as long for a window over 400k entries as for the rest
        of the flow. ClickHouse, reading the kept events, is the other way round: a
        window there, as its joins hold their right side in memory.
        """
        if self.shape.part is not None:
            stays = ibis.window(group_by=[visits.src, visits.deal, visits.stage],
                                order_by=visits.seq)
            return visits.mutate(_is_first=ibis.row_number().over(stays) == 0,
                                 _ends_here=visits._final_stay.max().over(stays))
        grouped = visits.group_by(_ssrc=visits.src, _sdeal=visits.deal,
                                  _sstage=visits.stage).aggregate(
            _first_seq=visits.seq.min(), _ends_here=visits._final_stay.max())
        joined = visits.join(grouped, [visits.src == grouped._ssrc,
                                       visits.deal == grouped._sdeal,
                                       visits.stage == grouped._sstage])
        return joined.mutate(_is_first=joined.seq == joined._first_seq)

    def _open(self, evs: ir.Table) -> list[ir.Table]:
        """Each deal in the stage of its latest event before the as-of instant, if open."""
        as_of = self.param("as_of").cast("timestamp")
        # Events are in time order: the latest before the instant is the one before it
        # whose next event is not (no window of its own to find it).
        snap = evs.filter(evs.ts < as_of, evs.next_at.isnull() | (evs.next_at >= as_of),
                          evs.kind == "stage")
        figures = {"open_deals": snap.count(), "open_amount": exact_sum(snap.amount)}
        return [self._part("open", snap.group_by(*keys).aggregate(**figures))
                for keys in self._groupings()]

    def _seen(self, deal: ir.Table) -> list[ir.Table]:
        """The pipelines, and each rep's, with a stage entry in scope (in the range or
        not): each has its funnel, of zeros if need be, as when every deal's events
        were ordered; only the relevant deals' are (``relevant``)."""
        entered = deal.filter(deal.last_stage_at.notnull())
        keys = [("pipeline",), ("pipeline", "rep")] if self.shape.by_rep else [("pipeline",)]
        return [self._part("seen", entered.select(*k).distinct()) for k in keys]

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
    # One part of the funnel uses only some of the parameters the others made.
    used = set(expression.op().find(ops.ScalarParameter))
    return expression, [(name, p) for name, p in builder.named if p.op() in used]


def to_sql(ctx: ViewContext, shape: FunnelShape, dialect: str) -> Compiled:
    """The shape's SQL with a named placeholder (``$as_of``, ``$f0_1``...) per parameter."""
    expression, named = build_expression(ctx, shape)
    sql, params = render(expression, named, dialect)
    return Compiled(sql, params, tuple(expression.columns))
