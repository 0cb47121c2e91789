"""Choices a user makes on any page and keeps: the language, the KPIs shown, the threshold.

Each is a small POST form (CSRF-checked) that stores the choice through
``saleskpi.service.preferences`` and goes back to the page it came from.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import LANGUAGES
from saleskpi.service import preferences as prefs
from saleskpi.surfaces.web.deps import PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.filters import link
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.login import SESSION_LANG, safe_next

router = APIRouter(route_class=WebRoute)
MAX_FIELD = 2000


def _back(target: str, *, drop: tuple[str, ...] = ()) -> Response:
    """Back to ``target`` (a path of this site), without the parameters in ``drop``."""
    from starlette.datastructures import URL, QueryParams

    url = URL(safe_next(target))
    params = QueryParams([(k, v) for k, v in QueryParams(url.query).multi_items()
                          if k not in drop])
    return RedirectResponse(link(url.path, params), status_code=303)


@router.post("/preferences/language")
def choose_language(page: PageDep, csrf: Annotated[str, Form(max_length=200)] = "",
                    lang: Annotated[str, Form(max_length=20)] = "",
                    next_page: Annotated[str, Form(alias="next", max_length=MAX_FIELD)] = "/"
                    ) -> Response:
    page.check_csrf(csrf)
    try:
        prefs.set_language(page.service, page.user.user_id, lang)
    except InvalidQuery as exc:
        raise PageError(400, exc.message) from None
    return _back(next_page)


@router.get("/language/{lang}")
def visitor_language(request: Request, lang: str) -> Response:
    """Before signing in: the sign-in page in ``lang``, kept in the session."""
    if lang not in LANGUAGES:
        raise PageError(404, _("There is no such page, or it is not yours to see."))
    request.session[SESSION_LANG] = lang
    return _back(request.query_params.get("next", "/login")[:MAX_FIELD])


@router.post("/preferences/kpis")
def choose_kpis(page: PageDep, csrf: Annotated[str, Form(max_length=200)] = "",
                view: Annotated[str, Form(alias="page", max_length=40)] = "",
                kpi: Annotated[list[str] | None, Form()] = None,
                threshold: Annotated[str, Form(max_length=20)] = "",
                reset: Annotated[str, Form(max_length=10)] = "",
                next_page: Annotated[str, Form(alias="next", max_length=MAX_FIELD)] = "/"
                ) -> Response:
    """Keep the KPIs a page shows (and the comparison's threshold) for this user."""
    page.check_csrf(csrf)
    try:
        prefs.set_kpis(page.service, page.user.user_id, view, [] if reset else (kpi or []))
        if threshold.strip():
            number = _percent(threshold)
            if number is None:
                raise PageError(400, _("The threshold must be a percentage, e.g. 20."))
            prefs.set_threshold(page.service, page.user.user_id, number)
    except InvalidQuery as exc:
        raise PageError(400, exc.message) from None
    # The page's own ?kpi= would hide the choice just kept.
    return _back(next_page, drop=("kpi", "page"))


def _percent(text: str) -> float | None:
    try:
        return float(text.strip().rstrip("%").replace(",", ".")) / 100
    except ValueError:
        return None
