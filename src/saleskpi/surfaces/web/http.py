"""How web routes answer: HTML error pages, sign-in redirects and security headers.

``WebRoute`` wraps every page handler (its dependencies included), so an error
raised anywhere on the way, even by the API's dependencies, becomes a page in the
reader's language instead of the API's JSON, and every response carries the
security headers. That includes unexpected exceptions: they are logged with their
traceback and answered with a 500 page; left to Starlette, they got the API's JSON
and uvicorn then closed the keep-alive connection, failing the browser's next
request on it too (docs/web-latency.md).

Error pages have the site's menu when the reader is signed in (found again from
the session: the failing handler's own ``Page`` is out of reach here), and are
plain otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from saleskpi.domain.errors import HTTP_STATUS, SalesKpiError
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import today as company_today
from saleskpi.surfaces.http.deps import csrf_token, optional_user
from saleskpi.surfaces.http.errors import retry_after
from saleskpi.surfaces.web.deps import Page
from saleskpi.surfaces.web.errors import LoginRequired, PageError
from saleskpi.surfaces.web.filters import parse_filters
from saleskpi.surfaces.web.formatting import Formatter
from saleskpi.surfaces.web.i18n import _, best_match, use_language
from saleskpi.surfaces.web.render import render

log = logging.getLogger("saleskpi.surfaces.web")
STATIC_DIR = Path(__file__).parent / "static"
FAVICON = STATIC_DIR / "favicon.svg"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def secure(response: Response, *, cache: str = "no-store") -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", cache)
    return response


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=302)


def error_page(status: int, message: str, page: Page | None = None) -> Response:
    """The error page: with the site's menu for ``page``'s user, plain without one."""
    titles = {400: _("The request cannot be shown"), 401: _("Sign in again"),
              403: _("Not allowed"), 404: _("Not found"), 429: _("Too many attempts"),
              500: _("Something went wrong")}
    title = titles.get(status, _("Error"))
    if page is not None:
        try:
            return render("error.html", status=status, title=title, message=message,
                          page=page, user=page.user)
        except Exception:
            # The menu is a nicety: whatever broke it must not break the answer.
            log.exception("the error page's menu failed; answering with the plain page")
    return render("error.html", status=status, title=title, message=message)


async def _reader(request: Request) -> Page | None:
    """The signed-in reader, for the error page's menu and language; None if nobody.

    Also sets the reader's language: an error can come before the page's own
    dependency set it (e.g. a malformed request).
    """
    svc: SalesKpiService = request.app.state.service
    try:
        # optional_user reads the user store: a thread, as FastAPI runs it for pages.
        principal = await run_in_threadpool(optional_user, request, svc)
    except HTTPException:
        principal = None  # an API token that is not valid: nobody
    except Exception:
        # The user store may be what failed in the first place: answer all the same.
        log.exception("could not find the signed-in user for an error page")
        principal = None
    if principal is None:
        use_language(best_match(request.headers.get("accept-language", ""),
                                svc.settings.lang or None))
        return None
    lang = use_language(principal.lang)
    return Page(request, svc, principal, lang, Formatter(lang, svc.settings.currency),
                parse_filters(request.query_params, company_today(svc)), csrf_token(request))


def _http_message(exc: HTTPException) -> str:
    if exc.status_code == 403 and isinstance(exc.detail, dict) and \
            exc.detail.get("error") == "csrf":
        return _("The form expired or did not come from this site. Reload the page and "
                 "try again.")
    if exc.status_code == 401:
        return _("The API token is not valid.")
    if exc.status_code == 404:
        return _("There is no such page, or it is not yours to see.")
    return _("This request cannot be completed.")


def _status_and_message(exc: Exception) -> tuple[int, str]:
    """What the error page says about ``exc``, in the current language."""
    if isinstance(exc, PageError):
        return exc.status, exc.message
    if isinstance(exc, SalesKpiError):
        # The error family's one translation for pages: its status and its sentence.
        return HTTP_STATUS[exc.kind], exc.message
    if isinstance(exc, HTTPException):
        return exc.status_code, _http_message(exc)
    if isinstance(exc, RequestValidationError):
        return 400, _("The form or the address is incomplete or malformed.")
    return 500, _("Something went wrong on our side. It has been logged; try again in a "
                  "moment.")


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return secure(await handler(request))
            except LoginRequired:
                return secure(login_redirect(request))
            except Exception as exc:
                if not isinstance(exc, PageError | HTTPException | RequestValidationError):
                    # A bug: its traceback goes to the log, never to the reader, who
                    # gets a 500 page on a connection that stays usable.
                    log.exception("unhandled error on %s %s", request.method,
                                  request.url.path)
                failure = exc
            # The message is written once the reader (and so the language) is known:
            # an error can come before the page's own dependency set the language.
            reader = await _reader(request)
            status, message = _status_and_message(failure)
            response = error_page(status, message, reader)
            if isinstance(failure, SalesKpiError):
                response.headers.update(retry_after(failure) or {})
            return secure(response)

        return route


# The browser asks for /favicon.ico whatever the page links to (e.g. for a PDF or an
# image opened directly); the icon is the SVG of the static files.
assets = APIRouter(route_class=WebRoute, include_in_schema=False)


@assets.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(FAVICON, media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


class StaticAssets(StaticFiles):
    """The dashboard's CSS and JS, with the same security headers as the pages."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        return secure(response, cache="public, max-age=3600")


def static_files() -> StaticAssets:
    return StaticAssets(directory=STATIC_DIR)
