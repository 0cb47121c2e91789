"""Filters that name reps and products by name: turned into the ids the data holds.

A head of sales types ``rep=Olena Kovalenko`` or ``product=Training day``; the facts
hold ``r7`` and ``P05``. An id typed is always the id; a product's name may be typed in
any letter case.
"""

from __future__ import annotations

from collections.abc import Mapping

from saleskpi.domain.query import Where


def product_ids_by_name(names: Mapping[str, str]) -> dict[str, str]:
    """Product id -> name as name (as written, and in any case) -> id, leaving out the
    names that are also some product's id."""
    found: dict[str, str] = {}
    for product, name in sorted(names.items()):
        for key in (name, name.casefold()):
            if key not in names:
                found.setdefault(key, product)
    return found


def with_ids(where: Where, by_name: Mapping[str, Mapping[str, str]]) -> Where:
    """``where`` with the names of ``by_name``'s dimensions replaced by their ids."""

    def resolved(dim: str, value: str) -> str:
        names = by_name[dim]
        if dim == "product":
            return names.get(value, names.get(value.casefold(), value))
        return names.get(value, value)

    return tuple((dim, tuple(resolved(dim, v) for v in values)) if dim in by_name
                 else (dim, values) for dim, values in where)
