"""Signing in and out with a form: CSRF-checked, throttled like the API's sign-in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from saleskpi.service.auth import Principal, authenticate
from saleskpi.surfaces.http.deps import (
    ServiceDep,
    ThrottleDep,
    check_csrf,
    csrf_token,
    end_session,
    optional_user,
    start_session,
)
from saleskpi.surfaces.web.deps import PageDep
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _, best_match, use_language
from saleskpi.surfaces.web.render import render

router = APIRouter(route_class=WebRoute)
MAX_FIELD = 200
SESSION_LANG = "web_lang"  # a visitor's language, chosen on the sign-in page


def safe_next(target: str | None) -> str:
    """Only a path of this site: never '//evil.example', 'https://…' or '/\\evil.example'.

    Browsers drop tabs and line breaks from addresses and read a backslash as a
    slash, so any of those makes the target unsafe too.
    """
    if not target or not target.startswith("/") or target.startswith("//") or any(
            c in target for c in "\\\t\r\n"):
        return "/"
    return target


async def _anonymous_language(request: Request, svc: ServiceDep) -> str:
    chosen = request.session.get(SESSION_LANG)
    if isinstance(chosen, str):
        return use_language(chosen)
    return use_language(best_match(request.headers.get("accept-language", ""),
                                   svc.settings.lang or None))


def _form(request: Request, *, username: str = "", error: str = "",
          status: int = 200) -> Response:
    return render("login.html", status=status, csrf=csrf_token(request), username=username,
                  here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                  error=error, next=safe_next(request.query_params.get("next")),
                  title=_("Sign in"))


@router.get("/login")
def login_form(request: Request, _lang: Annotated[str, Depends(_anonymous_language)],
               user: Annotated[Principal | None, Depends(optional_user)]) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=302)
    return _form(request)


@router.post("/login")
def login(request: Request, svc: ServiceDep, login_throttle: ThrottleDep,
          _lang: Annotated[str, Depends(_anonymous_language)],
          username: Annotated[str, Form(max_length=MAX_FIELD)] = "",
          password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
          csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    try:
        check_csrf(request, csrf)
    except HTTPException:
        return _form(request, username=username, status=403, error=_(
            "The form expired. Sign in again."))
    address = login_throttle.client_address(request)
    wait = login_throttle.retry_after(address, username)
    if wait is not None:
        refused = _form(request, username=username, status=429, error=_(
            "Too many failed sign-ins; wait 5 minutes and try again."))
        refused.headers["Retry-After"] = str(wait)
        return refused
    principal = authenticate(svc.settings, username, password)
    if principal is None:
        login_throttle.failed(address, username)
        return _form(request, username=username, status=401,
                     error=_("Wrong username or password."))
    login_throttle.succeeded(address, username)
    start_session(request, svc, principal)  # nothing from before the sign-in carries over
    return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)


@router.get("/logout")
def logout_form(page: PageDep) -> Response:
    return page.render("logout.html", title=_("Sign out"))


@router.post("/logout")
def logout(request: Request, page: PageDep,
           csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    page.check_csrf(csrf)
    end_session(request, page.service)  # everywhere: copies of the cookie die with it
    return RedirectResponse("/login", status_code=303)
