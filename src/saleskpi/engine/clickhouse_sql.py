"""What the compiled SQL needs to mean on ClickHouse what it means on DuckDB and PostgreSQL.

Ibis compiles two things for ClickHouse that would change figures there:

- ``quantile(q)(x)`` is ClickHouse's approximate (sampling) quantile. DuckDB's
  ``quantile_cont`` and PostgreSQL's ``percentile_cont`` interpolate between the two
  nearest values (the "R-7" rule); ClickHouse's ``quantileExactInclusive`` does
  exactly that, so medians and p90s are the same numbers on every backend;
- ``timezone(zone, ts)`` (the company's wall-clock time, our own Ibis function)
  does not exist there: the wall-clock time is the UTC instant moved by the zone's
  offset at that instant (``timeZoneOffset``), so periods start at local midnight;
- epoch seconds are doubles, as DuckDB's ``epoch`` gives them.
"""

from __future__ import annotations

from typing import Any

import sqlglot.expressions as sge

EXACT_QUANTILES = {"quantile": "quantileExactInclusive",
                   "quantileif": "quantileExactInclusiveIf"}


def exact_and_local(node: sge.Expression) -> sge.Expression:
    """A sqlglot node rewritten for ClickHouse (use with ``tree.transform``)."""
    if isinstance(node, sge.ParameterizedAgg):
        name = node.this if isinstance(node.this, str) else node.name
        exact = EXACT_QUANTILES.get(str(name).lower())
        if exact is not None:
            node.set("this", exact)
        return node
    if isinstance(node, sge.Anonymous) and str(node.this) == "toRelativeSecondNum":
        # Epoch seconds are a double on DuckDB; an integer here would leave no common
        # type with the NULLs (doubles) that durations are compared with.
        return sge.Anonymous(this="toFloat64", expressions=[node.copy()])
    if isinstance(node, sge.Anonymous) and str(node.this).lower() == "timezone":
        zone, instant = node.expressions
        offset = sge.Anonymous(this="timeZoneOffset", expressions=[
            sge.Anonymous(this="toTimeZone", expressions=[instant.copy(), zone.copy()])])
        return sge.Anonymous(this="addSeconds", expressions=[instant, offset])
    return node


def clickhouse_compiler() -> Any:
    """Ibis's ClickHouse compiler, with custom fields read and the rewrites above made."""
    global _COMPILER
    if _COMPILER is None:
        _COMPILER = _compiler_class()()
    return _COMPILER


_COMPILER: Any = None


def _compiler_class() -> type:
    from ibis.backends.sql.compilers.clickhouse import ClickHouseCompiler

    class SalesKpiClickHouseCompiler(ClickHouseCompiler):  # type: ignore[misc]
        """Custom fields are JSON text: a field is read raw, then as text if it is text
        (as DuckDB's and PostgreSQL's ``->>`` of a string; a number gives NULL there too)."""

        __slots__ = ()

        def visit_JSONGetItem(self, op: Any, *, arg: Any, index: Any) -> Any:
            return self.f.JSONExtractRaw(arg, index)

        def visit_UnwrapJSONString(self, op: Any, *, arg: Any) -> Any:
            return self.if_(self.f.JSONType(arg).eq(sge.convert("String")),
                            self.f.JSONExtractString(arg), sge.Null())

        def to_sqlglot(self, *args: Any, **kwargs: Any) -> Any:
            tree = super().to_sqlglot(*args, **kwargs)
            return tree.transform(exact_and_local, copy=False)

    return SalesKpiClickHouseCompiler
