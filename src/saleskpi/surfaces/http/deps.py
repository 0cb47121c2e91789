"""Request dependencies: the service, the caller, CSRF and login throttling."""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request

from saleskpi.service.auth import (
    Principal,
    principal_for_token,
    session_generation,
    session_user,
    sign_out_everywhere,
)
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.http.errors import problem
from saleskpi.surfaces.http.proxies import TrustedProxies

SESSION_USER = "uid"
SESSION_GENERATION = "gen"
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
        # Checked on every request: a session signed out, or of a user disabled or
        # deleted since, is nobody's (its cookie may have been copied).
        principal = session_user(svc.settings, user_id, request.session.get(SESSION_GENERATION))
        if principal is None:
            request.session.pop(SESSION_USER, None)
            request.session.pop(SESSION_GENERATION, None)
        return principal
    return None


def start_session(request: Request, svc: SalesKpiService, principal: Principal) -> None:
    """A new session for ``principal``: nothing from before the sign-in carries over."""
    request.session.clear()
    request.session[SESSION_USER] = principal.user_id
    request.session[SESSION_GENERATION] = session_generation(svc.settings, principal.user_id)


def end_session(request: Request, svc: SalesKpiService) -> None:
    """Sign out everywhere: this cookie, copies of it and the user's other sessions."""
    user_id = request.session.get(SESSION_USER)
    if isinstance(user_id, int) and session_user(
            svc.settings, user_id, request.session.get(SESSION_GENERATION)) is not None:
        sign_out_everywhere(svc.settings, user_id)
    request.session.clear()


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
    """Failed sign-ins, limited three ways (each counted over a sliding window).

    - per account: ``per_account`` failures per ``window`` seconds for one user name,
      from whatever addresses (a different X-Forwarded-For per guess changes nothing);
    - per address: ``per_address`` failures per ``window`` from one client address,
      across user names (password spraying);
    - globally: ``globally`` failures per ``global_window`` seconds across everybody.

    The client address is the peer's, unless the peer is one of ``trusted_proxies``
    (addresses or networks): then it is the last address in X-Forwarded-For that is
    not a trusted proxy. Nobody is trusted by default.
    """

    def __init__(self, attempts: int = 5, window: float = 300.0, *, per_address: int = 20,
                 globally: int = 100, global_window: float = 60.0,
                 trusted_proxies: Iterable[str] = ()) -> None:
        self.attempts = attempts
        self.window = window
        self.per_address = per_address
        self.globally = globally
        self.global_window = global_window
        self.proxies = TrustedProxies(trusted_proxies)
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    # -- who is asking ---------------------------------------------------------------
    def client_address(self, request: Request) -> str:
        """The client's address, from X-Forwarded-For only when a trusted proxy sent it."""
        return self.proxies.client_address(request)

    # -- the counters ----------------------------------------------------------------
    def _keys(self, address: str, username: str) -> list[tuple[str, int, float]]:
        return [(f"account:{username.strip().lower()}", self.attempts, self.window),
                (f"address:{address}", self.per_address, self.window),
                ("global", self.globally, self.global_window)]

    def _recent(self, key: str, window: float, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and now - failures[0] > window:
            failures.popleft()
        return failures

    def retry_after(self, address: str, username: str) -> int | None:
        """Whole seconds until a sign-in of ``username`` from ``address`` is allowed
        again (for ``Retry-After``); None when it is allowed now."""
        with self._lock:
            now = time.monotonic()
            waits = []
            for key, limit, window in self._keys(address, username):
                failures = self._recent(key, window, now)
                if len(failures) >= limit:
                    # Room again when the failure that makes it one too many ages out.
                    waits.append(failures[len(failures) - limit] + window - now)
            return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, address: str, username: str) -> None:
        with self._lock:
            now = time.monotonic()
            for key, _limit, window in self._keys(address, username):
                self._recent(key, window, now).append(now)
            if len(self._failures) > 10_000:  # a spray of names must not grow it for good
                window = max(self.window, self.global_window)
                for key in [k for k, v in self._failures.items()
                            if not v or now - v[-1] > window]:
                    del self._failures[key]

    def succeeded(self, address: str, username: str) -> None:
        """The account's failures are forgiven; the address's and the global are not
        (else signing in to one's own account would reset a spray)."""
        with self._lock:
            self._failures.pop(self._keys(address, username)[0][0], None)


def login_throttle(request: Request) -> LoginThrottle:
    """The app's one throttle for the API's and the web's sign-in (``create_app`` makes it)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


ThrottleDep = Annotated[LoginThrottle, Depends(login_throttle)]
