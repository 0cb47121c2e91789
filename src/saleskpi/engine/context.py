"""What building a query needs to know, without Ibis: the view context and the slices.

Kept apart from the Ibis builders (``derived``, ``dimensions``, ``build``) so that
running a query whose SQL is already compiled never imports Ibis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from saleskpi.domain.query import DIMENSIONS

if TYPE_CHECKING:
    import ibis.expr.types as ir


@dataclass(frozen=True)
class ViewContext:
    """What building a view needs: the tables, the reporting currency, the company's zone."""

    tables: Callable[[str], ir.Table]
    currency: str
    zone: str = "UTC"
    # With reps from several sources, a rep slice is a person matched across them.
    several_sources: bool = False


# Not every slice makes sense for every fact: spend has no rep, the market has
# only a segment. ``SUPPORTED`` says which slices a view has; for the others the
# engine reports "not available by this slice" instead of lumping everything
# into one unnamed row.
SUPPORTED: dict[str, frozenset[str]] = {
    # A lead comes before any deal: it has no product or pipeline of its own.
    "leads": frozenset(DIMENSIONS) - {"product", "pipeline"},
    "deals": frozenset(DIMENSIONS),
    "activities": frozenset(DIMENSIONS),
    "accounts": frozenset({"rep", "team", "source", "segment"}),
    "revenue": frozenset({"rep", "team", "source", "segment", "product"}),
    "spend": frozenset({"team", "source"}),  # source is the spend's channel
    "forecasts": frozenset({"rep", "team"}),
    "market": frozenset({"segment"}),
}
HAS_REP = frozenset({"leads", "deals", "activities", "accounts", "forecasts", "revenue"})


def supports(view: str, dim: str) -> bool:
    if dim in DIMENSIONS:
        return dim in SUPPORTED[view]
    # Custom fields: the row's own, or its rep's (rep.<field>) where there is a rep.
    return not dim.startswith("rep.") or view in HAS_REP
