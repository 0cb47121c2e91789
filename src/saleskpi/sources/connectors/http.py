"""One HTTP client for every CRM: retries, rate limits, clear errors, no leaked secrets.

CRMs answer 429 when called too fast and 5xx when busy; both are retried with
exponential backoff (honouring ``Retry-After``), and requests are paced by a
leaky bucket: both come from ``pacing``, shared by every connector. Everything else that is wrong
becomes a ``ConnectorError`` whose message names the CRM, the request path and
what to do, with every credential removed from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from saleskpi.domain.errors import Upstream
from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.pacing import (
    LeakyBucket,
    TryAgain,
    retry_after_seconds,
    retrying,
)

RETRY_STATUSES = {429, 500, 502, 503, 504}


class ConnectorError(Upstream):
    """Something the user can act on: wrong credentials, a broken response, an outage."""
    default_code = "connector_failed"


class AuthError(ConnectorError):
    """The CRM refused the credentials (expired token, revoked key)."""


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class ApiClient:
    """JSON over HTTPS with retries; ``secrets`` are scrubbed from every message."""

    def __init__(self, crm: str, base_url: str, *, headers: dict[str, str] | None = None,
                 params: dict[str, str] | None = None, secrets: Iterable[str] = (),
                 rate_limit: float = 5.0, retries: int = 5, backoff: float = 0.5,
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.crm = crm
        self.secrets = [s for s in secrets if s]
        self.rate: LeakyBucket = LeakyBucket(rate_limit)
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.http = httpx.Client(base_url=base_url, headers=headers or {}, params=params or {},
                                 timeout=timeout, transport=transport, follow_redirects=False)
        self.requests = 0
        self._last_response: httpx.Response | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _safe(self, text: str) -> str:
        return redact(text, self.secrets)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body (None for 204), after retries (``pacing.retrying``)."""
        try:
            for attempt in retrying(self.retries, self.backoff, self.sleep):
                with attempt:
                    response = self._send(method, path, **kwargs)
        except TryAgain as spent:
            if self._last_response is not None:  # the CRM answered: say what it said
                return self._decode(self._last_response, path)
            raise ConnectorError(self._safe(_(
                "{crm}: cannot reach {path}: {error}. Check the address and the "
                "network, then run the sync again; it resumes where it stopped.",
                crm=self.crm, path=path, error=spent))) from None
        return self._decode(response, path)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One paced request; ``TryAgain`` for what is worth another try."""
        self._last_response = None
        self.rate.wait(self.sleep)
        self.requests += 1
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TryAgain(str(exc)) from None
        if response.status_code in RETRY_STATUSES:
            self._last_response = response
            raise TryAgain(f"{response.status_code}",
                           retry_after_seconds(response.headers.get("Retry-After")))
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def _decode(self, response: httpx.Response, path: str) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise AuthError(self._safe(_(
                "{crm}: the credentials were refused ({status}) at {path}. Reconnect with "
                "'saleskpi connect {crm}' and a fresh token.", crm=self.crm, status=status,
                path=path)))
        if status >= 400:
            raise ConnectorError(self._safe(_(
                "{crm}: {path} answered {status}: {body}", crm=self.crm, path=path,
                status=status, body=response.text[:300])))
        if status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ConnectorError(self._safe(_(
                "{crm}: {path} did not answer with JSON (got {start!r}). The CRM may be down "
                "or the address is not its API.", crm=self.crm, path=path,
                start=response.text[:80]))) from None
