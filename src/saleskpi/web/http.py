"""How web routes answer: HTML error pages, sign-in redirects and security headers.

``WebRoute`` wraps every page handler (its dependencies included), so an error
raised anywhere on the way, even by the API's dependencies, becomes a page in the
reader's language instead of the API's JSON, and every response carries the
security headers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from saleskpi.web.errors import LoginRequired, PageError
from saleskpi.web.i18n import _
from saleskpi.web.render import render

STATIC_DIR = Path(__file__).parent / "static"
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


def error_page(status: int, message: str) -> Response:
    titles = {400: _("The request cannot be shown"), 401: _("Sign in again"),
              403: _("Not allowed"), 404: _("Not found"), 429: _("Too many attempts")}
    return render("error.html", status=status, title=titles.get(status, _("Error")),
                  message=message)


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


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = login_redirect(request)
            except PageError as exc:
                response = error_page(exc.status, exc.message)
            except HTTPException as exc:
                response = error_page(exc.status_code, _http_message(exc))
            except RequestValidationError:
                response = error_page(400, _("The form or the address is incomplete or "
                                             "malformed."))
            return secure(response)

        return route


class StaticAssets(StaticFiles):
    """The dashboard's CSS and JS, with the same security headers as the pages."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        return secure(response, cache="public, max-age=3600")


def static_files() -> StaticAssets:
    return StaticAssets(directory=STATIC_DIR)
