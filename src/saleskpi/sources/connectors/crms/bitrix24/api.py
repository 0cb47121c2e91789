"""Calling Bitrix24's REST methods through an inbound webhook.

An inbound webhook is an address with the key in its path:
``https://<portal>/rest/<user>/<key>/<method>.json``. The key is put into the
path only by the transport, on the way out, so httpx's own request log (INFO)
and every error message see the address without it.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.base import ClientOptions
from saleskpi.sources.connectors.crms.bitrix24.payload import CRM, Item, Page, malformed, read_page
from saleskpi.sources.connectors.http import ApiClient, AuthError, ConnectorError, redact
from saleskpi.sources.connectors.pacing import LeakyBucket, TryAgain, retrying

# Bitrix24 counts requests in a leaky bucket: a request adds 1, the bucket drains 2 a
# second, and a request that finds 50 in it is refused with QUERY_LIMIT_EXCEEDED (a 503).
# A sync keeps 10 below the top (other integrations of the portal share the bucket, and
# the network may bunch requests up); a refusal is retried with a backoff all the same.
RATE_LIMIT = 2.0
BURST = 40
PORTAL_BURST = 50
BATCH_SIZE = 50  # commands in one batch request, Bitrix24's maximum
AUTH_ERRORS = {"NO_AUTH_FOUND", "INVALID_CREDENTIALS", "expired_token", "invalid_token",
               "WRONG_AUTH_TYPE", "ACCESS_DENIED", "insufficient_scope", "user_access_error",
               "authorization_error", "PAYMENT_REQUIRED"}
THROTTLED = {"QUERY_LIMIT_EXCEEDED", "OVERLOAD_LIMIT"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
_WEBHOOK_PATH = re.compile(r"^(?P<prefix>(?:/[^/]+)*?)/rest/(?P<user>\d+)/(?P<code>[^/]+)"
                           r"(?:/(?:[A-Za-z0-9_.]+\.json)?)?/?$")


def php_query(params: dict[str, Any]) -> str:
    """Parameters as PHP's http_build_query writes them (``filter[>ID]=5&select[0]=ID``):
    how a command of ``batch`` is spelled."""
    pairs: list[tuple[str, str]] = []

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                add(f"{name}[{key}]", inner)
        elif isinstance(value, list | tuple):
            for index, inner in enumerate(value):
                add(f"{name}[{index}]", inner)
        elif isinstance(value, bool):
            pairs.append((name, "Y" if value else "N"))
        elif value is not None:
            pairs.append((name, str(value)))

    for key, value in params.items():
        add(str(key), value)
    return urlencode(pairs)


@dataclass(frozen=True)
class WebhookAddress:
    """An inbound webhook: https://<portal>/rest/<user>/<key>/ split into its parts."""

    origin: str  # https://acme.bitrix24.ru (with a port, if any)
    root: str  # /rest/1/ (with any path before /rest on a self-hosted portal)
    key: str  # the secret

    @property
    def url(self) -> str:
        return f"{self.origin}{self.root}{self.key}/"


def parse_webhook_url(value: str) -> WebhookAddress:
    """The inbound webhook's parts; ConnectorError (never repeating the value) if it is none."""
    text = value.strip()
    if text and "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = parts.hostname or ""
    match = _WEBHOOK_PATH.match(parts.path)
    if parts.scheme not in ("https", "http") or not host or match is None:
        # Never repeat the address: it contains the webhook's key.
        raise ConnectorError(_(
            "{crm}: the inbound webhook address should look like "
            "https://yourportal.bitrix24.ru/rest/1/abc123xyz/ (Bitrix24: Developer resources "
            "→ Other → Inbound webhook)", crm=CRM))
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise ConnectorError(_(
            "{crm}: the inbound webhook address must start with https://: the key in it "
            "would travel in clear text", crm=CRM))
    port = f":{parts.port}" if parts.port else ""
    return WebhookAddress(f"{parts.scheme}://{host}{port}",
                          f"{match['prefix']}/rest/{match['user']}/", match["code"])


class KeyedTransport(httpx.BaseTransport):
    """Puts the webhook's key into the path only on the way out.

    The client (and so httpx's request log at INFO, and any error naming the URL)
    only ever sees https://<portal>/rest/<user>/<method>.json: the key is in no log.
    """

    def __init__(self, address: WebhookAddress) -> None:
        host = urlsplit(address.origin).hostname or ""
        scheme = urlsplit(address.origin).scheme
        # An explicit transport makes httpx ignore HTTP(S)_PROXY: honour it here instead.
        proxy = None if urllib.request.proxy_bypass(host) else \
            urllib.request.getproxies().get(scheme)
        self.inner = httpx.HTTPTransport(proxy=proxy)
        self.root = address.root
        self.key = address.key

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith(self.root):
            path = f"{self.root}{self.key}/{path[len(self.root):]}"
        keyed = httpx.Request(request.method, request.url.copy_with(path=path),
                              headers=request.headers, stream=request.stream,
                              extensions=request.extensions)
        return self.inner.handle_request(keyed)

    def close(self) -> None:
        self.inner.close()


