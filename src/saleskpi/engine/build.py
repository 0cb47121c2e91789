"""Shapes to SQL with Ibis: the aggregate expression of a shape, rendered with parameters.

Imported only to compile a shape the caches do not hold (``saleskpi.engine.compile``).
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir
import sqlglot.expressions as sge

from saleskpi.catalog.spec import Measure
from saleskpi.domain.conditions import parse_condition
from saleskpi.domain.query import TRUNCATE_UNIT
from saleskpi.engine.filters import predicate
from saleskpi.engine.ibis_dialects import dialect_module
from saleskpi.engine.money import exact_mean, exact_money, exact_sum
from saleskpi.engine.shape import AS_OF_TABLE, Compiled, Shape, measure_column
from saleskpi.engine.views import DERIVED_COLUMNS, ViewContext, build_view, local_time


def aggregate(table: ir.Table, measure: Measure, extra: ir.BooleanValue | None) -> ir.Value:
    conditions = [predicate(table, parse_condition(c)) for c in measure.where]
    if extra is not None:
        conditions.append(extra)
    where: ir.BooleanValue | None = None
    for condition in conditions:
        where = condition if where is None else where & condition
    if measure.agg == "count":
        return table.count(where=where)
    column = table[measure.column]
    if exact_money(measure):
        if measure.agg == "sum":
            return exact_sum(column, where)
        return exact_mean(column, where)
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


def parameters(names: list[tuple[str, ir.Scalar]]) -> Callable[[str], ir.Scalar]:
    """A maker of named string parameters, each recorded in ``names`` in order."""

    def param(name: str) -> ir.Scalar:
        placeholder = ibis.param("string")
        names.append((name, placeholder))
        return placeholder

    return param


def slice_filters(table: ir.Table, shape: Shape,
                  param: Callable[[str], ir.Scalar]) -> list[ir.BooleanValue]:
    """The shape's slice filters (``dim_<name>`` in the values bound later) on ``table``."""
    return [table[f"dim_{dim}"].isin([param(f"f{index}_{i}") for i in range(arity)])
            .fill_null(False) for index, (dim, arity) in enumerate(shape.filter_arity)]


def _range_filters(view: ir.Table, stored: ir.Value, shape: Shape,
                   param: Callable[[str], ir.Scalar]) -> list[ir.BooleanValue]:
    """The rows whose local time (``view._local``) is within the asked days.

    A stored UTC time is within a day of its local time (offsets are under 15
    hours). So the range widened by a day on the stored column is a superset the
    database applies first: only the rows near the range are converted to local
    time (ICU, per row: most of a month's question on 3M leads) and joined. And a
    row more than a day inside the range is in it whatever the offset: only the
    rows of the edge days are converted to decide (OR evaluates its second side
    only where the first is false).
    """
    start = param("start").cast("timestamp") if shape.has_start else None
    end = param("end").cast("timestamp") if shape.has_end else None
    exact = [view._local >= start] if start is not None else []
    exact += [view._local < end] if end is not None else []
    if not exact or stored.type().is_date():
        return exact
    near = ibis.interval(days=1)
    widened, inside = [], []
    if start is not None:
        widened.append(stored >= start - near)
        inside.append(stored >= start + near)
    if end is not None:
        widened.append(stored < end + near)
        inside.append(stored < end - near)
    return [*widened, _all(inside) | _all(exact)]


def _all(conditions: list[ir.BooleanValue]) -> ir.BooleanValue:
    result = conditions[0]
    for condition in conditions[1:]:
        result = result & condition
    return result


def snapshot_filters(time: ir.Value, until: ir.Value | None, window_days: int | None,
                     as_of: ir.Value) -> list[ir.BooleanValue]:
    """The rows a snapshot counts at the instant ``as_of`` (a period's end is the next
    day's local midnight, its start its own): the state just before it. A row started
    (``time``; none counts as started) before the instant and not ended (``until``)
    before it, or, with a window, whose ``time`` is in the ``window_days`` before it.

    Just before, not at: dates without a time are midnights, and a deal created on the
    1st was counted open at the end of the month before, one closed on the 1st not; a
    customer who left on the 1st was not one at the month's start, yet churned in it.
    The funnel's open deals are taken the same way (``funnel_build``).
    """
    if until is not None:
        ended = until.notnull() & (until < as_of)
        return [time.isnull() | (time < as_of), ~ended]
    assert window_days is not None
    return [time.notnull(), time < as_of,
            time.epoch_seconds() >= as_of.epoch_seconds() - window_days * 86400]


