"""Request dependencies: the service, the caller, CSRF and login throttling."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import Depends, Request

from saleskpi.service.auth import Principal, principal_for_token, user_by_id
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.http.errors import problem

SESSION_USER = "uid"
SESSION_CSRF = "csrf"


def service(request: Request) -> SalesKpiService:
    svc: SalesKpiService = request.app.state.service
    return svc


ServiceDep = Annotated[SalesKpiService, Depends(service)]


def optional_user(request: Request, svc: ServiceDep) -> Principal | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = principal_for_token(svc.settings, header[7:].strip())
        if principal is None:
            raise problem(401, "bad_token", "the API token is not valid")
        request.state.by_token = True
        return principal
    user_id = request.session.get(SESSION_USER)
    if isinstance(user_id, int):
        return user_by_id(svc.settings, user_id)
    return None


def current_user(principal: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    if principal is None:
        raise problem(401, "not_signed_in", "sign in, or send an API token as "
                      "'Authorization: Bearer <token>'")
    return principal


UserDep = Annotated[Principal, Depends(current_user)]


def manager(user: UserDep) -> Principal:
    if not user.can_manage:
        raise problem(403, "forbidden", "only an admin or the head of sales may do this")
    return user


ManagerDep = Annotated[Principal, Depends(manager)]


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session[SESSION_CSRF] = token
    return token


def check_csrf(request: Request, sent: str | None) -> None:
    """Cookie-authenticated changes must carry the session's CSRF token; tokens need not."""
    if getattr(request.state, "by_token", False):
        return
    expected = request.session.get(SESSION_CSRF)
    if not sent or not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise problem(403, "csrf", "the form expired or did not come from saleskpi; reload "
                      "the page and try again")


async def csrf_header(request: Request,
                      _caller: Annotated[Principal | None, Depends(optional_user)]) -> None:
    # The caller first (FastAPI runs it once per request): a bearer token needs no CSRF
    # token, and route-level dependencies run before the handler's own.
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        check_csrf(request, request.headers.get("x-csrf-token"))


class LoginThrottle:
    """At most ``attempts`` failed logins per ``window`` seconds per address and name."""

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.attempts

    def failed(self, key: str) -> None:
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def login_throttle(request: Request) -> LoginThrottle:
    """The app's one throttle for the API's and the web's sign-in (``create_app`` makes it)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


ThrottleDep = Annotated[LoginThrottle, Depends(login_throttle)]
