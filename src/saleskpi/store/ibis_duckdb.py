"""Ibis on a DuckDB connection of the store, reading a table's schema without Arrow.

Ibis's DuckDB backend reads a schema (``DESCRIBE``) as an Arrow table, which imports
pyarrow and numpy: a quarter of a second of CPU for a question nobody asked before,
whose SQL is compiled from the tables' schemas alone (issue 12: ``saleskpi kpi`` in a
fresh process). Imported only where Ibis is (``AnalyticsStore.ibis``).
"""

from __future__ import annotations

import duckdb
import ibis.common.exceptions as ibis_errors
import ibis.expr.schema as sch
import sqlglot.expressions as sge

from saleskpi.engine.ibis_dialects import enter_package

enter_package()  # before Ibis's DuckDB backend: only DuckDB's compiler is imported

from ibis.backends.duckdb import Backend  # noqa: E402


class StoreBackend(Backend):  # type: ignore[misc]
    """Ibis's DuckDB backend whose ``get_schema`` reads DESCRIBE's rows as tuples."""

    def get_schema(self, table_name: str, *, catalog: str | None = None,
                   database: str | None = None) -> sch.Schema:
        query = sge.Describe(this=sge.table_(table_name, db=database, catalog=catalog,
                                           quoted=self.compiler.quoted)).sql(self.dialect)
        try:
            result = self.con.sql(query)
        except duckdb.CatalogException:
            raise ibis_errors.TableNotFound(table_name) from None
        at = {name: i for i, name in enumerate(result.columns)}
        type_mapper = self.compiler.type_mapper
        return sch.Schema({
            row[at["column_name"]]: type_mapper.from_string(row[at["column_type"]],
                                                            nullable=row[at["null"]] == "YES")
            for row in result.fetchall()})


def ibis_on(con: duckdb.DuckDBPyConnection) -> Backend:
    """Ibis on ``con`` (the store's connection, not a new one)."""
    made: Backend = StoreBackend.from_connection(con)
    return made