def build_expression(
    ctx: ViewContext, shape: Shape
) -> tuple[ir.Table, list[tuple[str, ir.Scalar]]]:
    """The aggregate expression for ``shape`` and its named parameters in order."""
    wanted = {c for m in shape.measures for c in (m.column, m.time, m.until) if c}
    wanted |= {parse_condition(w).column for m in shape.measures for w in m.where}
    wanted &= set(DERIVED_COLUMNS[shape.view])
    view = build_view(ctx, shape.view, wanted, list(shape.dims))
    names: list[tuple[str, ir.Scalar]] = []
    param = parameters(names)
    filters = slice_filters(view, shape, param)

    local = local_time(view[shape.time], shape.zone)
    # Rows are grouped by the slices shown; a slice only filtered on is not a group
    # (two teams asked for are one total, not a row per team).
    shown = shape.dims if shape.by is None else shape.by
    groups = {f"dim_{d}": view[f"dim_{d}"] for d in dict.fromkeys(shown)}
    if shape.until is not None or shape.window_days is not None:
        # Snapshots: what is open (or, with a window, recent) at each as-of instant.
        # The instants are rows of a temporary table filled before each run, so
        # the SQL text does not depend on them and stays cacheable.
        instants = ctx.tables(AS_OF_TABLE)
        view = view.filter(*filters) if filters else view
        crossed = view.cross_join(instants)
        until = None if shape.until is None else crossed[shape.until]
        crossed = crossed.filter(*snapshot_filters(crossed[shape.time], until,
                                                   shape.window_days, crossed.as_of))
        keys = {name: crossed[name] for name in groups}
        if shape.period != "all":
            keys["period"] = crossed.period
        metrics = {
            measure_column(i): aggregate(crossed, m, None) for i, m in enumerate(shape.measures)
        }
        if not keys:
            return crossed.aggregate(**metrics), names
        return crossed.group_by(**keys).aggregate(**metrics), names

    view = view.mutate(_local=local)
    stored = view[shape.time]
    filters.append(stored.notnull())
    filters.extend(_range_filters(view, stored, shape, param))
    view = view.filter(*filters)
    keys = {name: view[name] for name in groups}
    if shape.period != "all":
        keys["period"] = view._local.truncate(TRUNCATE_UNIT[shape.period]).date()
    metrics = {measure_column(i): aggregate(view, m, None) for i, m in enumerate(shape.measures)}
    if not keys:
        return view.aggregate(**metrics), names
    return view.group_by(**keys).aggregate(**metrics), names


def to_sql(ctx: ViewContext, shape: Shape, dialect: str) -> Compiled:
    """The shape's SQL with a named placeholder (``$start``, ``$f0_1``...) per parameter."""
    expression, named = build_expression(ctx, shape)
    sql, params = render(expression, named, dialect)
    columns = tuple(measure_column(i) for i in range(len(shape.measures)))
    return Compiled(sql, params, columns)


def render(expression: ir.Table, named: list[tuple[str, ir.Scalar]],
           dialect: str) -> tuple[str, tuple[str, ...]]:
    """``expression`` as SQL of ``dialect``, each named parameter a placeholder, in order.

    Ibis knows no placeholders, only parameters it fills with literals. So each
    parameter is compiled as a unique marker literal, and in the SQL syntax tree
    (not in the text) each marker literal is replaced by a placeholder node: the
    values are then bound by the database, never spliced into the SQL.
    """
    markers = {f"__saleskpi_param_{i}__": name for i, (name, _p) in enumerate(named)}
    values = {p: marker for marker, (_name, p) in zip(markers, named, strict=True)}
    if dialect == "clickhouse":  # exact quantiles, local time, custom fields there
        from saleskpi.engine.clickhouse_sql import clickhouse_compiler

        compiler = clickhouse_compiler()
    else:
        compiler = dialect_module(dialect).compiler
    tree = compiler.to_sqlglot(expression.unbind(), params=values)
    bound: set[str] = set()

    def placeholder(node: sge.Expression) -> sge.Expression:
        if isinstance(node, sge.Literal) and node.is_string and node.this in markers:
            name = markers[node.this]
            bound.add(name)
            # Every parameter is text (ClickHouse wants the type named: {name: String}).
            return sge.Placeholder(this=name, kind="String")
        return node

    tree = tree.transform(placeholder, copy=False)
    missing = [name for name in markers.values() if name not in bound]
    if missing:
        raise RuntimeError(f"parameters {missing} did not survive compilation")
    return tree.sql(dialect=compiler.dialect, pretty=True), tuple(markers.values())
