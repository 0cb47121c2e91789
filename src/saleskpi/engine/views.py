"""Fact views: the canonical tables plus derived columns and slices.

A KPI never joins tables itself. It names a view (the entity) and columns of
it; ``derived`` knows how each derived column is computed and ``dimensions``
how each slice is, and only what a query asks for is added.
"""

from __future__ import annotations

import ibis.expr.types as ir

from saleskpi.domain.query import DIMENSIONS
from saleskpi.domain.schema import DERIVED_COLUMNS, VIEWS, view_columns
from saleskpi.engine.context import ViewContext
from saleskpi.engine.derived import BUILDERS, local_time
from saleskpi.engine.dimensions import add_dimension, supports

__all__ = ["DERIVED_COLUMNS", "DIMENSIONS", "VIEWS", "ViewContext", "build_view", "local_time",
           "supports", "view_columns"]


def build_view(ctx: ViewContext, view: str, wanted: set[str], dims: list[str]) -> ir.Table:
    """The view with the derived columns in ``wanted`` and one column per slice."""
    table = BUILDERS[view](ctx, ctx.tables(view), wanted)
    for dim in dims:
        table = add_dimension(ctx, view, table, dim)
    return table
