"""The few pieces of hand-written store SQL that differ between DuckDB, PostgreSQL, ClickHouse.

The store's own statements (imports, first contacts, lookups) are written once;
where the two databases spell a thing differently, the spelling comes from here.
The KPI and funnel queries are not here: the engine compiles them with Ibis for
the store's dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from saleskpi.domain.schema import SQL_TYPES, ColumnType


def string_literal(text: str) -> str:
    """``text`` as an SQL string literal (quotes doubled), for the few places a value
    cannot be a parameter: a column's DEFAULT, a query compiled ahead as text."""
    return "'" + text.replace("'", "''") + "'"


POSTGRES_TYPES: dict[ColumnType, str] = {
    **SQL_TYPES,
    ColumnType.MONEY: "NUMERIC(18, 2)",
    ColumnType.NUMBER: "DOUBLE PRECISION",
}

# ClickHouse: every fact column may be missing (the key columns too: tables allow
# nullable keys); times are UTC to the microsecond as on the other backends.
CLICKHOUSE_TYPES: dict[ColumnType, str] = {
    ColumnType.TEXT: "Nullable(String)",
    ColumnType.TIMESTAMP: "Nullable(DateTime64(6))",
    ColumnType.DATE: "Nullable(Date)",
    ColumnType.MONEY: "Nullable(Decimal(18, 2))",
    ColumnType.NUMBER: "Nullable(Float64)",
    ColumnType.INTEGER: "Nullable(Int64)",
    ColumnType.BOOLEAN: "Nullable(Bool)",
}


@dataclass(frozen=True)
class Dialect:
    name: str
    types: dict[ColumnType, str] = field(default_factory=lambda: dict(SQL_TYPES))
    json: str = "JSON"
    text: str = "VARCHAR"

    def first_values(self, expression: str, count: int, *, distinct: bool = False,
                     order: str | None = None) -> str:
        """An aggregate: a list of the first ``count`` values of ``expression``."""
        inner = f"{'DISTINCT ' if distinct else ''}{expression}"
        if order:
            inner += f" ORDER BY {order}"
        if self.name == "postgres":
            return f"(array_agg({inner}))[1:{count}]"
        if self.name == "clickhouse":
            collected = f"groupUniqArray({expression})" if distinct \
                else f"groupArray({expression})"
            listed = f"arraySort({collected})" if order else collected
            return f"arraySlice({listed}, 1, {count})"
        return f"list({inner})[:{count}]"

    def temp_table_as(self, name: str, select: str) -> list[str]:
        """Statements that (re)make the temporary table ``name`` from ``select``."""
        if self.name == "postgres":
            return [f'DROP TABLE IF EXISTS "{name}"', f'CREATE TEMP TABLE "{name}" AS {select}']
        if self.name == "clickhouse":
            return [f'DROP TEMPORARY TABLE IF EXISTS "{name}"',
                    f'CREATE TEMPORARY TABLE "{name}" ENGINE = Memory AS {select}']
        return [f'CREATE OR REPLACE TEMP TABLE "{name}" AS {select}']

    def any_of(self, placeholder: str = "?") -> str:
        """SQL: one of the values of a list bound at ``placeholder``."""
        if self.name == "postgres":
            return f"= ANY(CAST({placeholder} AS VARCHAR[]))"
        if self.name == "clickhouse":
            return f"IN (SELECT arrayJoin({placeholder}))"
        return f"IN (SELECT unnest({placeholder}::VARCHAR[]))"


DUCKDB = Dialect("duckdb")
POSTGRES = Dialect("postgres", types=POSTGRES_TYPES, json="JSONB")
# ``order`` of first_values is only ever the listed value itself on ClickHouse (sorted).
CLICKHOUSE = Dialect("clickhouse", types=CLICKHOUSE_TYPES, json="Nullable(String)",
                     text="Nullable(String)")
DIALECTS = {d.name: d for d in (DUCKDB, POSTGRES, CLICKHOUSE)}
