"""The few pieces of hand-written store SQL that differ between DuckDB and PostgreSQL.

The store's own statements (imports, first contacts, lookups) are written once;
where the two databases spell a thing differently, the spelling comes from here.
The KPI and funnel queries are not here: the engine compiles them with Ibis for
the store's dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from saleskpi.domain.schema import SQL_TYPES, ColumnType

POSTGRES_TYPES: dict[ColumnType, str] = {
    **SQL_TYPES,
    ColumnType.MONEY: "NUMERIC(18, 2)",
    ColumnType.NUMBER: "DOUBLE PRECISION",
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
        return f"list({inner})[:{count}]"

    def temp_table_as(self, name: str, select: str) -> list[str]:
        """Statements that (re)make the temporary table ``name`` from ``select``."""
        if self.name == "postgres":
            return [f'DROP TABLE IF EXISTS "{name}"', f'CREATE TEMP TABLE "{name}" AS {select}']
        return [f'CREATE OR REPLACE TEMP TABLE "{name}" AS {select}']

    def any_of(self, placeholder: str = "?") -> str:
        """SQL: one of the values of a list bound at ``placeholder``."""
        if self.name == "postgres":
            return f"= ANY(CAST({placeholder} AS VARCHAR[]))"
        return f"IN (SELECT unnest({placeholder}::VARCHAR[]))"


DUCKDB = Dialect("duckdb")
POSTGRES = Dialect("postgres", types=POSTGRES_TYPES, json="JSONB")
DIALECTS = {d.name: d for d in (DUCKDB, POSTGRES)}
