"""The rows behind a number: the fact rows one KPI value was computed from.

For a simple KPI, the rows of its measure's view that the measure's ``where`` lets
through, within the query's dates and filters (the caller's scope is among the
filters: the service adds it). Dates place a row as the scorecard does
(``saleskpi.engine.build``): the time column's wall-clock time in the company's
zone, ``start <= local < end + 1 day``. A snapshot measure (open deals, customers)
gives the rows open at the instant the scorecard takes for the whole range: the end
of its last day (or now), or its start for ``at: start``. For a ratio KPI, the rows
of its numerator or of its denominator; a share KPI's rows are those of the KPI it is
a share of. A derived KPI is a formula over other KPIs: it has no rows of its own,
and the error names the KPIs to ask instead.

Counted, the rows are the value of a count KPI (deals_won, calls, leads) for the
same query. For other aggregations (sum, avg, ...) they are the rows whose measured
column is not empty: the values the aggregate was taken over.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir

from saleskpi.catalog.load import Catalog, formula_refs
from saleskpi.catalog.spec import Measure
from saleskpi.domain.conditions import parse_condition
from saleskpi.domain.i18n import _
from saleskpi.domain.query import DIMENSIONS, KpiQuery, local_midnight_utc
from saleskpi.domain.schema import ENTITIES
from saleskpi.engine.bound import BoundValues, bound_sql
from saleskpi.engine.build import snapshot_filters
from saleskpi.engine.context import ViewContext, supports
from saleskpi.engine.database import Database
from saleskpi.engine.filters import predicate
from saleskpi.engine.scorecard import QueryError
from saleskpi.engine.views import DERIVED_COLUMNS, build_view, local_time

__all__ = ["PARTS", "measure_behind", "rows_behind"]

# What part of a KPI the rows are of: a simple KPI's value, a ratio's two sides.
PARTS = ("value", "numerator", "denominator")
LOCAL_SUFFIX = "_local"  # the time column in the company's wall-clock time


def measure_behind(catalog: Catalog, key: str,
                   part: str | None = None) -> tuple[str, Measure, str | None]:
    """The measure whose rows are behind ``key`` (its ``part`` for a ratio).

    Returns the part (``value`` for a simple KPI; ``numerator`` unless asked otherwise
    for a ratio), the measure, and the KPI the part names when it names one (win_rate's
    numerator is deals_won). ``QueryError`` (code ``not_drillable``) for a derived KPI
    or a ratio part that is not a simple KPI; ``bad_part`` for a part the KPI lacks.
    """
    spec = catalog.get(key)
    if part is not None and part not in PARTS:
        raise QueryError(_("unknown part {part!r}: use numerator or denominator (for a "
                           "ratio KPI)", part=part), code="bad_part")
    if spec.kind == "simple":
        if part not in (None, "value"):
            raise QueryError(_("{kpi} is not a ratio: it has no numerator or denominator; "
                               "ask without a part", kpi=key), code="bad_part")
        return "value", spec.measure(), None
    if spec.kind == "share":
        assert spec.of is not None
        found, measure, _named = measure_behind(catalog, spec.of, part)
        return found, measure, spec.of
    if spec.kind == "ratio":
        assert spec.numerator is not None and spec.denominator is not None
        if part == "value":
            raise QueryError(_("{kpi} is a ratio: ask for its numerator or its denominator",
                               kpi=key), code="bad_part")
        side = part or "numerator"
        ref = spec.numerator if side == "numerator" else spec.denominator
        if isinstance(ref, Measure):
            return side, ref, None
        named = catalog.get(ref)
        if named.kind != "simple":
            raise QueryError(_("{ref} ({part} of {kpi}) is not counted from rows itself: "
                               "ask for the rows of the KPIs it is made of",
                               part=side, kpi=key, ref=ref), code="not_drillable")
        return side, named.measure(), ref
    parts = ", ".join(formula_refs(spec.formula or ""))
    raise QueryError(_("{kpi} is derived ({formula}), not counted from rows: ask for the "
                       "rows of the KPIs it is made of: {kpis}",
                       kpi=key, formula=spec.formula or "", kpis=parts), code="not_drillable")


def rows_behind(db: Database, catalog: Catalog, spec_key: str, query: KpiQuery, *,
                part: str | None = None, limit: int | None = 100, offset: int = 0,
                timezone: str, currency: str, now: dt.datetime | None = None,
                ) -> tuple[list[str], list[tuple[Any, ...]], int]:
    """The rows behind ``spec_key`` for ``query``: (column names, one page of rows, all rows).

    Newest first (by the measure's time column), then by key. ``query.by`` only adds
    slice columns; ``query.period`` is not used (ask for one period with its dates).
    """
    _part, measure, _named = measure_behind(catalog, spec_key, part)
    for dim in query.dims():
        _check_dimension(dim)
        if not supports(measure.entity, dim):
            raise QueryError(_("the rows of {kpi} ({entity}) cannot be split or filtered by "
                               "{dim}", kpi=spec_key, entity=measure.entity, dim=dim),
                             code="not_by")
    ctx = ViewContext(tables=lambda name: db.ibis.table(name), currency=currency,
                      zone=timezone, several_sources=db.sources_of_reps() > 1)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    params = BoundValues()
    rows = _rows(ctx, measure, query, params, now)
    columns = list(rows.columns)
    counted = rows.aggregate(n=rows.count())
    found = db.fetch(bound_sql(db, counted, params), params.values)
    total = int(found[0][0]) if found else 0
    time = rows[measure.time]
    keys = [rows[c] for c in (*ENTITIES[measure.entity].key, "datasource")
            if c != measure.time]
    page = rows.order_by(ibis.desc(time, nulls_first=False), *keys).limit(limit, offset=offset)
    found = db.fetch(bound_sql(db, page, params), params.values)
    return columns, [tuple(r) for r in found], total


def _check_dimension(dim: str) -> None:
    if dim in DIMENSIONS:
        return
    custom = dim.removeprefix("rep.")
    if not custom.replace("_", "").isalnum():
        raise QueryError(_("unknown slice {dim!r}: use one of {known} or a custom field name",
                           dim=dim, known=", ".join(DIMENSIONS)))


def _shown_columns(measure: Measure, dims: tuple[str, ...]) -> list[str]:
    """Keys, whose row it is, what is measured, when, and what the conditions read."""
    entity = ENTITIES[measure.entity]
    names = [*entity.key, "datasource"]
    if "rep_id" in entity.column_names:
        names.append("rep_id")
    names += [c for c in (measure.column, measure.time, measure.until) if c]
    names.append(measure.time + LOCAL_SUFFIX)
    names += [parse_condition(w).column for w in measure.where]
    names += [f"dim_{d}" for d in dims]
    return list(dict.fromkeys(names))


def _rows(ctx: ViewContext, measure: Measure, query: KpiQuery, params: BoundValues,
          now: dt.datetime) -> ir.Table:
    """The measure's rows for ``query``, as the scorecard counts them (``build``)."""
    conditions = [parse_condition(w) for w in measure.where]
    wanted = {c for c in (measure.column, measure.time, measure.until) if c}
    wanted |= {c.column for c in conditions}
    wanted &= set(DERIVED_COLUMNS[measure.entity])
    dims = query.dims()
    view = build_view(ctx, measure.entity, wanted, list(dims))
    view = view.mutate(**{measure.time + LOCAL_SUFFIX: local_time(view[measure.time],
                                                                   ctx.zone)})
    filters: list[ir.BooleanValue] = [predicate(view, c) for c in conditions]
    for index, (dim, values) in enumerate(query.where):
        options = [params(f"f{index}_{i}", value) for i, value in enumerate(values)]
        filters.append(view[f"dim_{dim}"].isin(options).fill_null(False))
    if measure.agg != "count" and measure.column:
        filters.append(view[measure.column].notnull())
    time = view[measure.time]
    if measure.is_snapshot:
        as_of = _as_of(measure, query, ctx.zone, now)
        if as_of is None:
            filters.append(ibis.literal(False))
        else:
            instant = params("as_of", as_of.isoformat()).cast("timestamp")
            until = None if measure.until is None else view[measure.until]
            filters += snapshot_filters(time, until, measure.window_days, instant)
    else:
        local = view[measure.time + LOCAL_SUFFIX]
        filters.append(time.notnull())
        if query.start is not None:
            filters.append(local >= params("start", query.start.isoformat()).cast("timestamp"))
        if query.end is not None:
            day_after = query.end + dt.timedelta(days=1)
            filters.append(local < params("end", day_after.isoformat()).cast("timestamp"))
    view = view.filter(*filters)
    return view.select(*_shown_columns(measure, dims))


def _as_of(measure: Measure, query: KpiQuery, zone: str,
           now: dt.datetime) -> dt.datetime | None:
    """The instant a snapshot is taken over the whole range (``Engine._as_of``, period all)."""
    if measure.at == "start":
        if query.start is None:
            return None
        return min(now, local_midnight_utc(query.start, zone))
    if query.end is None:
        return now
    return min(now, local_midnight_utc(query.end + dt.timedelta(days=1), zone))
