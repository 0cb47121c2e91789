"""Pipedrive: API v2, v1 where v2 has none, into the canonical entities (see docs).

The mapping is in docs/connectors/pipedrive.md.

``saleskpi connect pipedrive`` asks for the company domain, the API token and
the webhook's basic-auth user and password; ``saleskpi sync pipedrive`` then
loads users, organizations, leads, deals with their stage history, activities
and notes, and afterwards only what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlsplit

from saleskpi.domain.i18n import _
from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import Batch, ClientOptions, Field, register
from saleskpi.sources.connectors.crms.pipedrive import webhook
from saleskpi.sources.connectors.crms.pipedrive.payload import CRM, Record, malformed
from saleskpi.sources.connectors.crms.pipedrive.reader import PAGE_SIZE, Reader
from saleskpi.sources.connectors.http import ApiClient, ConnectorError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def normalize_base_url(value: str) -> str:
    """``acme``, ``acme.pipedrive.com`` or ``https://acme.pipedrive.com/v1/`` -> the origin."""
    text = value.strip().rstrip("/")
    if text and "." not in text and "/" not in text and ":" not in text:
        text = f"{text}.pipedrive.com"  # just the company's subdomain
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConnectorError(_(
            "pipedrive: {url!r} is not a company address; give it like "
            "https://yourcompany.pipedrive.com", url=value))
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        # The token travels in a header: never in clear text over a network.
        raise ConnectorError(_(
            "pipedrive: {url!r} is not HTTPS; use https://yourcompany.pipedrive.com",
            url=value))
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


@register(CRM)
class PipedriveConnector:
    """One Pipedrive company, reached with one user's API token."""

    name = CRM
    # A converted lead leaves the Leads Inbox, yet it was a lead: a full sync keeps it.
    kept_when_unlisted = frozenset({"leads"})
    fields: tuple[Field, ...] = (
        Field("base_url", _("Company address, e.g. https://yourcompany.pipedrive.com")),
        Field("api_token", _("API token (Pipedrive: Personal preferences > API)"),
              secret=True),
        Field("webhook_user", _("Webhook basic-auth user (as set on the Pipedrive webhook)")),
        Field("webhook_password", _("Webhook basic-auth password"), secret=True),
    )

    def __init__(self, credentials: dict[str, str], options: ClientOptions) -> None:
        self.token = credentials.get("api_token", "").strip()
        self.base_url = normalize_base_url(credentials.get("base_url", ""))
        self.webhook_user = credentials.get("webhook_user", "")
        self.webhook_password = credentials.get("webhook_password", "")
        self.options = options
        # Set by the sync from the store: deals whose stage history needs no new read.
        self.known_moves: dict[str, dt.datetime] = {}
        if not self.token:
            raise ConnectorError(_("pipedrive: the API token is empty; find it in Pipedrive "
                                   "under Personal preferences > API"))

    def _client(self) -> ApiClient:
        # The token goes in the x-api-token header, not the query string, so it never
        # appears in a URL that an HTTP log line or an error message might show.
        return self.options.client(
            CRM, self.base_url,
            headers={"x-api-token": self.token, "Accept": "application/json"},
            secrets=[self.token, self.webhook_password])

    def check(self) -> str:
        """The company and user the token belongs to (``GET /v1/users/me``)."""
        endpoint = "/v1/users/me"
        with self._client() as client:
            body = client.get(endpoint)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise malformed(endpoint, "data", _("is missing"))
        me = Record(data, endpoint, "data")
        company = me.text("company_name") or me.text("company_domain") or self.base_url
        return _("{company}, as {user}", company=company,
                 user=me.text("name") or me.text("email") or me.id())

    def batches(self, cursor: dict[str, str]) -> Iterator[Batch]:
        with self._client() as client:
            reader = Reader(client, now=lambda: dt.datetime.now(dt.UTC),
                            page_size=PAGE_SIZE, known_moves=self.known_moves)
            yield from reader.batches(cursor)

    def verify_webhook(self, request: WebhookRequest) -> str:
        return webhook.verify(request, self.webhook_user, self.webhook_password)
