"""Reps as people: a rep matched across sources is one person (the ``rep_people`` view).

Filters and by-rep rows name people, never a source's rep id: a head of sales asking
for "Anna Lee" after moving CRMs means both her old and her new deals. The scorecard
and the funnel read the same lookups from here.
"""

from __future__ import annotations

from typing import Any

from saleskpi.domain.filter_names import RepNames
from saleskpi.engine.database import Database

Where = tuple[tuple[str, tuple[str, ...]], ...]

REP_NAMES = (
    "SELECT rep_people.person, rep_people.person_name, rep_people.team, "
    "rep_people.datasource, rep_people.rep_id, reps.name FROM rep_people JOIN reps "
    "ON reps.id = rep_people.rep_id AND reps.datasource = rep_people.datasource")


def rep_names(store: Database) -> RepNames:
    """What a rep filter may name (``RepNames``): people, rep names, source rep ids."""
    return RepNames.of((str(p), None if n is None else str(n), None if t is None else str(t),
                        str(source), str(r), None if name is None else str(name))
                       for p, n, t, source, r, name in store.fetch(REP_NAMES))


def people_in_filter(store: Database, where: Where) -> dict[str, str]:
    """{person: name} of the people the rep and team filters of ``where`` let through,
    in order of their keys (a filter with no values lets no one through)."""
    sql, params = filtered_people("person, person_name", where)
    return {str(p): str(n if n is not None else p)
            for p, n in store.fetch(sql + " ORDER BY person", params)}


def filtered_people(columns: str, where: Where) -> tuple[str, list[Any]]:
    """SQL (and its parameters) reading the distinct ``columns`` of ``rep_people`` for
    the rows the rep and team filters of ``where`` let through."""
    sql = f"SELECT DISTINCT {columns} FROM rep_people WHERE true"
    params: list[Any] = []
    for dim, values in where:
        column = {"rep": "person", "team": "team"}.get(dim)
        if column and values:
            sql += f" AND {column} IN ({', '.join('?' for _v in values)})"
            params.extend(values)
        elif column:
            sql += " AND false"
    return sql, params
