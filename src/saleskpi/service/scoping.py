"""One company-wide computation serves every rep's and every team's scope.

A rep's scorecard is their row of the company's scorecard by rep; a team lead's is
their team's row of the scorecard by team. So instead of computing the same
question once per rep (458 scans of the same facts on a large company), the
service computes it once by rep (or by team), keeps it, and cuts each caller's
rows out of it. The caller still gets only rows of their own scope: the cut is
made inside the service, before anything is returned.

Where the cut would not equal the scoped computation, the service computes the
scope directly (``plan_cut`` returns None):

- shares: a share's whole is the caller's scope total, not the company's;
- scopes of several reps or several teams (and both at once), and other filters.

A team's question by rep is cut out of the company's by rep alone, by the team's
members (``Cut.of_members``), when that equals the team's rows: each member is in one
team only, and no KPI reads a fact whose team is its own (a forecast names its team,
spend has no rep). A rep's page and their team's average then share one company-wide
answer instead of two (by rep, and by rep and team).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from saleskpi.catalog.load import Catalog
from saleskpi.domain.query import EVERYTHING, KpiQuery, ResultRow, Scope, Scorecard, periods_between
from saleskpi.engine.scorecard import formula_names


@dataclass(frozen=True)
class Cut:
    """Which rows of a company-wide scorecard make up one caller's scorecard."""

    dim: str  # "rep" or "team"
    value: str
    rows_query: KpiQuery  # the question, by ``dim`` as well, over the whole company
    totals_query: KpiQuery  # its totals: by ``dim`` only
    added: bool  # ``dim`` was not asked for: drop it from the rows handed out
    # A team's rows picked by its members out of the company's rows by rep alone.
    members_only: bool = False

    def of_members(self) -> Cut:
        """This team's cut of a question by rep, from the company's by rep alone."""
        assert self.dim == "team" and self.added and "rep" in self.rows_query.by
        by = tuple(k for k in self.rows_query.by if k != "team")
        return replace(self, rows_query=replace(self.rows_query, by=by), added=False,
                       members_only=True)

    def listed(self, company: Scorecard, members: frozenset[str] | None) -> bool:
        """Whether ``company``'s grid lists this cut's rep or team at all."""
        if self.members_only:
            return any(r.keys.get("rep") in (members or ()) for r in company.rows)
        return any(r.keys.get(self.dim) == self.value for r in company.rows)

    def rows(self, company: Scorecard, members: frozenset[str] | None = None,
             *, added: bool | None = None) -> list[ResultRow]:
        """The caller's rows of ``company``, as the scoped computation would give them.

        The company-wide grid is completed with every slice value and period any
        rep has; the scoped one only with those of the scope's own data (and the
        asked range). ``members``: for a team's cut of a question by rep, the
        team's reps (the scoped grid lists those, the company's pairs the team
        with every rep).
        """
        drop = self.added if added is None else added
        if self.members_only:
            mine = [r for r in company.rows if r.keys.get("rep") in (members or ())]
        else:
            mine = [r for r in company.rows if r.keys.get(self.dim) == self.value
                    and (members is None or r.keys.get("rep") in members)]
        others = [k for k in company.query.by if k not in ("rep", "period")
                  and not (drop and k == self.dim)]
        with_data = [r for r in mine if r.from_data]
        combos = {tuple(r.keys.get(k) for k in others) for r in with_data}
        periods = {r.keys.get("period") for r in with_data}
        query = self.rows_query
        if query.period != "all" and query.start and query.end:
            periods |= {p.isoformat() for p in periods_between(query.start, query.end,
                                                               query.period)}
        picked = []
        for row in mine:
            if others and tuple(row.keys.get(k) for k in others) not in combos:
                continue
            if "period" in row.keys and row.keys["period"] not in periods:
                continue
            keys = {k: v for k, v in row.keys.items() if not (drop and k == self.dim)}
            # The rep's name labels a by-rep row only.
            labels = {} if drop and self.dim == "rep" else row.labels
            picked.append(ResultRow(keys, row.values, labels, row.from_data))
        return picked

    def totals(self, company_totals: Scorecard) -> list[ResultRow]:
        # The totals are by ``dim`` alone: picked by its value, members or not.
        return replace(self, members_only=False).rows(company_totals, added=True)


def plan_cut(catalog: Catalog, query: KpiQuery, scope: Scope) -> Cut | None:
    """How to answer ``query`` in ``scope`` from a company-wide scorecard, if it can be.

    A filter on one rep or one team (a head of sales opening a rep's page) is cut the
    same way as a scope of one rep or one team.
    """
    if scope.rep_ids is not None and scope.teams is None and len(scope.rep_ids) == 1:
        dim, (value,) = "rep", tuple(scope.rep_ids)
    elif scope.teams is not None and scope.rep_ids is None and len(scope.teams) == 1:
        dim, (value,) = "team", tuple(scope.teams)
    elif scope == EVERYTHING and len(query.where) == 1 and query.where[0][0] in ("rep", "team") \
            and len(query.where[0][1]) == 1:
        (dim, (value,)), = query.where
        query = replace(query, where=())
    else:
        return None
    if _has_share(catalog, query.kpis):
        return None
    added = dim not in query.by
    by = (*query.by, dim) if added else query.by
    return Cut(dim, value, replace(query, by=by), replace(query, by=(dim,)), added)


# Facts whose team is not their rep's: a forecast names its own team; spend has no rep.
OWN_TEAM_FACTS = frozenset({"forecasts", "spend"})


def members_cut(catalog: Catalog, cut: Cut, people: Iterable[tuple[str, str | None]]
                ) -> tuple[Cut, frozenset[str] | None]:
    """A team's cut of a question by rep, and the team's members (None: not such a cut).

    ``people``: (person, team) of every rep, a person once per team. When every member
    is in this team only and no KPI reads a fact with a team of its own, the cut is
    made from the company's scorecard by rep alone (``Cut.of_members``).
    """
    if cut.dim != "team" or "rep" not in cut.rows_query.by:
        return cut, None
    pairs = list(people)
    members = frozenset(person for person, team in pairs if team == cut.value)
    teams_of = Counter(person for person, _team in pairs if person in members)
    if cut.added and all(n == 1 for n in teams_of.values()) \
            and not _reads(catalog, cut.rows_query.kpis, OWN_TEAM_FACTS):
        cut = cut.of_members()
    return cut, members


def _reads(catalog: Catalog, keys: tuple[str, ...], facts: frozenset[str]) -> bool:
    return any(m.entity in facts for key in keys if key in catalog.kpis
               for m in catalog.measures(key))


def _has_share(catalog: Catalog, keys: tuple[str, ...]) -> bool:
    seen: set[str] = set()
    todo = list(keys)
    while todo:
        key = todo.pop()
        if key in seen or key not in catalog.kpis:
            continue
        seen.add(key)
        spec = catalog.kpis[key]
        if spec.kind == "share":
            return True
        if spec.kind == "derived" and spec.formula:
            todo.extend(formula_names(spec.formula))
        for part in (spec.numerator, spec.denominator):
            if isinstance(part, str):
                todo.append(part)
    return False
