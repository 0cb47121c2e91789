"""The analytical store: one DuckDB file with a table per canonical entity."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from saleskpi.domain.errors import Busy
from saleskpi.domain.files import private_dir, private_file
from saleskpi.domain.i18n import _
from saleskpi.domain.schema import ENTITIES, FIRST_CONTACT_TABLES, SQL_TYPES, Entity
from saleskpi.store.first_contacts import (
    FIRST_CONTACTS_DDL,
    forget_first_contacts,
    rebuild_first_contacts,
    refresh_first_contacts,
)

if TYPE_CHECKING:
    from ibis.backends.duckdb import Backend as IbisDuckDB

# One person may be a rep in several sources (a company that moved CRM, or a CRM
# plus spreadsheets). rep_links holds the matches a user made by hand; reps with
# the same e-mail in different sources are matched automatically. The person
# key is the first member's id (or "source:id" where ids of different people
# clash), so a single-source workspace keeps its plain rep ids.
REP_PEOPLE_DDL = [
    """CREATE TABLE IF NOT EXISTS rep_links (
           datasource VARCHAR NOT NULL, rep_id VARCHAR NOT NULL, person_group VARCHAR NOT NULL)""",
    """CREATE OR REPLACE VIEW rep_people AS
    WITH email_ok AS (
        -- e-mail matching only across sources: two reps of one source sharing an
        -- address (a team mailbox) stay two people
        SELECT lower(trim(email)) AS email
        FROM reps WHERE email IS NOT NULL AND trim(email) <> ''
        GROUP BY 1 HAVING count(*) = count(DISTINCT datasource)
    ),
    keyed AS (
        SELECT r.datasource, r.id, r.name, r.team,
               coalesce('link:' || l.person_group,
                        CASE WHEN e.email IS NOT NULL THEN 'email:' || e.email END,
                        'id:' || r.datasource || ':' || r.id) AS grp
        FROM reps r
        LEFT JOIN rep_links l ON l.datasource = r.datasource AND l.rep_id = r.id
        LEFT JOIN email_ok e ON e.email = lower(trim(r.email))
    ),
    firsts AS (
        SELECT grp, arg_min(datasource, datasource || chr(0) || id) AS first_source,
               arg_min(id, datasource || chr(0) || id) AS first_id,
               arg_min(name, datasource || chr(0) || id) AS first_name,
               count(*) AS members
        FROM keyed GROUP BY grp
    ),
    clashes AS (SELECT first_id, count(*) AS people FROM firsts GROUP BY first_id)
    SELECT k.datasource, k.id AS rep_id, k.team,
           CASE WHEN c.people > 1 THEN f.first_source || ':' || f.first_id ELSE f.first_id END
               AS person,
           f.first_name AS person_name, f.members
    FROM keyed k JOIN firsts f USING (grp) JOIN clashes c USING (first_id)""",
]


# The store's schema version, in saleskpi_meta: an older store is upgraded once, when
# opened (read-only opens included).
#   (no saleskpi_meta)  made before versions: entity tables and the rep_people view
#   2                   lead_first_contacts and deal_first_contacts, kept at write time
SCHEMA_VERSION = 2
META_DDL = """CREATE TABLE IF NOT EXISTS saleskpi_meta (
    key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"""
# An upgrade computes first contacts from every activity: 17-20 s for 32 million
# activities on a busy 2-core machine; other requests wait for it, not fail.
UPGRADE_WAIT_SECONDS = 300.0
# What a current store has; a store missing any of them is upgraded.
CURRENT_OBJECTS = frozenset({"reps", "rep_people", "saleskpi_meta",
                             *FIRST_CONTACT_TABLES.values()})


class StoreBusy(Busy):
    """Another process holds the DuckDB file (DuckDB allows one writer)."""
    default_code = "store_busy"


def table_ddl(entity: Entity) -> str:
    columns = [f'"{c.name}" {SQL_TYPES[c.type]}' for c in entity.columns]
    columns += ['"datasource" VARCHAR NOT NULL', '"custom" JSON']
    return f'CREATE TABLE IF NOT EXISTS "{entity.name}" ({", ".join(columns)})'


class AnalyticsStore:
    """A DuckDB file holding the facts; timestamps are UTC.

    DuckDB allows one read-write process per file, so a store is opened for the
    length of one command and closed after it.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        private_dir(path.parent)
        if read_only and not path.exists():
            read_only = False  # nothing imported yet: create an empty store
        try:
            self.con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise StoreBusy(_(
                "{path} is in use by another saleskpi process (the server, or an import). "
                "Import through the dashboard or the API while the server runs, or stop it "
                "first.", path=path)) from None
        if not read_only:
            private_file(path)
        # Sessions are UTC so that TIMESTAMP -> TIMESTAMPTZ casts are identity.
        self.con.execute("SET TimeZone = 'UTC'")
        present = self._schema_objects()
        if read_only and "reps" not in present:
            self.con.close()
            raise StoreBusy(_("{path} holds no saleskpi data yet: run 'saleskpi import' or "
                              "'saleskpi demo' first.", path=path))
        if not self._is_current(present):
            if read_only:
                # A workspace made by an older saleskpi: upgrade it once read-write,
                # then read as asked.
                self.con.close()
                AnalyticsStore(path).close()
                self.con = duckdb.connect(str(path), read_only=True)
                self.con.execute("SET TimeZone = 'UTC'")
            else:
                self._upgrade()
        self._ibis: IbisDuckDB | None = None

    def _schema_objects(self) -> set[str]:
        """The tables and views this store has of those the schema version needs."""
        names = ", ".join(f"'{n}'" for n in CURRENT_OBJECTS)
        return {name for (name,) in self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_catalog = current_database() AND table_schema = 'main' "
            f"AND table_name IN ({names})").fetchall()}

    def _is_current(self, present: set[str]) -> bool:
        """Whether the store has this version's schema: then nothing is written on open.

        A store whose meta says current but that misses a table or view (dropped by
        hand) is upgraded again, which rebuilds what is missing.
        """
        if not CURRENT_OBJECTS.issubset(present):
            return False
        rows = self.con.execute(
            "SELECT value FROM saleskpi_meta WHERE key = 'schema_version'").fetchall()
        # A newer saleskpi's store counts as current: never downgraded.
        return bool(rows) and int(rows[0][0]) >= SCHEMA_VERSION

    def _upgrade(self) -> None:
        """Create what is missing and fill derived tables, in one transaction.

        Only on a new store or one made by an older saleskpi: DDL on every open
        rewrote the file (so caches keyed by its modification time never hit) and
        made concurrent opens conflict.
        """
        try:
            with self.transaction() as con:
                for entity in ENTITIES.values():
                    con.execute(table_ddl(entity))
                for statement in [*REP_PEOPLE_DDL, *FIRST_CONTACTS_DDL]:
                    con.execute(statement)
                # Before version 2 nothing kept first contacts: compute them from all
                # activities, once (seconds on tens of millions of activities).
                rebuild_first_contacts(con)
                con.execute(META_DDL)
                con.execute("INSERT OR REPLACE INTO saleskpi_meta VALUES ('schema_version', ?)",
                            [str(SCHEMA_VERSION)])
        except duckdb.TransactionException:
            # Another connection of this process (the server's requests) is upgrading
            # it at the same time: wait for that upgrade rather than fail the request.
            deadline = time.monotonic() + UPGRADE_WAIT_SECONDS
            while not self._is_current(self._schema_objects()):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def ibis(self) -> IbisDuckDB:
        """Ibis on this connection, made (and Ibis imported) only when a query is compiled."""
        if self._ibis is None:
            import ibis

            self._ibis = ibis.duckdb.from_connection(self.con)
        return self._ibis

    def sources_of_reps(self) -> int:
        rows = self.con.execute("SELECT count(DISTINCT datasource) FROM reps").fetchall()
        return int(rows[0][0]) if rows else 0

    def count(self, table: str) -> int:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and then
        # refuses the next statement on the connection.
        rows = self.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()
        return int(rows[0][0]) if rows else 0

    def fetch(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[Any]:
        return self.con.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
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
        """Source rep id -> name (targets and plans name reps by their source id)."""
        return {str(i): str(n) for i, n in self.fetch("SELECT id, name FROM reps")}

    def people_by_rep_name(self) -> dict[str, str]:
        """Rep name -> person, so that users may filter by a rep's name."""
        return {str(name): str(person) for person, name in self.fetch(
            "SELECT DISTINCT person, name FROM rep_people JOIN reps "
            "ON reps.id = rep_people.rep_id AND reps.datasource = rep_people.datasource")}

    def find_rep(self, text: str) -> tuple[str, str, str | None] | None:
        """(id, name, team) of the rep whose id, else whose name, is ``text``."""
        rows = self.fetch(
            "SELECT id, name, team FROM reps WHERE id = $text OR name = $text "
            "ORDER BY id = $text DESC, id LIMIT 1", {"text": text})
        if not rows:
            return None
        rep_id, name, team = rows[0]
        return str(rep_id), str(name), None if team is None else str(team)

    def teams(self) -> set[str]:
        return {str(t) for (t,) in self.fetch(
            "SELECT DISTINCT team FROM reps WHERE team IS NOT NULL")}

    def delete_ids(self, source: str, ids: dict[str, list[str]]) -> dict[str, int]:
        """Delete rows of ``source`` by entity and id, in one transaction; rows deleted.

        A deleted activity may have been its lead's or deal's first contact, so those
        are refreshed. (Deleted leads and deals keep their activities, and so their
        first contacts, as the query over activities would: nothing to refresh.)
        """
        deleted: dict[str, int] = {}
        with self.transaction() as con:
            for entity, chosen_ids in ids.items():
                key = ENTITIES[entity].key[0]
                chosen = f'datasource = ? AND "{key}" IN (SELECT unnest(?::VARCHAR[]))'
                if entity == "activities":
                    con.execute("CREATE OR REPLACE TEMP TABLE removed_activities AS "
                                f"SELECT * FROM activities WHERE {chosen}",
                                [source, list(chosen_ids)])
                rows = con.execute(f'DELETE FROM "{entity}" WHERE {chosen}',
                                   [source, list(chosen_ids)]).fetchall()
                deleted[entity] = int(rows[0][0]) if rows else 0
                if entity == "activities":
                    refresh_first_contacts(con, removed="removed_activities")
                    con.execute("DROP TABLE removed_activities")
        return deleted

    def forget_source(self, source: str) -> None:
        """Delete every fact of ``source`` (inside the caller's transaction)."""
        for name in ENTITIES:
            self.con.execute(f'DELETE FROM "{name}" WHERE datasource = ?', [source])
        forget_first_contacts(self.con, source)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> AnalyticsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
