"""A shape answered from its rollup, as DuckDB SQL written directly (no Ibis).

What a KPI means (its filters, the money in the reporting currency, the company's
days) is decided when a rollup is filled, by Ibis (``rollup_build.fill_sql``). Reading
one is only adding up its columns again: by the slices shown, the period, and the
rows the filters keep. Importing Ibis and compiling that cost a new question ~0.4 s
in a fresh process (``saleskpi kpi`` at 2M activities: 0.9 s against a hand-written
query's 0.4 s, issue 12). So on DuckDB this module writes the SQL that
``rollup_build.rollup_expression`` would compile, clause for clause, with the same
placeholders and columns; tests/test_rollup_read.py runs both over the same store for
every kind of shape and compares the rows. Other databases keep the Ibis path.
"""

from __future__ import annotations

from saleskpi.domain.query import TRUNCATE_UNIT
from saleskpi.engine.context import ViewContext
from saleskpi.engine.money import MONEY_SQL, exact_money
from saleskpi.engine.rollups import value_columns
from saleskpi.engine.shape import Compiled, Shape, measure_column

DIALECT = "duckdb"
# The units ``TRUNCATE_UNIT`` names, as DuckDB's DATE_TRUNC spells them.
_TRUNCATE = {"D": "DAY", "W": "WEEK", "M": "MONTH", "Q": "QUARTER", "Y": "YEAR"}


def can_read(shape: Shape, dialect: str) -> bool:
    """Whether this module writes ``shape``'s SQL: a rollup's, on DuckDB."""
    return dialect == DIALECT and shape.rollup is not None


def to_sql(ctx: ViewContext, shape: Shape) -> Compiled:
    """The SQL of ``shape`` over its rollup: the columns and placeholders of the Ibis path."""
    assert shape.rollup is not None
    dims = list(dict.fromkeys(shape.dims))
    shown = list(dict.fromkeys(shape.dims if shape.by is None else shape.by))
    rows = _with_people(ctx, shape.rollup, dims)
    where, params = _filters(shape)
    local = 'CAST("day" AS TIMESTAMP)'
    keys = [f'"dim_{d}"' for d in shown]
    if shape.period != "all":
        unit = _TRUNCATE[TRUNCATE_UNIT[shape.period]]
        keys.append(f"CAST(DATE_TRUNC('{unit}', {local}) AS DATE) AS \"period\"")
    metrics = [f'{_metric(shape, i)} AS "{measure_column(i)}"'
               for i in range(len(shape.measures))]
    sql = f"SELECT {', '.join([*keys, *metrics])} FROM ({rows}) AS \"t\""
    if where:
        sql += " WHERE " + " AND ".join(where)
    if keys:
        sql += " GROUP BY " + ", ".join(str(i + 1) for i in range(len(keys)))
    return Compiled(sql, tuple(params),
                    tuple(measure_column(i) for i in range(len(shape.measures))))


def _with_people(ctx: ViewContext, rollup: str, dims: list[str]) -> str:
    """The rollup's rows with the rep's person and team, joined as ``add_dimension``
    joins them: a rollup's views all have a rep of their own (``rollups.VIEWS``)."""
    columns = ['"r".*']
    joins = []
    if "rep" in dims:
        if ctx.several_sources:
            joins.append('LEFT JOIN "rep_people" AS "p" ON "r"."rep_id" = "p"."rep_id" '
                         'AND "r"."datasource" = "p"."datasource"')
            columns.append('COALESCE("p"."person", "r"."rep_id") AS "dim_rep"')
        else:
            columns.append('"r"."rep_id" AS "dim_rep"')
    if "team" in dims:
        joins.append('LEFT JOIN "reps" AS "w" ON "r"."rep_id" = "w"."id" '
                     'AND "r"."datasource" = "w"."datasource"')
        columns.append('"w"."team" AS "dim_team"')
    return f'SELECT {", ".join(columns)} FROM "{rollup}" AS "r" {" ".join(joins)}'.strip()


def _filters(shape: Shape) -> tuple[list[str], list[str]]:
    """The WHERE conditions and the parameter names, in the Ibis path's order: each
    slice filter's values, then the first day and the day after the last."""
    where: list[str] = []
    params: list[str] = []
    for index, (dim, arity) in enumerate(shape.filter_arity):
        names = [f"f{index}_{i}" for i in range(arity)]
        params += names
        values = ", ".join(f"${name}" for name in names)
        where.append(f'COALESCE("dim_{dim}" IN ({values}), FALSE)')
    local = 'CAST("day" AS TIMESTAMP)'
    if shape.has_start:
        params.append("start")
        where.append(f"{local} >= CAST($start AS TIMESTAMP)")
    if shape.has_end:
        params.append("end")
        where.append(f"{local} < CAST($end AS TIMESTAMP)")
    return where, params


def _metric(shape: Shape, index: int) -> str:
    """The measure's total: its days' sums added up (money as decimals, as
    ``money.exact_sum``), an average as the sum over the count."""
    measure = shape.measures[index]
    columns = value_columns(shape.rollup_slots[index], measure)
    total = (f'CAST(SUM(CAST("{columns[0]}" AS {MONEY_SQL})) AS DOUBLE)'
             if exact_money(measure) else f'SUM("{columns[0]}")')
    if measure.agg == "avg":
        return f'CAST({total} AS DOUBLE) / NULLIF(SUM("{columns[1]}"), 0)'
    return total
