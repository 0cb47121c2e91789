"""Slices: the column ``dim_<name>`` a fact row is grouped or filtered by.

Which slices a view has (``SUPPORTED``, ``supports``) lives in ``context``, which
the engine reads without importing Ibis.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from saleskpi.engine.context import HAS_REP, SUPPORTED, ViewContext, supports

__all__ = ["SUPPORTED", "add_dimension", "supports"]


def _lookup(ctx: ViewContext, table: ir.Table, entity: str, key: ir.Value, column: str,
            name: str) -> ir.Table:
    """Add ``name``: ``entity.column`` of the row whose id is ``key`` (same source)."""
    other = ctx.tables(entity).select(_k="id", _s="datasource", _v=column)
    joined = table.left_join(other, [key == other._k, table.datasource == other._s])
    return joined.rename(**{name: "_v"}).drop("_k", "_s")


def _rep_column(ctx: ViewContext, view: str, table: ir.Table, *,
                as_person: bool = True) -> ir.Table:
    """``_rep``: whose row this is. Revenue belongs to its deal's rep, else the account's."""
    if view != "revenue":
        table = table.mutate(_rep=table.rep_id)
    else:
        table = _lookup(ctx, table, "deals", table.deal_id, "rep_id", "_deal_rep")
        table = _lookup(ctx, table, "accounts", table.account_id, "rep_id", "_acct_rep")
        table = table.mutate(_rep=table._deal_rep.coalesce(table._acct_rep)).drop(
            "_deal_rep", "_acct_rep")
    if not (ctx.several_sources and as_person):
        return table
    people = ctx.tables("rep_people").select(_pk="rep_id", _ps="datasource", _pp="person")
    table = table.left_join(people, [table._rep == people._pk, table.datasource == people._ps])
    return table.mutate(_rep=table._pp.coalesce(table._rep)).drop("_pk", "_ps", "_pp")


def add_dimension(ctx: ViewContext, view: str, table: ir.Table, dim: str) -> ir.Table:
    name = f"dim_{dim}"
    if dim == "rep":
        table = _rep_column(ctx, view, table)
        return table.rename(**{name: "_rep"})
    if dim == "team":
        if view == "spend":
            return table.mutate(**{name: table.team})
        table = _rep_column(ctx, view, table, as_person=False)
        table = _lookup(ctx, table, "reps", table._rep, "team", "_rep_team")
        own = table.team if view == "forecasts" else ibis.null("string")
        return table.mutate(**{name: own.coalesce(table._rep_team)}).drop("_rep", "_rep_team")
    if dim in ("product", "pipeline"):
        column = "product_id" if dim == "product" else "pipeline"
        if view in ("deals", "revenue") and column in table.columns:
            return table.mutate(**{name: table[column]})
        table = _lookup(ctx, table, "deals", table.deal_id, column, name)
        return table
    if dim == "source" and view == "spend":
        return table.mutate(**{name: table.channel})
    if dim in ("source", "segment"):
        return _source_or_segment(ctx, view, table, dim)
    return _custom_dimension(ctx, view, table, dim)


def _source_or_segment(ctx: ViewContext, view: str, table: ir.Table, dim: str) -> ir.Table:
    name = f"dim_{dim}"
    if view in ("accounts", "market"):
        return table.mutate(**{name: table[dim]})
    if view == "leads":
        table = table.mutate(_lead_value=table[dim])
    elif view in ("deals", "activities"):
        table = _lookup(ctx, table, "leads", table.lead_id, dim, "_lead_value")
    else:  # revenue: only its account tells
        table = table.mutate(_lead_value=ibis.null("string"))
    table = _lookup(ctx, table, "accounts", table.account_id, dim, "_account_value")
    # A lead's source is its own; a deal's segment is its customer's.
    first, second = ((table._account_value, table._lead_value) if dim == "segment"
                     else (table._lead_value, table._account_value))
    return table.mutate(**{name: first.coalesce(second)}).drop("_lead_value", "_account_value")


def _custom_dimension(ctx: ViewContext, view: str, table: ir.Table, dim: str) -> ir.Table:
    """A custom field of the fact row, else of its rep (``rep.<field>`` forces the rep's)."""
    name = f"dim_{dim}"
    field = dim.removeprefix("rep.")
    own = table.custom[field].unwrap_as("string")
    if view not in HAS_REP:
        return table.mutate(**{name: own})
    table = _rep_column(ctx, view, table, as_person=False)
    table = _lookup(ctx, table, "reps", table._rep, "custom", "_rep_custom")
    value = table._rep_custom[field].unwrap_as("string")
    if not dim.startswith("rep."):
        value = table.custom[field].unwrap_as("string").coalesce(value)
    return table.mutate(**{name: value}).drop("_rep", "_rep_custom")
