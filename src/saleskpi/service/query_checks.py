"""What a user asked, checked against the data before anything is computed.

A slice that no record has (``--by manager``), a team, rep, source, segment, product
or pipeline that is not in the data (``--where team=Kyiv``), and money KPIs while some
amounts have no exchange rate to the reporting currency would otherwise answer with a
row of "—", zeros or a total that silently leaves amounts out. Each is an error
naming what is known ("did you mean"). Surfaces call ``check_question`` on what a
user typed; the service's own questions (plans of a team still to be hired) are not
checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saleskpi.domain.errors import Conflict, InvalidQuery
from saleskpi.domain.filter_names import product_ids_by_name
from saleskpi.domain.fx import missing_rates_text
from saleskpi.domain.i18n import _
from saleskpi.domain.query import DIMENSIONS, KpiQuery, Scope, Where
from saleskpi.domain.schema import REPORTING_MONEY
from saleskpi.domain.suggest import close_names, did_you_mean

if TYPE_CHECKING:
    from saleskpi.service.core import SalesKpiService

# Filters whose values are checked against the data.
CHECKED_VALUES = ("team", "rep", "source", "segment", "product", "pipeline")


def check_question(service: SalesKpiService, query: KpiQuery, scope: Scope) -> None:
    """``InvalidQuery`` for an unknown slice or filter value; ``Conflict`` for missing rates."""
    check_filters(service, query, scope)
    check_rates(service, query)


def check_filters(service: SalesKpiService, query: KpiQuery, scope: Scope) -> None:
    """``InvalidQuery`` for an unknown slice, or a filter value the data lacks."""
    for dim in query.dims():
        check_slice(service, dim)
    check_where(service, query.where, scope)


def check_where(service: SalesKpiService, where: Where, scope: Scope) -> None:
    """The filters alone (of a question that is no scorecard, e.g. the funnel)."""
    for dim, values in where:
        check_slice(service, dim)
        if dim in CHECKED_VALUES:
            for value in values:
                check_value(service, dim, value, scope)


def check_slice(service: SalesKpiService, dim: str) -> None:
    """A built-in slice, or a custom field some record or rep has (code ``unknown_slice``)."""
    if dim in DIMENSIONS:
        return
    fields = service.custom_fields()
    if dim.removeprefix("rep.") in fields:
        return
    known = [*DIMENSIONS, *sorted(fields)]
    raise InvalidQuery(
        _("unknown slice {dim!r}: no record has a field of that name; use one of {known}",
          dim=dim, known=", ".join(known)) + did_you_mean(dim, known),
        code="unknown_slice")


def check_value(service: SalesKpiService, dim: str, value: str, scope: Scope) -> None:
    """``InvalidQuery`` for a team, rep, source, segment, product or pipeline the data
    does not know, naming the closest (of teams and reps: those the caller may see)."""
    if dim == "team":
        if value in service.teams():
            return
        visible = {r.team for r in service.visible_reps(scope) if r.team}
        raise InvalidQuery(_("unknown team {team!r}: no rep of the data is in it",
                             team=value) + did_you_mean(value, sorted(visible), list_up_to=20),
                           code="unknown_team")
    if dim == "rep":
        people = service.visible_reps()
        if value in service.rep_names() or any(value in (r.rep, r.name) for r in people):
            return
        names = [r.name for r in service.visible_reps(scope)]
        raise InvalidQuery(_("unknown rep {rep!r}: give a rep id or name from the imported "
                             "reps", rep=value) + did_you_mean(value, names),
                           code="unknown_rep")
    if dim in ("segment", "product", "pipeline"):
        _check_slice_value(service, dim, value)
        return
    sources = service.known_sources()
    if value not in sources:
        raise InvalidQuery(_("unknown source {source!r}: no lead, account or spend has it",
                             source=value) + did_you_mean(value, sorted(sources), list_up_to=20),
                           code="unknown_source")


def _check_slice_value(service: SalesKpiService, dim: str, value: str) -> None:
    """A segment, product (by id or name) or pipeline no record has."""
    known = service.slice_values(dim)
    if value in known:
        return
    if dim == "product":
        names = service.product_names()
        ids = product_ids_by_name(names)
        if ids.get(value, ids.get(value.casefold())) in known:
            return  # a product's name: the service filters by its id
        # Suggested by id or by name, shown as the id with its name.
        labels = {i: f"{i} ({names[i]})" if names.get(i) else i for i in known}
        by_name = {name: i for i, name in names.items() if i in known}
        close = close_names(value, [*labels, *by_name])
        shown = list(dict.fromkeys(labels[by_name.get(c, c)] for c in close))
        hint = ("; " + _("did you mean {names}?", names=", ".join(shown)) if shown else
                did_you_mean(value, sorted(labels.values()), list_up_to=20))
        raise InvalidQuery(_("unknown product {product!r}: no deal or revenue has it",
                             product=value) + hint, code="unknown_product")
    message = (_("unknown segment {segment!r}: no lead or account has it", segment=value)
               if dim == "segment" else
               _("unknown pipeline {pipeline!r}: no deal is in it", pipeline=value))
    raise InvalidQuery(message + did_you_mean(value, sorted(known), list_up_to=20),
                       code=f"unknown_{dim}")


def needs_rates(service: SalesKpiService, query: KpiQuery) -> bool:
    """Whether any KPI asked adds up money converted to the reporting currency."""
    catalog = service.catalog
    for key in query.kpis:
        spec = catalog.kpis.get(key)
        if spec is None:
            continue
        if spec.unit == "money" or any(
                m.column in REPORTING_MONEY.get(m.entity, frozenset())
                for m in catalog.measures(key)):
            return True
    return False


def check_rates(service: SalesKpiService, query: KpiQuery) -> None:
    """``Conflict`` (``missing_fx_rates``) naming the currencies that have no rate."""
    if not needs_rates(service, query):
        return
    missing = service.currencies_without_rates()
    if not missing:
        return
    currency = service.settings.currency
    parts = missing_rates_text(missing)
    raise Conflict(_(
        "amounts in {parts} have no exchange rate to the reporting currency {currency}, so "
        "money KPIs would leave them out. Import fx_rates (date, currency, rate = units of "
        "{currency} per unit, e.g. fx_rates.csv in 'saleskpi import') covering their "
        "dates, or set the reporting currency back with 'saleskpi settings --currency'",
        parts=parts, currency=currency), code="missing_fx_rates")
