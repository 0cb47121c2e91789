"""Rollups with Ibis: the query that fills one, and a shape answered from one.

The fill is the engine's own aggregation (``build.aggregate`` over
``build_view``) grouped by local day, datasource, raw rep and slices: a rollup is
the engine at day grain, so sums of its rows equal the raw answer.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from saleskpi.catalog.spec import Measure
from saleskpi.domain.query import TRUNCATE_UNIT
from saleskpi.engine.build import aggregate, parameters, render, slice_filters
from saleskpi.engine.context import ViewContext
from saleskpi.engine.dimensions import add_dimension
from saleskpi.engine.money import exact_money, exact_sum
from saleskpi.engine.rollups import DIRTY_TABLE, PER_REP, RollupSpec, value_columns
from saleskpi.engine.shape import Compiled, Shape, measure_column
from saleskpi.engine.views import build_view, local_time


def fill_sql(ctx: ViewContext, spec: RollupSpec, dialect: str, *, dirty_only: bool) -> str:
    """SELECT of the rollup's rows; ``dirty_only``: only the days marked dirty for it."""
    view = build_view(ctx, spec.view, spec.derived, list(spec.slices))
    view = view.filter(view[spec.time].notnull())
    if dirty_only:
        dirty = ctx.tables(DIRTY_TABLE)
        days = dirty.filter(dirty.rollup == spec.name).day
        # Stored times are UTC; a local day D holds times from D - 1 day to D + 2 days
        # (zones are within ±14 h). A range on the raw column first lets the database
        # skip the rest of the table before any zone is converted.
        low = days.min().as_scalar().cast("timestamp") - ibis.interval(days=1)
        high = days.max().as_scalar().cast("timestamp") + ibis.interval(days=2)
        view = view.filter(view[spec.time] >= low, view[spec.time] < high)
    day = local_time(view[spec.time], spec.zone).truncate("D").date()
    hours = None if dirty_only else _hour_days(ctx, spec)
    if hours is not None:
        view = view.left_join(hours, view[spec.time].truncate("h") == hours._h).drop("_h")
        day = view._hd.coalesce(local_time(view[spec.time], spec.zone).truncate("D").date())
    view = view.mutate(_day=day)
    if dirty_only:
        view = view.filter(view._day.isin(days))
    keys = {"day": view._day, "datasource": view.datasource, "rep_id": view.rep_id,
            **{f"dim_{d}": view[f"dim_{d}"] for d in spec.slices}}
    metrics: dict[str, ir.Value] = {}
    for slot, measure in enumerate(spec.measures):
        columns = value_columns(slot, measure)
        if measure.agg == "avg":
            assert measure.column is not None
            total = measure.model_copy(update={"agg": "sum"})
            known = Measure(entity=measure.entity, time=measure.time, agg="count",
                            where=(*measure.where, f"{measure.column} is not null"))
            metrics[columns[0]] = aggregate(view, total, None)
            metrics[columns[1]] = aggregate(view, known, None)
        else:
            metrics[columns[0]] = aggregate(view, measure, None)
    expression = view.group_by(**keys).aggregate(**metrics)
    sql, _params = render(expression, [], dialect)
    return sql


def _hour_days(ctx: ViewContext, spec: RollupSpec) -> ir.Table | None:
    """The company-local day of each UTC hour the rollup's time column has, where one
    day holds the whole hour (no change of offset within it, no local midnight in it);
    else NULL, and such an hour's rows are converted one by one.

    A full fill converts each distinct hour rather than each row: converting 2M
    activities' times to the zone was ~0.8 s of the 2.2 s of CPU of their rollup. Not
    for the dirty days' refills of a sync: their rows are few, and the distinct hours
    would be read from the whole table. None when nothing is converted (UTC, dates) or
    the column is derived (not in the view's table).
    """
    base = ctx.tables(spec.view)
    if (spec.zone == "UTC" or spec.time not in base.columns
            or not base[spec.time].type().is_timestamp()):
        return None
    hours = base.select(_h=base[spec.time].truncate("h")).distinct()
    start = hours._h
    # Offsets change on whole seconds: the hour's last second stands for the rest of it.
    end = start + ibis.interval(seconds=3599)
    first, last = local_time(start, spec.zone), local_time(end, spec.zone)
    steady = (((first.epoch_seconds() - start.epoch_seconds())
               == (last.epoch_seconds() - end.epoch_seconds()))
              & (first.date() == last.date()))
    return hours.mutate(_hd=ibis.cases((steady, first.date()), else_=ibis.null("date")))


def rollup_expression(ctx: ViewContext, shape: Shape) -> tuple[ir.Table,
                                                                list[tuple[str, ir.Scalar]]]:
    """``shape`` answered from its rollup table: the same columns as ``build_expression``."""
    assert shape.rollup is not None
    table = ctx.tables(shape.rollup)
    for dim in dict.fromkeys(shape.dims):
        if dim in PER_REP:  # the rep's person and team as the raw path joins them
            table = add_dimension(ctx, shape.view, table, dim)
    names: list[tuple[str, ir.Scalar]] = []
    param = parameters(names)
    filters = slice_filters(table, shape, param)
    local = table.day.cast("timestamp")
    if shape.has_start:
        filters.append(local >= param("start").cast("timestamp"))
    if shape.has_end:
        filters.append(local < param("end").cast("timestamp"))
    if filters:
        table = table.filter(*filters)
    local = table.day.cast("timestamp")
    shown = shape.dims if shape.by is None else shape.by
    keys: dict[str, ir.Value] = {f"dim_{d}": table[f"dim_{d}"] for d in dict.fromkeys(shown)}
    if shape.period != "all":
        keys["period"] = local.truncate(TRUNCATE_UNIT[shape.period]).date()
    metrics: dict[str, ir.Value] = {}
    for i, (measure, slot) in enumerate(zip(shape.measures, shape.rollup_slots, strict=True)):
        columns = value_columns(slot, measure)
        # A rollup's money is each day's exact sum as a float: added up as decimals again.
        total = (exact_sum(table[columns[0]]) if exact_money(measure)
                 else table[columns[0]].sum())
        if measure.agg == "avg":
            metrics[measure_column(i)] = (total.cast("float64")
                                          / table[columns[1]].sum().nullif(0))
        else:
            metrics[measure_column(i)] = total
    if not keys:
        return table.aggregate(**metrics), names
    return table.group_by(**keys).aggregate(**metrics), names


def to_sql(ctx: ViewContext, shape: Shape, dialect: str) -> Compiled:
    """The SQL of ``shape`` over its rollup, with the raw path's placeholders and columns."""
    expression, named = rollup_expression(ctx, shape)
    sql, params = render(expression, named, dialect)
    return Compiled(sql, params, tuple(measure_column(i) for i in range(len(shape.measures))))
