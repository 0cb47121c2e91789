"""Reps across sources: who is the same person, and who only might be.

Matching rules (the view ``rep_people``, store/rep_people.py): a manual link first, then
the same e-mail in different sources, else each rep is their own person. This
module lists the result, reports likely duplicates the rules did not merge
(same name, different or missing e-mails), and edits the manual links.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.i18n import _
from saleskpi.store.facts import FactStore


@dataclass
class Person:
    person: str
    name: str
    members: list[dict[str, str | None]] = field(default_factory=list)
    matched_by: str = "id"  # id, email or link


@dataclass
class PeopleReport:
    people: list[Person]
    possible_duplicates: list[list[str]]  # groups of person keys with the same name

    def to_dict(self) -> dict[str, object]:
        return {"people": [asdict(p) for p in self.people],
                "possible_duplicates": self.possible_duplicates}


class LinkError(SalesKpiError):
    """Reps that cannot be linked (unknown SOURCE:ID, one rep only)."""

    default_code = "bad_link"


def people(store: FactStore) -> PeopleReport:
    rows = store.fetch(
        """SELECT p.person, p.person_name, r.datasource, r.id, r.name, r.email,
                  l.person_group IS NOT NULL AS linked
           FROM rep_people p
           JOIN reps r ON r.id = p.rep_id AND r.datasource = p.datasource
           LEFT JOIN rep_links l ON l.datasource = r.datasource AND l.rep_id = r.id
           ORDER BY p.person, r.datasource, r.id""")
    by_key: dict[str, Person] = {}
    for person, person_name, source, rep_id, name, email, linked in rows:
        entry = by_key.setdefault(person, Person(person, person_name))
        entry.members.append({"source": source, "id": rep_id, "name": name, "email": email})
        if linked:
            entry.matched_by = "link"
        elif len(entry.members) > 1 and entry.matched_by != "link":
            entry.matched_by = "email"
    names: dict[str, list[str]] = {}
    for entry in by_key.values():
        names.setdefault(" ".join(entry.name.lower().split()), []).append(entry.person)
    duplicates = [sorted(keys) for keys in names.values() if len(keys) > 1]
    return PeopleReport(list(by_key.values()), duplicates)


def _parse(ref: str, store: FactStore) -> tuple[str, str]:
    source, sep, rep_id = ref.partition(":")
    if not sep or not source or not rep_id:
        raise LinkError(_("{ref!r}: write a rep as SOURCE:ID, e.g. amocrm:123", ref=ref))
    if not store.fetch("SELECT 1 FROM reps WHERE datasource = ? AND id = ?", [source, rep_id]):
        raise LinkError(_("{ref!r}: no rep with id {rep_id!r} in source {source!r}",
                          ref=ref, rep_id=rep_id, source=source))
    return source, rep_id


def link(store: FactStore, refs: list[str]) -> str:
    """Make the reps ``refs`` (SOURCE:ID) one person; returns the link group."""
    if len(refs) < 2:
        raise LinkError(_("give at least two reps to link"))
    pairs = [_parse(ref, store) for ref in refs]
    group = uuid.uuid4().hex[:12]
    with store.transaction() as con:
        for source, rep_id in pairs:
            con.execute("DELETE FROM rep_links WHERE datasource = ? AND rep_id = ?",
                        [source, rep_id])
            con.execute("INSERT INTO rep_links VALUES (?, ?, ?)", [source, rep_id, group])
    return group


def unlink(store: FactStore, refs: list[str]) -> None:
    pairs = [_parse(ref, store) for ref in refs]
    with store.transaction() as con:
        for source, rep_id in pairs:
            con.execute("DELETE FROM rep_links WHERE datasource = ? AND rep_id = ?",
                        [source, rep_id])