class Bitrix24Api:
    """REST methods of one portal; error answers become AuthError or ConnectorError."""

    def __init__(self, address: WebhookAddress, options: ClientOptions,
                 secrets: list[str]) -> None:
        if options == ClientOptions():  # not tuned by the caller: Bitrix24's own limit
            options = ClientOptions(rate_limit=RATE_LIMIT, retries=options.retries,
                                    backoff=options.backoff)
        self.options = options
        self.secrets = secrets
        self.client: ApiClient = options.client(
            CRM, f"{address.origin}{address.root}", secrets=secrets,
            transport=KeyedTransport(address))
        self.client.rate = LeakyBucket(options.rate_limit, capacity=BURST)

    def _reconnect(self, method: str) -> AuthError:
        return AuthError(redact(_(
            "{crm}: Bitrix24 refused the inbound webhook at {method}: it was deleted, its "
            "key regenerated, its user deactivated or its permissions reduced. Create an "
            "inbound webhook with the crm, user and department permissions (Developer "
            "resources → Other → Inbound webhook) and run 'saleskpi connect {crm}' again.",
            crm=CRM, method=method), self.secrets))

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One REST method; an error answer becomes AuthError or ConnectorError.

        A 200 that says "too fast" (``QUERY_LIMIT_EXCEEDED``) is tried again with the
        shared backoff, like a 429.
        """
        try:
            for attempt in retrying(self.options.retries, self.options.backoff,
                                    self.client.sleep):
                with attempt:
                    answer = self._call_once(method, params)
        except TryAgain as spent:
            raise self._error(method, {"error": str(spent),
                                       "error_description": "Too many requests"}) from None
        return answer

    def _call_once(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            body = self.client.post(f"{method}.json", params)
        except AuthError:
            raise self._reconnect(method) from None
        answer = Item(method, "<response>", body)
        error = answer.data.get("error")
        if error is None:
            return answer.data
        if str(error) in THROTTLED:
            raise TryAgain(str(error))
        raise self._error(method, answer.data)

    def _error(self, method: str, error: dict[str, Any]) -> ConnectorError:
        code = str(error.get("error") or "")
        if code in AUTH_ERRORS:
            return self._reconnect(method)
        return ConnectorError(redact(_(
            "{crm}: {method} answered with error {code}: {description}", crm=CRM,
            method=method, code=code[:80],
            description=str(error.get("error_description") or "")[:200]), self.secrets))

    def batch(self, calls: list[tuple[str, dict[str, Any]]]
              ) -> tuple[list[dict[str, Any]], ConnectorError | None]:
        """Up to 50 calls in one request (``batch``, halting at the first error).

        The answers, each shaped as its method alone would answer (``result``,
        ``next``, ``total``, ``time``), of the calls before the first that failed; and
        that failure (None if none did). A batch that Bitrix24 refused as too fast is
        sent again after a backoff; a bucket counts a batch as one request.
        """
        if len(calls) > BATCH_SIZE:
            raise ValueError(f"at most {BATCH_SIZE} calls in a batch, got {len(calls)}")
        names = [f"c{index}" for index in range(len(calls))]
        body = {"halt": 1, "cmd": {name: f"{method}?{php_query(params)}"
                                   for name, (method, params) in zip(names, calls, strict=True)}}
        try:
            for attempt in retrying(self.options.retries, self.options.backoff,
                                    self.client.sleep):
                with attempt:
                    answers, failure, throttled = self._batch_once(names, calls, body)
                    if throttled and not answers:
                        raise TryAgain("QUERY_LIMIT_EXCEEDED")  # nothing ran: send it again
        except TryAgain:
            return [], self._error(calls[0][0], {
                "error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
        if not answers and failure is None:
            raise malformed("batch", "result.result", _("is missing"))
        # Calls after a refused one, if any, are asked again by the caller (the bucket
        # paces that request like any other).
        return answers, failure

    def _batch_once(self, names: list[str], calls: list[tuple[str, dict[str, Any]]],
                    body: dict[str, Any]
                    ) -> tuple[list[dict[str, Any]], ConnectorError | None, bool]:
        """One ``batch`` request: the answers before the first failure, that failure (if
        it was not "too fast"), and whether a call was refused as too fast."""
        answer = self.call("batch", body)
        outcome = Item("batch", "<response>", answer).child("result")
        if outcome is None:
            raise Item("batch", "<response>", answer).missing("result")
        results, errors, totals, nexts, times = (
            _table(outcome.data.get(part)) for part in (
                "result", "result_error", "result_total", "result_next", "result_time"))
        answers: list[dict[str, Any]] = []
        for name, (method, _params) in zip(names, calls, strict=True):
            error = errors.get(name)
            if isinstance(error, dict):
                if str(error.get("error") or "") not in THROTTLED:
                    return answers, self._error(method, error), False
                return answers, None, True
            if name not in results:
                break  # not run: the batch halted before it
            answers.append({"result": results[name], "next": nexts.get(name),
                            "total": totals.get(name), "time": times.get(name)})
        return answers, None, False

    def page(self, method: str, params: dict[str, Any], key: str | None = None) -> Page:
        return read_page(method, self.call(method, params), key)

    def every(self, method: str, params: dict[str, Any],
              key: str | None = None) -> tuple[list[Item], dt.datetime | None]:
        """Every page of a short list (directories), by ``start`` and ``next``."""
        items: list[Item] = []
        start: int | None = 0
        first_time: dt.datetime | None = None
        while start is not None:
            page = self.page(method, {**params, "start": start}, key)
            first_time = first_time or page.server_time
            items += page.items
            start = page.next if page.items and (page.next or 0) > start else None
        return items, first_time


def _table(value: object) -> dict[str, Any]:
    """A batch's per-call table; PHP sends an empty one as ``[]``."""
    return value if isinstance(value, dict) else {}
