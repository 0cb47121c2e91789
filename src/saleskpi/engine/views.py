"""Fact views: the canonical tables plus the columns KPIs measure.

A KPI never joins tables itself. It names a view (leads, deals, activities) and
columns of it; this module knows how each derived column and each slice is
computed, and adds only what a query asks for, so a scorecard by rep does not
pay for the joins a scorecard by source needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from saleskpi.ingest.schema import ENTITIES

# First contact: what a rep does to reach a lead. Notes and tasks are not contact.
CONTACT_TYPES = ("call", "email", "mail", "meeting", "presentation", "demo", "proposal")

# Slices every view understands; anything else is a custom field.
DIMENSIONS = ("rep", "team", "source", "segment", "product", "pipeline")


@dataclass(frozen=True)
class ViewContext:
    """What building a view needs: the tables and the reporting currency."""

    tables: Callable[[str], ir.Table]
    currency: str


def _seconds(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.NumericValue:
    # Epoch arithmetic behaves the same on every backend; intervals do not.
    return later.epoch_seconds() - earlier.epoch_seconds()


def _first_contacts(ctx: ViewContext, key: str) -> ir.Table:
    acts = ctx.tables("activities")
    outbound = acts.filter(
        acts.type.isin(CONTACT_TYPES),
        acts.direction.isnull() | (acts.direction != "in"),
        acts[key].notnull(),
    )
    return outbound.group_by(_key=outbound[key], _src=outbound.datasource).aggregate(
        first_contact_at=outbound.occurred_at.min()
    )


def _lead_columns(ctx: ViewContext, leads: ir.Table, wanted: set[str]) -> ir.Table:
    if wanted & {"first_contact_at", "response_s", "contacted_before_created"}:
        first = _first_contacts(ctx, "lead_id")
        leads = leads.left_join(
            first, [leads.id == first._key, leads.datasource == first._src]
        ).drop("_key", "_src")
        raw = _seconds(leads.first_contact_at, leads.created_at)
        leads = leads.mutate(
            # A contact before the lead existed is bad data: no response time,
            # and flagged so the data-quality report can count it.
            response_s=ibis.cases((raw >= 0, raw), else_=ibis.null("float64")),
            contacted_before_created=(raw < 0).fill_null(False),
        )
    if wanted & {"has_deal", "processing_s"}:
        deals = ctx.tables("deals")
        linked = deals.filter(deals.lead_id.notnull())
        per_lead = linked.group_by(_key=linked.lead_id, _src=linked.datasource).aggregate(
            _first_deal_at=linked.created_at.min(), _deals=linked.count()
        )
        leads = leads.left_join(
            per_lead, [leads.id == per_lead._key, leads.datasource == per_lead._src]
        ).drop("_key", "_src")
        leads = leads.mutate(
            has_deal=(leads._deals > 0).fill_null(False),
            processing_s=_seconds(leads._first_deal_at, leads.created_at),
        ).drop("_deals", "_first_deal_at")
    if wanted & {"has_call", "meeting_after_call"}:
        acts = ctx.tables("activities")
        on_lead = acts.filter(acts.lead_id.notnull())
        calls = on_lead.filter(on_lead.type == "call")
        first_call = calls.group_by(_key=calls.lead_id, _src=calls.datasource).aggregate(
            _first_call=calls.occurred_at.min()
        )
        meetings = on_lead.filter(on_lead.type == "meeting")
        last_meeting = meetings.group_by(
            _mkey=meetings.lead_id, _msrc=meetings.datasource
        ).aggregate(_last_meeting=meetings.occurred_at.max())
        leads = leads.left_join(
            first_call, [leads.id == first_call._key, leads.datasource == first_call._src]
        ).drop("_key", "_src")
        leads = leads.left_join(
            last_meeting, [leads.id == last_meeting._mkey, leads.datasource == last_meeting._msrc]
        ).drop("_mkey", "_msrc")
        leads = leads.mutate(
            has_call=leads._first_call.notnull(),
            meeting_after_call=(leads._last_meeting > leads._first_call).fill_null(False),
        ).drop("_first_call", "_last_meeting")
    return leads


def _amount_in_reporting_currency(ctx: ViewContext, deals: ir.Table) -> ir.Table:
    """amount_rc: the deal's amount converted with fx_rates on its close (or creation) date."""
    rates = ctx.tables("fx_rates")
    on = deals.closed_at.coalesce(deals.created_at).date()
    deals = deals.mutate(_fx_date=on, _cur=deals.currency.upper())
    rate = rates.group_by(_rdate=rates.date, _rcur=rates.currency.upper()).aggregate(
        _rate=rates.rate.max()
    )
    deals = deals.left_join(rate, [deals._fx_date == rate._rdate, deals._cur == rate._rcur])
    same = deals._cur.isnull() | (deals._cur == ctx.currency)
    amount = deals.amount.cast("float64")
    return deals.mutate(
        amount_rc=ibis.cases((same, amount), else_=amount * deals._rate)
    ).drop("_fx_date", "_cur", "_rdate", "_rcur", "_rate")


