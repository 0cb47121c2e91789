"""What the compiled SQL needs to mean on ClickHouse what it means on DuckDB and PostgreSQL.

Ibis's ClickHouse compiler, with the few rules that would change figures there
made as on the other backends:

- quantiles (medians, p90s): Ibis compiles ClickHouse's ``quantile``, a sampling
  (approximate) quantile. DuckDB's ``quantile_cont`` and PostgreSQL's
  ``percentile_cont`` interpolate between the two nearest values (the "R-7" rule);
  ClickHouse's ``quantileExactInclusive`` does exactly that, so medians and p90s
  are the same numbers on every backend;
- distinct counts: Ibis compiles ``uniq`` (approximate beyond a few thousand
  values); here ``uniqExact``;
- counts are signed 64-bit integers, as DuckDB's (ClickHouse's UInt64 has no
  common type with the Int64 NULLs other parts of a UNION ALL hold);
- epoch seconds are doubles, as DuckDB's ``epoch`` gives them;
- ``timezone(zone, ts)`` (the company's wall-clock time, our own Ibis function)
  does not exist there: the wall-clock time is the UTC instant moved by the
  zone's offset at that instant (``timeZoneOffset``), so periods start at local
  midnight, across daylight-saving changes too;
- text is lower- and upper-cased and measured as Unicode (``lowerUTF8``...), as on
  DuckDB: ClickHouse's ``lower`` leaves Cyrillic as it is, and won and lost stage
  names such as "Успешно реализовано" are matched lower-cased;
- custom fields are JSON text: a field is read raw, then as text if it is text
  (a number gives NULL, as DuckDB's and PostgreSQL's ``->>`` unwrapped as text).
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlglot.expressions as sge

_COMPILER: Any = None


def clickhouse_compiler() -> Any:
    """The compiler the engine uses for ClickHouse (made once)."""
    global _COMPILER
    if _COMPILER is None:
        _COMPILER = _compiler_class()()
    return _COMPILER


def _compiler_class() -> type:
    import ibis.expr.operations as ops

    from saleskpi.engine.ibis_dialects import dialect_module

    ClickHouseCompiler: Any = dialect_module("clickhouse").ClickHouseCompiler

    # Ibis defines a method per "simple" operation when a compiler class is made, over
    # the class's own: the ones written below are left out of them.
    ours = (ops.Count, ops.CountDistinct, ops.ExtractEpochSeconds, ops.Lowercase,
            ops.Uppercase, ops.StringLength)

    class SalesKpiClickHouseCompiler(ClickHouseCompiler):  # type: ignore[misc]
        __slots__ = ()
        SIMPLE_OPS: ClassVar[dict[Any, str]] = {
            op: name for op, name in ClickHouseCompiler.SIMPLE_OPS.items()
            if op not in ours}

        def visit_Quantile(self, op: Any, *, arg: Any, quantile: Any, where: Any) -> Any:
            return self._visit_quantile("quantileExactInclusive", arg, quantile, where)

        def visit_Median(self, op: Any, *, arg: Any, where: Any) -> Any:
            return self._visit_quantile("quantileExactInclusive", arg, sge.convert(0.5), where)

        def visit_CountStar(self, op: Any, *, where: Any, arg: Any) -> Any:
            return self.f.toInt64(super().visit_CountStar(op, where=where, arg=arg))

        def visit_Count(self, op: Any, *, arg: Any, where: Any) -> Any:
            return self.f.toInt64(self.agg.count(arg, where=where))

        def visit_CountDistinct(self, op: Any, *, arg: Any, where: Any) -> Any:
            return self.f.toInt64(self.agg.uniqExact(arg, where=where))

        def visit_ExtractEpochSeconds(self, op: Any, *, arg: Any) -> Any:
            return self.f.toFloat64(self.f.toRelativeSecondNum(arg))

        def visit_ScalarUDF(self, op: Any, **kw: Any) -> Any:
            if self.__sql_name__(op) != "timezone":
                return super().visit_ScalarUDF(op, **kw)
            zone, instant = kw.values()
            return self.f.addSeconds(instant, self.f.timeZoneOffset(
                self.f.toTimeZone(instant, zone)))

        def visit_Lowercase(self, op: Any, *, arg: Any) -> Any:
            return self.f.lowerUTF8(arg)

        def visit_Uppercase(self, op: Any, *, arg: Any) -> Any:
            return self.f.upperUTF8(arg)

        def visit_StringLength(self, op: Any, *, arg: Any) -> Any:
            return self.f.lengthUTF8(arg)

        def visit_JSONGetItem(self, op: Any, *, arg: Any, index: Any) -> Any:
            return self.f.JSONExtractRaw(arg, index)

        def visit_UnwrapJSONString(self, op: Any, *, arg: Any) -> Any:
            return self.if_(self.f.JSONType(arg).eq(sge.convert("String")),
                            self.f.JSONExtractString(arg), sge.Null())

    return SalesKpiClickHouseCompiler
