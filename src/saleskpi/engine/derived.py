"""Derived columns of the fact views: what KPIs measure beyond the raw columns.

Each builder adds only the columns a query asks for (``wanted``), so a scorecard
of call counts never pays for the joins behind a lead's response time.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import ibis
import ibis.expr.datatypes as dt_types
import ibis.expr.types as ir

from saleskpi.domain.schema import CONTACT_TYPES, DERIVED_COLUMNS, FIRST_CONTACT_TABLES
from saleskpi.engine.context import ViewContext
from saleskpi.engine.money import exact_sum

TOUCH_TYPES = tuple(t for t in CONTACT_TYPES if t != "meeting")


@ibis.udf.scalar.builtin(  # type: ignore[untyped-decorator]
    name="timezone", signature=((dt_types.string, dt_types.Timestamp(timezone="UTC")),
                                dt_types.timestamp)
)
def _wall_clock(zone: str, ts: datetime.datetime) -> datetime.datetime:  # type: ignore[empty-body]
    """DuckDB's and Postgres's timezone(zone, timestamptz): wall-clock time in zone."""


def local_time(value: ir.Value, zone: str) -> ir.TimestampValue:
    """Company wall-clock time of a stored UTC timestamp; a date is already local."""
    if value.type().is_date() or zone == "UTC":
        # Stored times are UTC already: no conversion, which also keeps the SQL free
        # of timezone(), a function ClickHouse does not have.
        return value.cast(dt_types.timestamp)
    return _wall_clock(zone, value.cast(dt_types.Timestamp(timezone="UTC")))


def local_day(value: ir.Value, zone: str) -> ir.DateValue:
    """The company's calendar day of a stored timestamp (or date)."""
    if value.type().is_date():
        return value
    return local_time(value, zone).date()


