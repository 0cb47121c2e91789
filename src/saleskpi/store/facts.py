"""What every analytics store answers, whichever database holds the facts.

``AnalyticsStore`` (DuckDB, a file in the workspace) and ``PostgresStore`` (a
PostgreSQL database) are both a ``FactStore``: the service, the importer and the
engine use one of them without knowing which. The lookups here are written once,
in SQL both databases read (the PostgreSQL connection takes DuckDB's
placeholders, ``store/pg_connection.py``); what differs comes from the store's
``dialect``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from saleskpi.domain.errors import Busy
from saleskpi.domain.schema import ENTITIES, Entity
from saleskpi.domain.tables import TypedTable
from saleskpi.engine.people import rep_names as people_named
from saleskpi.store.dialects import Dialect
from saleskpi.store.first_contacts import forget_first_contacts, refresh_first_contacts
from saleskpi.store.query_timer import GaveWay

if TYPE_CHECKING:
    import pandas as pd

    from saleskpi.domain.filter_names import RepNames

# Tables whose ``custom`` JSON may hold a custom slice's field.
CUSTOM_FIELD_TABLES = ("reps", "leads", "deals", "activities", "accounts")
# Tables with money in a currency, and the day its rate is taken on (as the engine does).
MONEY_TABLES = (("deals", "coalesce(t.closed_at, t.created_at)"),
                ("revenue", "t.occurred_at"), ("spend", "t.date"))


class StoreBusy(Busy):
    """Another process holds the store for writing (one writer at a time)."""
    default_code = "store_busy"


# When the data begins and ends: the dated columns a period counts by.
DATA_SPAN = " UNION ALL ".join(
    f"SELECT count({column}), min({column}), max({column}) FROM {table}"
    for table, column in (("leads", "created_at"), ("deals", "created_at"),
                          ("deals", "closed_at"), ("activities", "occurred_at")))


class FactStore:
    """The facts of one workspace: lookups, deletes and transactions on ``con``.

    ``path``: the workspace's ``analytics.duckdb``. A DuckDB store is that file; any
    store keeps its write journal (``store/journal.py``) in the SQLite file beside it.
    """

    con: Any
    path: Path
    dialect: Dialect

    @property
    def ibis(self) -> Any:
        raise NotImplementedError

    def fetch(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[Any]:
        return list(self.con.execute(sql, params).fetchall())

    def sources_of_reps(self) -> int:
        """How many sources name reps, and one more once a user linked reps by hand:
        callers ask whether a person may be several rep ids (> 1), which a link within
        one source (a rep whose CRM account was made anew) makes so too."""
        rows = self.con.execute("SELECT count(DISTINCT datasource) FROM reps").fetchall()
        links = self.con.execute("SELECT count(*) FROM rep_links").fetchall()
        return (int(rows[0][0]) if rows else 0) + (1 if links and links[0][0] else 0)

    def count(self, table: str) -> int:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and then
        # refuses the next statement on the connection.
        rows = self.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()
        return int(rows[0][0]) if rows else 0

    def stage_frame(self, table: str, entity: Entity, frame: pd.DataFrame, source: str) -> None:
        """``frame`` (typed by the validator) as the temporary table ``table`` of an import:
        the entity's columns, ``datasource`` = ``source``, ``custom`` JSON, ``_row``, ``_file``.
        """
        raise NotImplementedError

    def stage_rows(self, table: str, typed: TypedTable, source: str) -> None:
        """``typed`` (rows of one file, a frame or an Arrow stream) as the temporary table
        ``table``, as ``stage_frame`` makes it. Stores that read Arrow do so directly."""
        frame = typed.to_frame().copy()
        frame["_file"] = typed.name
        self.stage_frame(table, ENTITIES[typed.entity], frame, source)

    def adopt_staged(self, table: str, entity: Entity) -> bool:
        """Make the staging table ``table`` the entity's stored table instead of copying
        its rows, where the store can (DuckDB, a first import); False: copy them."""
        return False

    def data_version(self) -> tuple[int, ...]:
        """Changes whenever the stored facts do (caches of answers are keyed by it)."""
        raise NotImplementedError

    def time_limit(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """The block's queries stop after ``seconds`` (0: never): ``QueryTimeout``."""
        raise NotImplementedError

    def giving_way(self) -> contextlib.AbstractContextManager[GaveWay]:
        """Background reads that stop, and end the block early, when a writer of another
        process waits for the store (DuckDB: the file is one process's to write only
        when no other has it open). Other stores let readers and writers run side by
        side: nothing is stopped."""
        return contextlib.nullcontext(GaveWay())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """All or nothing: a failed import leaves the store exactly as before."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- reps, as pickers, links and filters name them ---------------------------------
    def rep_people(self) -> list[tuple[str, str | None, str | None]]:
        """(person, person's name, team) of every rep, a person once per team."""
        return [(str(p), None if n is None else str(n), None if t is None else str(t))
                for p, n, t in self.fetch(
                    "SELECT DISTINCT person, person_name, team FROM rep_people")]

    def rep_names(self) -> dict[str, str]:
        """Rep id -> name: every source's rep ids, and the person keys of reps matched
        across sources (plans name a rep either way)."""
        names = {str(i): str(n) for i, n in self.fetch("SELECT id, name FROM reps")}
        for person, name in self.fetch("SELECT DISTINCT person, person_name FROM rep_people"):
            names.setdefault(str(person), str(name if name is not None else person))
        return names

    def data_span(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The earliest and latest moment (UTC) of any lead, deal or activity; None for
        a store without any. Counted per column, so that an empty table's min (0 on
        ClickHouse for a column that cannot be NULL) is not taken for a date."""
        found = [(lo, hi) for count, lo, hi in self.fetch(DATA_SPAN) if count]
        if not found:
            return None
        return min(lo for lo, _hi in found), max(hi for _lo, hi in found)

    def rep_lookup(self) -> RepNames:
        """What a rep filter may name: people, rep names and source rep ids."""
        return people_named(self)

    def rep_teams(self) -> dict[str, str | None]:
        """Rep id -> team: every source's rep ids, and the person keys of reps matched
        across sources (plans name a rep either way)."""
        teams = {str(i): None if t is None else str(t)
                 for i, t in self.fetch("SELECT id, team FROM reps")}
        for person, team in self.fetch("SELECT DISTINCT person, team FROM rep_people"):
            teams.setdefault(str(person), None if team is None else str(team))
        return teams

    def teams(self) -> set[str]:
        return {str(t) for (t,) in self.fetch(
            "SELECT DISTINCT team FROM reps WHERE team IS NOT NULL")}

    def sources(self) -> set[str]:
        """Lead and account sources, and spend channels: what ``--where source=`` names."""
        return {str(s) for (s,) in self.fetch(
            "SELECT source FROM leads WHERE source IS NOT NULL UNION "
            "SELECT source FROM accounts WHERE source IS NOT NULL UNION "
            "SELECT channel FROM spend WHERE channel IS NOT NULL")}

    def slice_values(self, dim: str) -> set[str]:
        """What ``--where segment=``, ``product=`` or ``pipeline=`` may name: the values
        the facts hold (a product by its id, as the filter matches it)."""
        parts = {
            "segment": ("SELECT segment FROM leads WHERE segment IS NOT NULL UNION "
                        "SELECT segment FROM accounts WHERE segment IS NOT NULL"),
            "product": ("SELECT product_id FROM deals WHERE product_id IS NOT NULL UNION "
                        "SELECT product_id FROM revenue WHERE product_id IS NOT NULL UNION "
                        "SELECT id FROM products"),
            "pipeline": "SELECT DISTINCT pipeline FROM deals WHERE pipeline IS NOT NULL",
        }
        return {str(v) for (v,) in self.fetch(parts[dim])}

    def product_names(self) -> dict[str, str]:
        """Product id -> name, to suggest the id of a product typed by its name."""
        return {str(i): str(n) for i, n in self.fetch("SELECT id, name FROM products")}

    def custom_fields(self) -> set[str]:
        """Names of the custom fields any record or rep has (custom slices may use them)."""
        if self.dialect.name == "postgres":
            keys = ("jsonb_object_keys(custom)", "jsonb_typeof(custom) = 'object'")
        elif self.dialect.name == "clickhouse":
            keys = ("arrayJoin(JSONExtractKeys(assumeNotNull(custom)))",
                    "isValidJSON(assumeNotNull(custom))")
        else:
            keys = ("unnest(json_keys(custom))", "custom IS NOT NULL")
        parts = " UNION ".join(
            f"SELECT DISTINCT {keys[0]} AS k FROM \"{name}\" WHERE {keys[1]}"
            for name in CUSTOM_FIELD_TABLES)
        return {str(k) for (k,) in self.fetch(parts)}

    def currencies_without_rates(self, currency: str) -> dict[str, tuple[int, str]]:
        """Currency -> (records, their first day) of deals, revenue and spend in another
        currency than ``currency`` with no ``fx_rates`` row on or before their day.

        Their amounts would be missing from every money KPI: the caller refuses to
        answer rather than print a total that silently leaves them out.
        """
        # One query for the three tables: each is a round trip of its own (3 ms apiece
        # in every `saleskpi kpi` of money; issue 12). "No rate on or before the day" is
        # "no rate at all, or the first one later": ClickHouse answered the correlated
        # NOT EXISTS this replaces wrongly for a deal with no close time.
        foreign = ("t.currency IS NOT NULL AND trim(t.currency) <> '' "
                   "AND upper(t.currency) <> $rc")
        parts: list[str] = []
        for table, day in MONEY_TABLES:
            chosen = f"SELECT upper(t.currency) AS code, CAST({day} AS DATE) AS day"
            parts.append(f"{chosen} FROM \"{table}\" t WHERE {foreign} "
                         "AND upper(t.currency) NOT IN (SELECT code FROM first_rates)")
            parts.append(f"{chosen} FROM \"{table}\" t JOIN first_rates f "
                         f"ON f.code = upper(t.currency) WHERE {foreign} "
                         f"AND CAST({day} AS DATE) < f.first_day")
        rows = self.fetch(
            "WITH first_rates AS (SELECT upper(currency) AS code, min(date) AS first_day "
            "FROM fx_rates WHERE currency IS NOT NULL GROUP BY 1) "
            f"SELECT code, count(*), min(day) FROM ({' UNION ALL '.join(parts)}) AS lacking "
            "GROUP BY 1", {"rc": currency.upper()})
        return {str(code): (int(count), "" if first is None else str(first))
                for code, count, first in rows}

    def delete_ids(self, source: str, ids: dict[str, list[str]], *,
                   in_transaction: bool = False) -> dict[str, int]:
        """Delete rows of ``source`` by entity and id, in one transaction; rows deleted.

        ``in_transaction``: in the caller's transaction (a sync batch's journaled write).
        A deleted activity may have been its lead's or deal's first contact, so those
        are refreshed. (Deleted leads and deals keep their activities, and so their
        first contacts, as the query over activities would: nothing to refresh.)
        """
        from saleskpi.store import rollups

        deleted: dict[str, int] = {}
        kept = rollups.kept(self)
        with contextlib.nullcontext(self.con) if in_transaction else self.transaction() as con:
            for entity, chosen_ids in ids.items():
                key = ENTITIES[entity].key[0]
                chosen = f'datasource = ? AND "{key}" {self.dialect.any_of()}'
                if kept:
                    rollups.mark(con, kept, entity, f'SELECT * FROM "{entity}" WHERE {chosen}',
                                 [source, list(chosen_ids)])
                if entity == "activities":
                    for statement in self.dialect.temp_table_as(
                            "removed_activities", f"SELECT * FROM activities WHERE {chosen}"):
                        con.execute(statement, [source, list(chosen_ids)]
                                    if "?" in statement else None)
                rows = con.execute(f'DELETE FROM "{entity}" WHERE {chosen}',
                                   [source, list(chosen_ids)]).fetchall()
                deleted[entity] = int(rows[0][0]) if rows else 0
                if entity == "activities":
                    refresh_first_contacts(con, removed="removed_activities",
                                           dialect=self.dialect)
                    con.execute("DROP TABLE removed_activities")
            rollups.refresh(self, kept)
        return deleted

    def forget_source(self, source: str) -> None:
        """Delete every fact of ``source`` (inside the caller's transaction)."""
        from saleskpi.store import rollups

        for name in ENTITIES:
            self.con.execute(f'DELETE FROM "{name}" WHERE datasource = ?', [source])
        forget_first_contacts(self.con, source)
        rollups.forget_source(self, rollups.kept(self), source)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plain_value(value: Any) -> Any:
    """A frame's value as a database driver takes it: missing values (None, NaT, NA,
    NaN) as None, pandas timestamps and numpy scalars as Python's own."""
    import pandas as pd

    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) and not isinstance(value, str | bytes) else value