def _deal_columns(ctx: ViewContext, deals: ir.Table, wanted: set[str]) -> ir.Table:
    if "amount_rc" in wanted:
        deals = _amount_in_reporting_currency(ctx, deals)
    if "close_s" in wanted:
        deals = deals.mutate(close_s=_seconds(deals.closed_at, deals.created_at))
    if "cycle_s" in wanted:
        leads = ctx.tables("leads").select(
            _lkey="id", _lsrc="datasource", _lead_created="created_at"
        )
        deals = deals.left_join(
            leads, [deals.lead_id == leads._lkey, deals.datasource == leads._lsrc]
        ).drop("_lkey", "_lsrc")
        by_deal = _first_contacts(ctx, "deal_id").rename(_dfirst="first_contact_at")
        deals = deals.left_join(
            by_deal, [deals.id == by_deal._key, deals.datasource == by_deal._src]
        ).drop("_key", "_src")
        by_lead = _first_contacts(ctx, "lead_id").rename(
            _lfirst="first_contact_at", _k2="_key", _s2="_src"
        )
        deals = deals.left_join(
            by_lead, [deals.lead_id == by_lead._k2, deals.datasource == by_lead._s2]
        ).drop("_k2", "_s2")
        start = ibis.least(
            deals.created_at, deals._lead_created, deals._dfirst, deals._lfirst
        )
        deals = deals.mutate(cycle_s=_seconds(deals.closed_at, start)).drop(
            "_lead_created", "_dfirst", "_lfirst"
        )
    return deals


# Derived columns per view, for validation of user KPIs and the docs.
DERIVED_COLUMNS: dict[str, dict[str, str]] = {
    "leads": {
        "first_contact_at": "first outbound call, email or meeting on the lead",
        "response_s": "seconds from creation to first contact (NULL if none or negative)",
        "contacted_before_created": "true when the first contact predates the lead (bad data)",
        "has_deal": "true when a deal refers to the lead",
        "processing_s": "seconds from the lead's creation to its first deal's creation",
        "has_call": "true when the lead had a call",
        "meeting_after_call": "true when a meeting on the lead followed its first call",
    },
    "deals": {
        "amount_rc": "amount in the reporting currency (fx_rates by close date)",
        "close_s": "seconds from creation to close",
        "cycle_s": "seconds from first contact (lead, deal or activity) to close",
    },
    "activities": {},
}

_BUILDERS: dict[str, Callable[[ViewContext, ir.Table, set[str]], ir.Table]] = {
    "leads": _lead_columns,
    "deals": _deal_columns,
    "activities": lambda _ctx, t, _w: t,
}

VIEWS = tuple(_BUILDERS)


def view_columns(view: str) -> set[str]:
    return {*ENTITIES[view].column_names, "datasource", *DERIVED_COLUMNS[view]}


def _dimension(ctx: ViewContext, view: str, table: ir.Table, dim: str) -> ir.Table:
    """Add column ``dim_<name>`` holding the slice value for each fact row."""
    name = f"dim_{dim}"
    if dim == "rep":
        return table.mutate(**{name: table.rep_id})
    if dim == "team":
        reps = ctx.tables("reps").select(_rk="id", _rs="datasource", _team="team")
        joined = table.left_join(reps, [table.rep_id == reps._rk, table.datasource == reps._rs])
        return joined.mutate(**{name: joined._team}).drop("_rk", "_rs", "_team")
    if view == "leads":
        lead_key, lead_src = table.id, table.datasource
    elif view in ("deals", "activities"):
        lead_key, lead_src = table.lead_id, table.datasource
    if dim == "pipeline" or dim == "product":
        column = "pipeline" if dim == "pipeline" else "product_id"
        if view == "deals":
            return table.mutate(**{name: table[column]})
        if view == "leads":
            return table.mutate(**{name: ibis.null("string")})
        deals = ctx.tables("deals").select(_dk="id", _ds="datasource", _dv=column)
        joined = table.left_join(deals, [table.deal_id == deals._dk, table.datasource == deals._ds])
        return joined.mutate(**{name: joined._dv}).drop("_dk", "_ds", "_dv")
    if dim in ("source", "segment"):
        if view == "leads":
            own = table[dim]
            joined = table
        else:
            leads = ctx.tables("leads").select(_lk="id", _ls="datasource", _lv=dim)
            joined = table.left_join(leads, [lead_key == leads._lk, lead_src == leads._ls])
            own = joined._lv
        accounts = ctx.tables("accounts").select(_ak="id", _as="datasource", _av=dim)
        joined = joined.mutate(_own=own)
        joined = joined.left_join(
            accounts, [joined.account_id == accounts._ak, joined.datasource == accounts._as]
        )
        # A deal's segment is its customer's; a lead's source is its own.
        first, second = (joined._av, joined._own) if dim == "segment" else (
            joined._own, joined._av)
        return joined.mutate(**{name: first.coalesce(second)}).drop(
            *[c for c in ("_lk", "_ls", "_lv", "_ak", "_as", "_av", "_own") if c in joined.columns]
        )
    return _custom_dimension(ctx, table, dim)


def _custom_dimension(ctx: ViewContext, table: ir.Table, dim: str) -> ir.Table:
    """A custom field of the fact row, else of its rep (``rep.<field>`` forces the rep's)."""
    name = f"dim_{dim}"
    field = dim.removeprefix("rep.")
    reps = ctx.tables("reps").select(_rk="id", _rs="datasource", _rc="custom")
    joined = table.left_join(reps, [table.rep_id == reps._rk, table.datasource == reps._rs])
    value = joined._rc[field].unwrap_as("string")
    if not dim.startswith("rep."):
        value = joined.custom[field].unwrap_as("string").coalesce(value)
    return joined.mutate(**{name: value}).drop("_rk", "_rs", "_rc")


def build_view(ctx: ViewContext, view: str, wanted: set[str], dims: list[str]) -> ir.Table:
    """The view with the derived columns in ``wanted`` and one column per slice."""
    table = _BUILDERS[view](ctx, ctx.tables(view), wanted)
    for dim in dims:
        table = _dimension(ctx, view, table, dim)
    return table


