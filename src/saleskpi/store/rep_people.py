"""The ``rep_people`` view: which rep records are one person, on DuckDB and PostgreSQL.

One person may be a rep in several sources (a company that moved CRM, or a CRM
plus spreadsheets). ``rep_links`` holds the matches a user made by hand; reps with
the same e-mail in different sources are matched automatically. The person key is
the first member's id (or "source:id" where ids of different people clash), so a
single-source workspace keeps its plain rep ids. ClickHouse spells the same view
in its own words (``store/clickhouse.py``).
"""

from __future__ import annotations

from saleskpi.store.dialects import Dialect


def _first(column: str, dialect: Dialect) -> str:
    """A group's value of ``column`` for its first member, the least (source, id).

    Compared by code point, as DuckDB orders text; PostgreSQL's default collation
    would not, hence "C".
    """
    if dialect.name == "postgres":
        return f'(array_agg({column} ORDER BY datasource COLLATE "C", id COLLATE "C"))[1]'
    return f"arg_min({column}, datasource || chr(0) || id)"


def rep_people_ddl(dialect: Dialect) -> list[str]:
    """The statements that make ``rep_links`` and (again) the ``rep_people`` view."""
    return [
        """CREATE TABLE IF NOT EXISTS rep_links (
               datasource VARCHAR NOT NULL, rep_id VARCHAR NOT NULL,
               person_group VARCHAR NOT NULL)""",
        f"""CREATE OR REPLACE VIEW rep_people AS
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
            SELECT grp, {_first("datasource", dialect)} AS first_source,
                   {_first("id", dialect)} AS first_id,
                   {_first("name", dialect)} AS first_name,
                   count(*) AS members
            FROM keyed GROUP BY grp
        ),
        clashes AS (SELECT first_id, count(*) AS people FROM firsts GROUP BY first_id)
        SELECT k.datasource, k.id AS rep_id, k.team,
               CASE WHEN c.people > 1 THEN f.first_source || ':' || f.first_id
                    ELSE f.first_id END AS person,
               f.first_name AS person_name, f.members
        FROM keyed k JOIN firsts f USING (grp) JOIN clashes c USING (first_id)""",
    ]
