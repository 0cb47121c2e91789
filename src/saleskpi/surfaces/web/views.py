"""Building blocks shared by the pages: KPI headers, plan lookups, rep links."""

from __future__ import annotations

import datetime as dt

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.query import Scorecard
from saleskpi.domain.targets import Level
from saleskpi.service.attainment import PlanLine
from saleskpi.service.planner import plan_vs_actual, whose
from saleskpi.surfaces.web.deps import Page
from saleskpi.surfaces.web.tables import Column, kpi_column


def rep_href(rep: str | None) -> str | None:
    from urllib.parse import quote

    return f"/reps/{quote(rep, safe='')}" if rep else None


def kpi_columns(page: Page, card: Scorecard, kpis: tuple[str, ...] | list[str]) -> list[Column]:
    """One column per KPI, exporting a rate's counts and a proportion's interval."""
    columns = []
    for key in kpis:
        rows = [*card.rows, *card.totals]
        ratio = any(r.values[key].is_ratio for r in rows)
        interval = any(r.values[key].ci_low is not None for r in rows)
        columns.append(kpi_column(key, page.kpi_name(key), card.units[key], ratio=ratio,
                                  interval=interval))
    return columns


def plan_at(page: Page) -> dt.date:
    """The day plans are measured on: the end of the chosen range, else today."""
    today = page.today()
    end = page.filters.end
    return min(end, today) if end else today


def view_level(page: Page) -> tuple[Level, str | None]:
    """Whose targets a view shows: the rep's, the team's, or the company's."""
    user, filters = page.user, page.filters
    if user.role == "rep":
        return "rep", user.rep_id
    if filters.single("rep"):
        return "rep", filters.single("rep")
    if filters.single("team"):
        return "team", filters.single("team")
    if user.role == "team_lead":
        return "team", user.team
    return "company", None


def plans_by_kpi(page: Page, at: dt.date, level: Level, who: str | None) -> dict[str, PlanLine]:
    """The target of each KPI for one rep, team or the company on ``at``, with its actual.

    With several targets for one KPI (a month's and a quarter's) the one furthest
    behind is shown, as plan_vs_actual sorts them.
    """
    try:
        lines = plan_vs_actual(page.service, at, level=level, scope=page.user.scope, who=who)
    except InvalidQuery:
        return {}
    chosen: dict[str, PlanLine] = {}
    for line in lines:
        if whose(line.target) == who:
            chosen.setdefault(line.target.kpi, line)
    return chosen
