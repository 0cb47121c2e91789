"""Values an Ibis query takes as bound parameters, and its SQL with their placeholders.

User text (a rep's name, a filter value) is never spliced into SQL: the query holds
an ``ibis.param`` per value, compiled as a placeholder the database binds
(``$name`` on DuckDB and PostgreSQL, ``{name: String}`` on ClickHouse).
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import sqlglot.expressions as sge

from saleskpi.engine.database import Database


class BoundValues:
    """Values the database binds (``$name``): each is text, cast in the query if needed."""

    def __init__(self) -> None:
        self.named: list[tuple[str, ir.Scalar]] = []
        self.values: dict[str, Any] = {}

    def __call__(self, name: str, value: str) -> ir.Scalar:
        placeholder = ibis.param("string")
        self.named.append((name, placeholder))
        self.values[name] = value
        return placeholder


def bound_sql(db: Database, expression: ir.Table, params: BoundValues) -> str:
    """``expression`` in the database's dialect, with a placeholder per parameter.

    As ``saleskpi.engine.build.to_sql``: each parameter is compiled as a marker literal,
    replaced in the syntax tree (not in the text) by a placeholder the database binds.
    """
    compiler = db.ibis.compiler
    markers = {f"__saleskpi_param_{i}__": name for i, (name, _p) in enumerate(params.named)}
    values = {p: marker for marker, (_name, p) in zip(markers, params.named, strict=True)}
    tree = compiler.to_sqlglot(expression.unbind(), params=values)

    def placeholder(node: sge.Expression) -> sge.Expression:
        if isinstance(node, sge.Literal) and node.is_string and node.this in markers:
            # Every parameter is text (ClickHouse wants the type named: {name: String}).
            return sge.Placeholder(this=markers[node.this], kind="String")
        return node

    tree = tree.transform(placeholder, copy=False)
    sql: str = tree.sql(dialect=compiler.dialect)
    return sql
