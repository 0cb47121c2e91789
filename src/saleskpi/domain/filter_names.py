"""Filters that name reps and products by name: turned into the ids the data holds.

A head of sales types ``rep=Olena Kovalenko`` or ``product=Training day``; the facts
hold ``r7`` and ``P05``. An id typed is always the id; a product's name may be typed in
any letter case. A rep filter means people (a rep matched across sources is one
person): a person key is itself, a rep's name or any source's rep id the person it
is, and one that is several people's is asked about rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.query import EVERYTHING, Scope, Where


@dataclass(frozen=True)
class RepNames:
    """What a rep filter may name: people by key, and the rep names and source rep ids
    that stand for them."""

    names: dict[str, str] = field(default_factory=dict)  # person -> name
    teams: dict[str, frozenset[str]] = field(default_factory=dict)  # person -> their teams
    called: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name or id -> people
    by_id: dict[str, frozenset[str]] = field(default_factory=dict)  # source rep id -> people
    # (source, its rep id) -> the person that rep counts as in every KPI
    of_rep: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str | None, str | None, str, str, str | None]]
           ) -> RepNames:
        """From ``rep_people`` joined to ``reps``: (person, person's name, team, source,
        the source's rep id, that rep's name) per source rep."""
        names: dict[str, str] = {}
        teams: dict[str, set[str]] = {}
        called: dict[str, set[str]] = {}
        by_id: dict[str, set[str]] = {}
        of_rep: dict[tuple[str, str], str] = {}
        for person, person_name, team, source, rep_id, rep_name in rows:
            names.setdefault(person, person_name or person)
            teams.setdefault(person, set()).update([team] if team else [])
            by_id.setdefault(rep_id, set()).add(person)
            of_rep[source, rep_id] = person
            for text in (rep_id, rep_name):
                if text:
                    called.setdefault(text, set()).add(person)
        return cls(names, {p: frozenset(t) for p, t in teams.items()},
                   {text: tuple(sorted(people)) for text, people in called.items()},
                   {rep: frozenset(people) for rep, people in by_id.items()}, of_rep)

    def person(self, text: str, scope: Scope = EVERYTHING) -> str:
        """The person ``text`` names among those ``scope`` may see; ``text`` itself when it
        names no one (the filter then matches nothing). ``InvalidQuery`` (code
        ``ambiguous_rep``) when it is the name or id of several, naming them."""
        found = self.one_person(text, scope)
        if found is not None:
            return found
        several = self.people_called(text, scope)
        if several:
            raise self.ambiguous(text, several)
        return text

    def one_person(self, text: str, scope: Scope = EVERYTHING) -> str | None:
        """The person ``text`` names (as ``person``); None when it names no one, or
        several (pickers and links ask ``people_called`` to say which)."""
        if text in self.names:
            return text
        found = self.people_called(text, scope)
        return found[0] if len(found) == 1 else None

    def people_called(self, text: str, scope: Scope = EVERYTHING) -> list[str]:
        """The people ``scope`` may see whose rep name or source rep id is ``text``: more
        than one for namesakes not linked, or the same id in two sources."""
        return [p for p in self.called.get(text, ()) if self._visible(p, scope)]

    def ambiguous(self, text: str, people: list[str]) -> InvalidQuery:
        return InvalidQuery(_("{rep!r} is several reps: give one of {ids}", rep=text,
                              ids=", ".join(f"{p} ({self.names[p]})" for p in people)),
                            code="ambiguous_rep")

    def _visible(self, person: str, scope: Scope) -> bool:
        return (scope.rep_ids is None or person in scope.rep_ids) and (
            scope.teams is None or not scope.teams.isdisjoint(self.teams.get(person, ())))


def with_people(where: Where, names: RepNames, scope: Scope = EVERYTHING) -> Where:
    """``where`` with each rep filter's values as the people they name (``RepNames``)."""
    return tuple((dim, tuple(names.person(v, scope) for v in values)) if dim == "rep"
                 else (dim, values) for dim, values in where)


def product_ids_by_name(names: Mapping[str, str]) -> dict[str, str]:
    """Product id -> name as name (as written, and in any case) -> id, leaving out the
    names that are also some product's id."""
    found: dict[str, str] = {}
    for product, name in sorted(names.items()):
        for key in (name, name.casefold()):
            if key not in names:
                found.setdefault(key, product)
    return found


def with_ids(where: Where, by_name: Mapping[str, Mapping[str, str]]) -> Where:
    """``where`` with the names of ``by_name``'s dimensions replaced by their ids."""

    def resolved(dim: str, value: str) -> str:
        names = by_name[dim]
        if dim == "product":
            return names.get(value, names.get(value.casefold(), value))
        return names.get(value, value)

    return tuple((dim, tuple(resolved(dim, v) for v in values)) if dim in by_name
                 else (dim, values) for dim, values in where)
