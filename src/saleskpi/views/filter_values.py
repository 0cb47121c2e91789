"""The values a filter box may take: sources, segments, products and pipelines.

The dashboard's filter bar offers them as suggestions while a user types, so that
"Training day" or "enterprise" is picked rather than misspelt. They are not people:
every signed-in user may see them (reps and teams come scoped, from ``people``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.suggest import did_you_mean
from saleskpi.service.auth import Principal
from saleskpi.service.core import SalesKpiService
from saleskpi.views.base import ViewModel

SUGGESTED_DIMENSIONS = ("source", "segment", "product", "pipeline")


class FilterValue(BaseModel):
    value: str = Field(description="What the filter takes (a product's id).")
    label: str | None = Field(description="A product's name; none for the others.")


class FilterValuesView(ViewModel):
    dim: str
    values: list[FilterValue]


def filter_values(service: SalesKpiService, caller: Principal, dim: str) -> FilterValuesView:
    """The values of ``dim`` the data holds, sorted; products with their names."""
    del caller  # signed in is enough: the values name no person
    if dim not in SUGGESTED_DIMENSIONS:
        raise InvalidQuery(_("no suggestions for {dim!r}: use one of {known}", dim=dim,
                             known=", ".join(SUGGESTED_DIMENSIONS))
                           + did_you_mean(dim, SUGGESTED_DIMENSIONS), code="unknown_slice")
    known = service.known_sources() if dim == "source" else service.slice_values(dim)
    names = service.product_names() if dim == "product" else {}
    values = [FilterValue(value=v, label=names.get(v)) for v in sorted(known)]
    return FilterValuesView(dim=dim, values=values)
