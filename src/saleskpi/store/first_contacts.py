"""Each lead's and each deal's first outbound contact, kept up to date at write time.

Lead response time, speed to lead and the deal cycle start at the first outbound
contact. Finding it means grouping every activity (32 million rows in a big
workspace: seconds per query), so the store keeps it in two tables instead,
written in the same transaction as the activities they come from. After every
commit, for ``kind`` in lead and deal::

    <kind>_first_contacts = SELECT datasource, <kind>_id, min(occurred_at)
                            FROM activities
                            WHERE <kind>_id IS NOT NULL AND <is a contact>
                            GROUP BY datasource, <kind>_id

Deleting a lead or a deal keeps its activities, and so its first contact: the
tables follow the activities only, exactly as the query they replace did.

Two tables rather than one with a kind column: the engine reads one kind at a
time (lead response time needs only leads), and each table is joined on its own
natural key with no filter; the kinds share all the code below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from saleskpi.domain.schema import CONTACT_TYPES, FIRST_CONTACT_TABLES

if TYPE_CHECKING:
    from saleskpi.store.dialects import Dialect

# What a relation handed to refresh_first_contacts must hold (the activities columns
# that decide a first contact).
ACTIVITY_COLUMNS = ("datasource", "lead_id", "deal_id", "type", "direction", "occurred_at")

FIRST_CONTACTS_DDL = [
    f"""CREATE TABLE IF NOT EXISTS {table} (
           datasource VARCHAR NOT NULL, {key} VARCHAR NOT NULL,
           first_contact_at TIMESTAMP NOT NULL)"""
    for key, table in FIRST_CONTACT_TABLES.items()
]
# On PostgreSQL each lead's or deal's row is kept by key: refreshes upsert it.
POSTGRES_FIRST_CONTACTS_DDL = [
    f"""CREATE TABLE IF NOT EXISTS {table} (
           datasource VARCHAR NOT NULL, {key} VARCHAR NOT NULL,
           first_contact_at TIMESTAMP NOT NULL, PRIMARY KEY (datasource, {key}))"""
    for key, table in FIRST_CONTACT_TABLES.items()
]


def _is_contact(key: str, of: str = "") -> str:
    """SQL: an activity (of table alias ``of``) that is the rep contacting its ``key``.

    Case-sensitive, as the per-query grouping it replaces was.
    """
    types = ", ".join(f"'{t}'" for t in CONTACT_TYPES)
    return (f'{of}"{key}" IS NOT NULL AND {of}"type" IN ({types}) '
            f"""AND ({of}"direction" IS NULL OR {of}"direction" <> 'in')""")


def _firsts(relation: str, key: str, name: str = "first_contact_at") -> str:
    # The alias: PostgreSQL before 16 wants one on a subquery.
    return (f'SELECT datasource, "{key}", min(occurred_at) AS {name} FROM {relation} AS rel '
            f'WHERE {_is_contact(key)} GROUP BY datasource, "{key}"')


def rebuild_first_contacts(con: Any) -> None:
    """Recompute both tables from every activity (a store made before they existed)."""
    for key, table in FIRST_CONTACT_TABLES.items():
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} {_firsts('activities', key)}")


def forget_first_contacts(con: Any, source: str) -> None:
    """After every activity of ``source`` was deleted: its first contacts go too."""
    for table in FIRST_CONTACT_TABLES.values():
        con.execute(f"DELETE FROM {table} WHERE datasource = ?", [source])


def refresh_first_contacts(con: Any, *, removed: str | None = None,
                           added: str | None = None, dialect: Dialect | None = None) -> None:
    """Bring both tables up to date after activities were replaced, deleted or added.

    Call it in the transaction of the write, after the write. ``removed`` and
    ``added`` are SQL relations (a table name, or a parenthesised query, made in
    code) with the ``ACTIVITY_COLUMNS`` of the rows that left ``activities``
    (deleted, or the stored version of a replaced row: read it before the
    delete) and of the rows that entered it. An activity that moves to another
    lead, or changes time, type or direction, touches its old lead and deal as a
    removed row and the new ones as an added row.

    Only the touched leads and deals are looked at, and only from these rows: a
    first contact can only move earlier by an added row, and can only be lost by
    removing the row that was it. Just in that last case (and no added row is as
    early) are the lead's or deal's remaining activities read again.

    ``dialect``: the store's (DuckDB's if none).
    """
    from saleskpi.store.dialects import DUCKDB

    nothing = f"(SELECT {', '.join(ACTIVITY_COLUMNS)} FROM activities WHERE false)"
    for key, table in FIRST_CONTACT_TABLES.items():
        _refresh(con, key, table, removed or nothing, added or nothing, dialect or DUCKDB)


def _refresh(con: Any, key: str, table: str, removed: str, added: str,
             dialect: Dialect) -> None:
    # Per touched key: the earliest contact that left, the earliest that came, and
    # what the table holds. The first contact is read again from activities only
    # where the stored one itself left and nothing added is as early: the next one
    # is among the lead's or deal's other activities. (A key the table does not know
    # but that lost a contact cannot happen while the table is right; it is read
    # again too, to be safe.)
    changes = f"""
        WITH gone AS ({_firsts(removed, key, "gone_at")}),
             came AS ({_firsts(added, key, "came_at")}),
             touched AS (
                 SELECT datasource, "{key}", gone_at, came_at, f.first_contact_at AS was_at
                 FROM gone FULL JOIN came USING (datasource, "{key}")
                 LEFT JOIN {table} f USING (datasource, "{key}"))
        SELECT *, CASE WHEN NOT reread THEN least(was_at, came_at) END AS first_contact_at
        FROM (SELECT *,
                     gone_at IS NOT NULL
                         AND (was_at IS NULL
                              OR (gone_at <= was_at AND (came_at IS NULL OR came_at > was_at)))
                         AS reread
              FROM touched) AS changes
    """
    for statement in dialect.temp_table_as("first_contact_changes", changes):
        con.execute(statement)
    rows = con.execute("SELECT count(*) FROM first_contact_changes WHERE reread").fetchall()
    if rows and rows[0][0]:
        # The one case that reads activities: every row's key is compared (seconds
        # on tens of millions of activities), so only for these few keys. A key
        # with no contact left keeps NULL.
        con.execute(f"""
            UPDATE first_contact_changes c SET first_contact_at = r.first_at
            FROM (SELECT a.datasource, a."{key}", min(a.occurred_at) AS first_at
                  FROM activities a JOIN first_contact_changes k
                      ON a.datasource = k.datasource AND a."{key}" = k."{key}" AND k.reread
                  WHERE {_is_contact(key, "a.")}
                  GROUP BY a.datasource, a."{key}") r
            WHERE c.datasource = r.datasource AND c."{key}" = r."{key}"
        """)
    if dialect.name == "postgres":
        # Upserted by key: only the leads and deals left with no contact are deleted.
        con.execute(f"""
            DELETE FROM {table} f USING first_contact_changes c
            WHERE f.datasource = c.datasource AND f."{key}" = c."{key}"
              AND c.first_contact_at IS NULL AND c.was_at IS NOT NULL""")
        con.execute(f"""
            INSERT INTO {table}
            SELECT datasource, "{key}", first_contact_at FROM first_contact_changes
            WHERE first_contact_at IS NOT NULL AND first_contact_at IS DISTINCT FROM was_at
            ON CONFLICT (datasource, "{key}")
            DO UPDATE SET first_contact_at = EXCLUDED.first_contact_at""")
    else:
        con.execute(f"""
            DELETE FROM {table} f USING first_contact_changes c
            WHERE f.datasource = c.datasource AND f."{key}" = c."{key}"
              AND c.first_contact_at IS DISTINCT FROM c.was_at""")
        con.execute(f"""
            INSERT INTO {table}
            SELECT datasource, "{key}", first_contact_at FROM first_contact_changes
            WHERE first_contact_at IS NOT NULL AND first_contact_at IS DISTINCT FROM was_at""")
    # Not in a finally: after a failed statement the transaction takes only ROLLBACK
    # (which drops the table too), and a DROP would hide the first error.
    con.execute("DROP TABLE first_contact_changes")
