"""Measures to SQL: one aggregate query per (view, time column), compiled once per shape.

Compiling an Ibis expression costs milliseconds to tenths of a second; a web
page asks the same shape again and again with other dates and filters. So the
expression is built with placeholders, compiled once, and the SQL is cached
with the placeholders turned into bound parameters.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from saleskpi.catalog.spec import Measure
from saleskpi.domain.conditions import parse_condition
from saleskpi.domain.query import TRUNCATE_UNIT, Period
from saleskpi.engine.filters import predicate
from saleskpi.engine.views import DERIVED_COLUMNS, ViewContext, build_view, local_time


@dataclass(frozen=True)
class Shape:
    """Everything that changes the SQL text; values bound later are not part of it."""

    view: str
    time: str
    until: str | None
    window_days: int | None
    at: str
    measures: tuple[Measure, ...]
    dims: tuple[str, ...]
    filter_arity: tuple[tuple[str, int], ...]
    period: Period
    has_start: bool
    has_end: bool
    zone: str


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple[str, ...]  # parameter names in binding order
    columns: tuple[str, ...]  # measure column names m0, m1, ...


_SENTINEL = "__saleskpi_param_{}__"
AS_OF_TABLE = "saleskpi_as_of"


def measure_column(index: int) -> str:
    return f"m{index}"


def _aggregate(table: ir.Table, measure: Measure, extra: ir.BooleanValue | None) -> ir.Value:
    conditions = [predicate(table, parse_condition(c)) for c in measure.where]
    if extra is not None:
        conditions.append(extra)
    where: ir.BooleanValue | None = None
    for condition in conditions:
        where = condition if where is None else where & condition
    if measure.agg == "count":
        return table.count(where=where)
    column = table[measure.column]
    match measure.agg:
        case "count_distinct":
            return column.nunique(where=where)
        case "sum":
            return column.sum(where=where)
        case "avg":
            return column.mean(where=where)
        case "median":
            return column.quantile(0.5, where=where)
        case "p90":
            return column.quantile(0.9, where=where)
        case "min":
            return column.min(where=where)
        case "max":
            return column.max(where=where)
    raise ValueError(measure.agg)


def build_expression(
    ctx: ViewContext, shape: Shape
) -> tuple[ir.Table, list[tuple[str, ir.Scalar]]]:
    """The aggregate expression for ``shape`` and its named parameters in order."""
    wanted = {c for m in shape.measures for c in (m.column, m.time, m.until) if c}
    wanted |= {parse_condition(w).column for m in shape.measures for w in m.where}
    wanted &= set(DERIVED_COLUMNS[shape.view])
    view = build_view(ctx, shape.view, wanted, list(shape.dims))
    names: list[tuple[str, ir.Scalar]] = []

    def param(name: str) -> ir.Scalar:
        placeholder = ibis.param("string")
        names.append((name, placeholder))
        return placeholder

    filters: list[ir.BooleanValue] = []
    for index, (dim, arity) in enumerate(shape.filter_arity):
        values = [param(f"f{index}_{i}") for i in range(arity)]
        filters.append(view[f"dim_{dim}"].isin(values).fill_null(False))

    local = local_time(view[shape.time], shape.zone)
    groups = {f"dim_{d}": view[f"dim_{d}"] for d in dict.fromkeys(shape.dims)}
    if shape.until is not None or shape.window_days is not None:
        # Snapshots: what is open (or, with a window, recent) at each as-of instant.
        # The instants are rows of a temporary table filled before each run, so
        # the SQL text does not depend on them and stays cacheable.
        instants = ctx.tables(AS_OF_TABLE)
        view = view.filter(*filters) if filters else view
        crossed = view.cross_join(instants)
        time, as_of = crossed[shape.time], crossed.as_of
        if shape.until is not None:
            # Started by then (a row with no start date counts as started) and not ended.
            before = time < as_of if shape.at == "start" else time <= as_of
            ended = crossed[shape.until].notnull() & (crossed[shape.until] <= as_of)
            crossed = crossed.filter(time.isnull() | before, ~ended)
        else:
            assert shape.window_days is not None
            window = shape.window_days * 86400
            crossed = crossed.filter(
                time.notnull(), time <= as_of,
                time.epoch_seconds() > as_of.epoch_seconds() - window,
            )
        keys = {name: crossed[name] for name in groups}
        if shape.period != "all":
            keys["period"] = crossed.period
        metrics = {
            measure_column(i): _aggregate(crossed, m, None) for i, m in enumerate(shape.measures)
        }
        if not keys:
            return crossed.aggregate(**metrics), names
        return crossed.group_by(**keys).aggregate(**metrics), names

    view = view.mutate(_local=local)
    filters.append(view[shape.time].notnull())
    if shape.has_start:
        filters.append(view._local >= param("start").cast("timestamp"))
    if shape.has_end:
        filters.append(view._local < param("end").cast("timestamp"))
    view = view.filter(*filters)
    keys = {name: view[name] for name in groups}
    if shape.period != "all":
        keys["period"] = view._local.truncate(TRUNCATE_UNIT[shape.period]).date()
    metrics = {measure_column(i): _aggregate(view, m, None) for i, m in enumerate(shape.measures)}
    if not keys:
        return view.aggregate(**metrics), names
    return view.group_by(**keys).aggregate(**metrics), names


class SqlCache:
    """Compiled SQL per shape, least recently used first out."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[tuple[object, ...], Compiled] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, ctx: ViewContext, shape: Shape, dialect: str) -> Compiled:
        # The SQL also depends on what the views know: the reporting currency is a
        # literal in it, and reps from several sources add a join. Same shape, other
        # workspace, other SQL.
        key = (shape, dialect, ctx.currency, ctx.zone, ctx.several_sources)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        compiled = compile_shape(ctx, shape, dialect)
        with self._lock:
            self.misses += 1
            self._items[key] = compiled
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return compiled


def compile_shape(ctx: ViewContext, shape: Shape, dialect: str) -> Compiled:
    expression, named = build_expression(ctx, shape)
    params = {p: _SENTINEL.format(i) for i, (_name, p) in enumerate(named)}
    sql = ibis.to_sql(expression, dialect=dialect, params=params)
    names = [name for name, _p in named]
    for i, name in enumerate(names):
        literal = f"'{_SENTINEL.format(i)}'"
        if literal not in sql:
            raise RuntimeError(f"parameter {name} did not survive compilation")
        sql = sql.replace(literal, f"${name}")
    columns = tuple(measure_column(i) for i in range(len(shape.measures)))
    return Compiled(str(sql), tuple(names), columns)
