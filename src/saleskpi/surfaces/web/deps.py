"""The page a handler renders: who asks, in which language, with which filters."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from saleskpi.domain.errors import Conflict, InvalidQuery
from saleskpi.domain.query import KpiQuery, Scorecard
from saleskpi.service.auth import Principal
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import today as company_today
from saleskpi.service.preferences import Preferences, preferences
from saleskpi.service.query_checks import check_question
from saleskpi.surfaces.http.deps import ServiceDep, check_csrf, csrf_token, optional_user
from saleskpi.surfaces.web.errors import LoginRequired, PageError
from saleskpi.surfaces.web.filters import (
    FILTER_KEYS,
    Filters,
    as_people,
    link,
    parse_filters,
    quick_ranges,
    within,
)
from saleskpi.surfaces.web.formatting import Formatter
from saleskpi.surfaces.web.i18n import _, use_language
from saleskpi.surfaces.web.pdf import pdf_response
from saleskpi.surfaces.web.render import render
from saleskpi.surfaces.web.tables import (
    EXPORT_FORMATS,
    PAGE_PARAM,
    DataTable,
    Pager,
    download,
    find_table,
    page_value,
    paginate,
)
from saleskpi.views.base import outside_the_data


@dataclass
class Page:
    request: Request
    service: SalesKpiService
    user: Principal
    lang: str
    fmt: Formatter
    filters: Filters
    csrf: str

    @property
    def currency(self) -> str:
        return self.service.settings.currency

    def today(self) -> dt.date:
        """Today in the company's time zone."""
        return company_today(self.service)

    def link(self, path: str | None = None, **overrides: Any) -> str:
        """This page (or ``path``) with the current filters, some replaced."""
        return link(path or self.request.url.path, self.request.query_params, **overrides)

    def filter_link(self, path: str, **overrides: Any) -> str:
        """``path`` with only the filters of this view: for the menu and quick ranges."""
        params = [(k, v) for k, v in self.request.query_params.multi_items()
                  if k in FILTER_KEYS]
        return link(path, QueryParams(params), **overrides)

    def quick_ranges(self) -> list[tuple[str, str]]:
        return [(label, self.link(**{"from": first.isoformat() if first else None,
                                      "to": last.isoformat() if last else None,
                                      "range": None if first else "all"}))
                for label, first, last in quick_ranges(self.today())]

    def outside_the_data(self) -> tuple[dt.date, dt.date, str] | None:
        """The data's first and last day, and a link to them, when this view's range
        holds none of it (a past years' export opened on this month)."""
        span = outside_the_data(self.service, self.filters.start, self.filters.end)
        if span is None:
            return None
        first, last = span
        return first, last, self.link(**{"from": first.isoformat(), "to": last.isoformat(),
                                         "range": None})

    def pager(self, total: int, size: int, param: str = PAGE_PARAM) -> Pager:
        """The page of a long table this view asks for (``?page=``), with links to the others."""
        return paginate(total, size, self.request.query_params.get(param),
                        lambda n: self.link(**{param: page_value(n)}), self.fmt)

    def rows_link(self, kpi: str, *, rep: str | None = None, period: str | None = None,
                  grain: str | None = None, start: dt.date | None = None,
                  end: dt.date | None = None) -> str:
        """/rows: the records behind one figure of this view (its filters, a rep, a period)."""
        f = self.filters
        first, last = start or f.start, end or f.end
        params: dict[str, str] = {"kpi": kpi}
        if first:
            params["from"] = first.isoformat()
        if last:
            params["to"] = last.isoformat()
        params |= dict(f.slices)
        if rep:
            params["rep"] = rep
        if period and grain and grain != "all":
            params |= {"period": grain, "period_key": period}
        return link("/rows", params)

    def kpi_name(self, key: str) -> str:
        spec = self.service.catalog.kpis.get(key)
        return spec.display_name(self.lang) if spec else key

    def scorecard(self, query: KpiQuery, *, totals: bool = True) -> Scorecard:
        """``service.scorecard`` in the caller's scope; a bad query is a 400 page."""
        try:
            check_question(self.service, query, self.user.scope)
            return self.service.scorecard(query, self.user.scope, totals=totals)
        except (InvalidQuery, Conflict) as exc:
            raise PageError(400 if isinstance(exc, InvalidQuery) else 409, str(exc)) from None

    @cached_property
    def prefs(self) -> Preferences:
        """What the user chose and wants kept (KPIs shown, the comparison's threshold)."""
        return preferences(self.service, self.user.user_id)

    def here(self) -> str:
        """This page's address (path and query), to come back to after a form."""
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    @cached_property
    def reps(self) -> list[tuple[str, str]]:
        """(id, name) of the reps the caller may see, for the filter bar."""
        return [(r.rep, r.name) for r in self.service.visible_reps(self.user.scope)]

    @cached_property
    def rep_choices(self) -> list[tuple[str, str]]:
        """(id, label) of the reps the caller may see, for pickers: two people with one
        name (not linked) are told apart by their ids."""
        named = Counter(name for _rep, name in self.reps)
        return [(rep, f"{name} ({rep})" if named[name] > 1 else name)
                for rep, name in self.reps]

    @cached_property
    def teams(self) -> list[str]:
        teams = {r.team for r in self.service.visible_reps(self.user.scope)}
        if self.user.role == "team_lead" and self.user.team:
            teams.add(self.user.team)
        return sorted(t for t in teams if t)

    def check_csrf(self, sent: str | None) -> None:
        check_csrf(self.request, sent)

    def render(self, template: str, *, tables: Sequence[DataTable] = (), status: int = 200,
               **values: Any) -> Response:
        """The page; one of its tables as CSV, XLSX or PDF with ?export=ID&format=; all its
        tables as one PDF with ?format=pdf."""
        wanted = self.request.query_params.get("export")
        fmt = self.request.query_params.get("format", "csv" if wanted else "")
        if wanted:
            table = find_table(tables, wanted)
            if table is None or fmt not in (*EXPORT_FORMATS, "pdf"):
                raise PageError(404, _("There is no such download on this page."))
            if fmt == "pdf":
                return pdf_response(str(values.get("title") or table.title), self._covers(),
                                    [table], table.id)
            return download(table, "xlsx" if fmt == "xlsx" else "csv")
        if fmt == "pdf" and tables:
            name = self.request.url.path.strip("/").replace("/", "-") or "overview"
            return pdf_response(str(values.get("title") or "saleskpi"), self._covers(),
                                tables, f"saleskpi-{name}")
        return render(template, status=status, page=self, user=self.user, **values)

    def _covers(self) -> list[str]:
        """What a PDF of this page covers: its days and filters."""
        f = self.filters
        if f.start and f.end:
            days = _("{start} – {end}", start=self.fmt.date(f.start), end=self.fmt.date(f.end))
        else:
            days = _("all time")
        lines = [_("Days: {days}.", days=days)]
        if f.slices:
            lines.append(_("Filters: {filters}.", filters=", ".join(
                f"{dim} = {value}" for dim, value in f.slices)))
        lines.append(_("For {user}.", user=self.user.username))
        return lines


async def page(request: Request, svc: ServiceDep,
               principal: Annotated[Principal | None, Depends(optional_user)]) -> Page:
    # async: the language is set in the request's own context, which the (threaded)
    # handler then inherits.
    if principal is None:
        raise LoginRequired()
    lang = use_language(principal.lang)
    filters = parse_filters(request.query_params, company_today(svc))
    scope = principal.scope
    if any(dim == "rep" for dim, _values in filters.slices):
        filters = as_people(filters, lambda text: svc.person_key(text, scope))
    named = any(dim in ("team", "rep") for dim, _values in filters.slices)
    if named and (scope.rep_ids is not None or scope.teams is not None):
        visible = svc.visible_reps(scope)
        filters = within(filters, {r.team for r in visible if r.team},
                         {r.rep for r in visible} | {r.name for r in visible})
    return Page(request, svc, principal, lang, Formatter(lang, svc.settings.currency),
                filters, csrf_token(request))


PageDep = Annotated[Page, Depends(page)]


async def manager_page(current: PageDep) -> Page:
    if not current.user.can_manage:
        raise PageError(403, _("Only an admin or the head of sales may open this page."))
    return current


ManagerPageDep = Annotated[Page, Depends(manager_page)]