def seconds_between(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.NumericValue:
    # Epoch arithmetic behaves the same on every backend; intervals do not.
    return later.epoch_seconds() - earlier.epoch_seconds()


def _left(table: ir.Table, other: ir.Table, on: list[ir.BooleanValue], *drop: str) -> ir.Table:
    return table.left_join(other, on).drop(*drop)


def _first_contacts(ctx: ViewContext, key: str) -> ir.Table:
    """Each lead's or deal's (``key``) first outbound contact: ``_key``, ``_src``, time.

    Kept at write time by saleskpi.store.first_contacts: grouping every activity
    here took seconds per query on a big workspace.
    """
    firsts = ctx.tables(FIRST_CONTACT_TABLES[key])
    return firsts.select(_key=firsts[key], _src=firsts.datasource,
                         first_contact_at=firsts.first_contact_at)


def in_reporting_currency(ctx: ViewContext, table: ir.Table, amount: str, name: str,
                          on: ir.TimestampValue | ir.DateValue) -> ir.Table:
    """Add ``name``: ``amount`` converted with the latest fx rate on or before ``on``.

    Rates are often published monthly or on working days only, so each rate holds
    until the next one for its currency. No rate yet: NULL, never a guess.
    """
    rates = ctx.tables("fx_rates")
    daily = rates.group_by(_rdate=rates.date, _rcur=rates.currency.upper()).aggregate(
        _rate=rates.rate.max()
    )
    following = daily._rdate.lead().over(ibis.window(group_by=daily._rcur,
                                                     order_by=daily._rdate))
    spans = daily.mutate(_rnext=following)
    table = table.mutate(_cur=table.currency.upper())
    same = table._cur.isnull() | (table._cur == ctx.currency)
    # The rate of the company's calendar day, not of the UTC day. Only the rows in
    # another currency need it: converting every row's time to local time (ICU, per
    # row) was most of an open-pipeline question on 1M deals in one currency.
    table = table.mutate(_fx_date=ibis.cases((same, ibis.null("date")),
                                             else_=local_day(on, ctx.zone)))
    table = table.left_join(spans, [
        table._cur == spans._rcur, table._fx_date >= spans._rdate,
        spans._rnext.isnull() | (table._fx_date < spans._rnext),
    ])
    same = table._cur.isnull() | (table._cur == ctx.currency)
    value = table[amount].cast("float64")
    return table.mutate(**{name: ibis.cases((same, value), else_=value * table._rate)}).drop(
        "_fx_date", "_cur", "_rdate", "_rcur", "_rate", "_rnext"
    )


# -- leads ---------------------------------------------------------------------------
def lead_columns(ctx: ViewContext, leads: ir.Table, wanted: set[str]) -> ir.Table:
    if wanted & {"first_contact_at", "response_s", "contacted_before_created"}:
        first = _first_contacts(ctx, "lead_id")
        leads = _left(leads, first, [leads.id == first._key, leads.datasource == first._src],
                      "_key", "_src")
        raw = seconds_between(leads.first_contact_at, leads.created_at)
        leads = leads.mutate(
            # A contact before the lead existed is bad data: no response time,
            # and flagged so the data-quality report can count it.
            response_s=ibis.cases((raw >= 0, raw), else_=ibis.null("float64")),
            contacted_before_created=(raw < 0).fill_null(False),
        )
    if wanted & {"has_deal", "processing_s", "has_won_deal"}:
        deals = ctx.tables("deals")
        linked = deals.filter(deals.lead_id.notnull())
        per_lead = linked.group_by(_key=linked.lead_id, _src=linked.datasource).aggregate(
            _first_deal_at=linked.created_at.min(), _deals=linked.count(),
            _won=linked.count(where=linked.status == "won"),
        )
        leads = _left(leads, per_lead,
                      [leads.id == per_lead._key, leads.datasource == per_lead._src],
                      "_key", "_src")
        leads = leads.mutate(
            has_deal=(leads._deals > 0).fill_null(False),
            has_won_deal=(leads._won > 0).fill_null(False),
            processing_s=seconds_between(leads._first_deal_at, leads.created_at),
        ).drop("_deals", "_first_deal_at", "_won")
    if wanted & {"has_call", "meeting_after_call", "touches_before_meeting"}:
        leads = _lead_touches(ctx, leads)
    return leads


def _lead_touches(ctx: ViewContext, leads: ir.Table) -> ir.Table:
    acts = ctx.tables("activities")
    on_lead = acts.filter(acts.lead_id.notnull())
    firsts = on_lead.group_by(_key=on_lead.lead_id, _src=on_lead.datasource).aggregate(
        _first_call=on_lead.occurred_at.min(where=on_lead.type == "call"),
        _first_meeting=on_lead.occurred_at.min(where=on_lead.type == "meeting"),
        _last_meeting=on_lead.occurred_at.max(where=on_lead.type == "meeting"),
    )
    leads = _left(leads, firsts, [leads.id == firsts._key, leads.datasource == firsts._src],
                  "_key", "_src")
    touches = on_lead.filter(on_lead.type.isin(TOUCH_TYPES)).select(
        _tkey="lead_id", _tsrc="datasource", _tat="occurred_at"
    )
    with_meeting = leads.filter(leads._first_meeting.notnull()).select(
        _mkey="id", _msrc="datasource", _mat="_first_meeting"
    )
    before = with_meeting.left_join(
        touches, [with_meeting._mkey == touches._tkey, with_meeting._msrc == touches._tsrc,
                  touches._tat < with_meeting._mat]
    )
    counted = before.group_by("_mkey", "_msrc").aggregate(
        touches_before_meeting=before._tat.count()
    )
    leads = _left(leads, counted, [leads.id == counted._mkey,
                                   leads.datasource == counted._msrc], "_mkey", "_msrc")
    return leads.mutate(
        has_call=leads._first_call.notnull(),
        meeting_after_call=(leads._last_meeting > leads._first_call).fill_null(False),
    ).drop("_first_call", "_first_meeting", "_last_meeting")


# -- deals ---------------------------------------------------------------------------
def deal_columns(ctx: ViewContext, deals: ir.Table, wanted: set[str]) -> ir.Table:
    if wanted & {"amount_rc", "weighted_amount"}:
        deals = in_reporting_currency(ctx, deals, "amount", "amount_rc",
                                      deals.closed_at.coalesce(deals.created_at))
    if "close_s" in wanted:
        deals = deals.mutate(close_s=seconds_between(deals.closed_at, deals.created_at))
    if "cycle_s" in wanted:
        deals = _cycle(ctx, deals)
    if "touches_to_close" in wanted:
        deals = _touches_to_close(ctx, deals)
    if wanted & {"win_probability", "weighted_amount"}:
        deals = _win_probability(ctx, deals)
        deals = deals.mutate(weighted_amount=deals.amount_rc * deals.win_probability)
    return deals


def _cycle(ctx: ViewContext, deals: ir.Table) -> ir.Table:
    leads = ctx.tables("leads").select(_lkey="id", _lsrc="datasource", _lead_created="created_at")
    deals = _left(deals, leads, [deals.lead_id == leads._lkey, deals.datasource == leads._lsrc],
                  "_lkey", "_lsrc")
    by_deal = _first_contacts(ctx, "deal_id").rename(_dfirst="first_contact_at")
    deals = _left(deals, by_deal, [deals.id == by_deal._key, deals.datasource == by_deal._src],
                  "_key", "_src")
    by_lead = _first_contacts(ctx, "lead_id").rename(
        _lfirst="first_contact_at", _k2="_key", _s2="_src"
    )
    deals = _left(deals, by_lead, [deals.lead_id == by_lead._k2,
                                   deals.datasource == by_lead._s2], "_k2", "_s2")
    start = ibis.least(deals.created_at, deals._lead_created, deals._dfirst, deals._lfirst)
    return deals.mutate(cycle_s=seconds_between(deals.closed_at, start)).drop(
        "_lead_created", "_dfirst", "_lfirst"
    )


def _touches_to_close(ctx: ViewContext, deals: ir.Table) -> ir.Table:
    """Contact activities on a won deal, or on its lead, before it was won."""
    acts = ctx.tables("activities")
    touches = acts.filter(acts.type.isin(CONTACT_TYPES)).select(
        _aid="id", _adeal="deal_id", _alead="lead_id", _asrc="datasource", _aat="occurred_at"
    )
    won = deals.filter(deals.status == "won").select(
        _wid="id", _wlead="lead_id", _wsrc="datasource", _wclosed="closed_at"
    )
    on_deal = won.inner_join(touches, [won._wid == touches._adeal, won._wsrc == touches._asrc,
                                       touches._aat < won._wclosed])
    # Activities on the lead that name another deal (or this one: counted above) are not
    # this deal's touches.
    on_lead = won.inner_join(touches, [won._wlead == touches._alead,
                                       won._wsrc == touches._asrc,
                                       touches._adeal.isnull(), touches._aat < won._wclosed])
    both = on_deal.select("_wid", "_wsrc", "_aid").union(on_lead.select("_wid", "_wsrc", "_aid"))
    counts = both.group_by("_wid", "_wsrc").aggregate(_touches=both._aid.nunique())
    deals = _left(deals, counts, [deals.id == counts._wid, deals.datasource == counts._wsrc],
                  "_wid", "_wsrc")
    return deals.mutate(
        touches_to_close=ibis.cases((deals.status == "won", deals._touches.fill_null(0)),
                                    else_=ibis.null("int64"))
    ).drop("_touches")


def _win_probability(ctx: ViewContext, deals: ir.Table) -> ir.Table:
    """Chance that an open deal in its stage is won, learned from closed deals' history.

    Per (pipeline, stage): of the closed deals that ever entered the stage, the
    share won. Without history: the deal's own probability (0-1 or 0-100), else
    the pipeline's overall win rate.
    """
    all_deals = ctx.tables("deals")
    closed = all_deals.filter(all_deals.status.isin(["won", "lost"]))
    history = ctx.tables("stage_changes")
    # Won as 1 and 0, not a boolean: PostgreSQL has no max() of booleans nor a cast of
    # one to a float.
    won = ibis.cases((closed.status == "won", 1), else_=0)
    outcome = closed.select(_cid="id", _csrc="datasource", _cwon=won, _cpipe="pipeline")
    entered = history.inner_join(
        outcome, [history.deal_id == outcome._cid, history.datasource == outcome._csrc]
    )
    per_deal_stage = entered.group_by(
        _pipe=entered._cpipe, _stage=entered.stage, _d=entered.deal_id, _s=entered.datasource
    ).aggregate(_won=entered._cwon.max())
    learned = per_deal_stage.group_by("_pipe", "_stage").aggregate(
        _p_stage=per_deal_stage._won.cast("float64").mean()
    )
    overall = closed.group_by(_opipe=closed.pipeline).aggregate(
        _p_pipe=won.cast("float64").mean()
    )
    deals = deals.left_join(learned, [deals.pipeline == learned._pipe,
                                      deals.stage == learned._stage]).drop("_pipe", "_stage")
    deals = deals.left_join(overall, [deals.pipeline == overall._opipe]).drop("_opipe")
    own = ibis.cases((deals.probability > 1, deals.probability / 100),
                     else_=deals.probability)
    return deals.mutate(
        win_probability=deals._p_stage.coalesce(own, deals._p_pipe)
    ).drop("_p_stage", "_p_pipe")


# -- money: revenue, spend, forecasts ------------------------------------------------------
def revenue_columns(ctx: ViewContext, revenue: ir.Table, wanted: set[str]) -> ir.Table:
    if wanted & {"amount_rc", "cost_rc", "margin_rc"}:
        revenue = in_reporting_currency(ctx, revenue, "amount", "amount_rc",
                                        revenue.occurred_at)
        revenue = in_reporting_currency(ctx, revenue, "cost", "cost_rc", revenue.occurred_at)
        # Unknown cost is taken as zero: margin equals revenue, and the KPI
        # reference says so.
        revenue = revenue.mutate(margin_rc=revenue.amount_rc - revenue.cost_rc.fill_null(0))
    return revenue


def spend_columns(ctx: ViewContext, spend: ir.Table, wanted: set[str]) -> ir.Table:
    if "amount_rc" in wanted:
        spend = in_reporting_currency(ctx, spend, "amount", "amount_rc", spend.date)
    return spend


def forecast_columns(ctx: ViewContext, forecasts: ir.Table, wanted: set[str]) -> ir.Table:
    if not wanted & {"amount_rc", "actual_rc", "abs_error_rc", "error_rc", "is_latest"}:
        return forecasts
    forecasts = in_reporting_currency(ctx, forecasts, "amount", "amount_rc", forecasts.made_at)
    # The forecast that counts for a period is the last one made for it.
    key = [forecasts.rep_id, forecasts.team, forecasts.category, forecasts.period_start,
           forecasts.period_end, forecasts.datasource]
    latest = forecasts.made_at.max().over(ibis.window(group_by=key))
    forecasts = forecasts.mutate(is_latest=forecasts.made_at == latest)
    deals = ctx.tables("deals")
    won = in_reporting_currency(ctx, deals.filter(deals.status == "won"), "amount", "_amt",
                                deals.closed_at)
    reps = ctx.tables("reps").select(_rid="id", _rsrc="datasource", _rteam="team")
    won = won.left_join(reps, [won.rep_id == reps._rid, won.datasource == reps._rsrc])
    won = won.select(_wrep="rep_id", _wteam="_rteam", _wsrc="datasource",
                     _wday=local_day(won.closed_at, ctx.zone), _wamt="_amt")
    f = forecasts.select(_fid=forecasts.id, _fsrc=forecasts.datasource,
                         _frep=forecasts.rep_id, _fteam=forecasts.team,
                         _fstart=forecasts.period_start, _fend=forecasts.period_end)
    owner = (
        (f._frep.notnull() & (won._wrep == f._frep))
        | (f._frep.isnull() & f._fteam.notnull() & (won._wteam == f._fteam))
        | (f._frep.isnull() & f._fteam.isnull())
    )
    matched = f.left_join(won, [f._fsrc == won._wsrc, won._wday >= f._fstart,
                                won._wday <= f._fend, owner])
    actual = matched.group_by("_fid", "_fsrc").aggregate(_actual=exact_sum(matched._wamt))
    forecasts = _left(forecasts, actual, [forecasts.id == actual._fid,
                                          forecasts.datasource == actual._fsrc],
                      "_fid", "_fsrc")
    forecasts = forecasts.mutate(actual_rc=forecasts._actual.fill_null(0)).drop("_actual")
    return forecasts.mutate(
        error_rc=forecasts.amount_rc - forecasts.actual_rc,
        abs_error_rc=(forecasts.amount_rc - forecasts.actual_rc).abs(),
    )


def unchanged(_ctx: ViewContext, table: ir.Table, _wanted: set[str]) -> ir.Table:
    return table


BUILDERS: dict[str, Callable[[ViewContext, ir.Table, set[str]], ir.Table]] = {
    "leads": lead_columns,
    "deals": deal_columns,
    "activities": unchanged,
    "accounts": unchanged,
    "revenue": revenue_columns,
    "spend": spend_columns,
    "forecasts": forecast_columns,
    "market": unchanged,
}

# Every view of the contract has its builder, and only those.
assert set(BUILDERS) == set(DERIVED_COLUMNS)
