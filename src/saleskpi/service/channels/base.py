"""What every channel shares: the message with its link, the HTTP client, retries, errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from saleskpi.domain.notices import Notice
from saleskpi.domain.settings import Settings
from saleskpi.sources.connectors.http import redact
from saleskpi.sources.connectors.pacing import TryAgain, retry_after_seconds, retrying

RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx
MAX_DETAIL = 300  # characters of a server's answer kept in the log


class ChannelError(Exception):
    """A failure that trying again will not mend; the message is safe to log (no secrets)."""


@dataclass(frozen=True)
class Message:
    """A notice as channels send it: with its link made absolute (``public_url``)."""

    notice: Notice
    link: str | None

    def text(self, limit: int | None = None) -> str:
        """Subject, body and link as plain text, cut to ``limit`` characters."""
        parts = [self.notice.subject, self.notice.body.strip()]
        if self.link:
            parts.append(self.link)
        text = "\n\n".join(p for p in parts if p)
        if limit is not None and len(text) > limit:
            tail = f"…\n\n{self.link}" if self.link else "…"
            text = text[:limit - len(tail)] + tail
        return text


def absolute_link(settings: Settings, path: str | None) -> str | None:
    if not path:
        return None
    if path.startswith(("http://", "https://")) or not settings.public_url:
        return path
    return settings.public_url + (path if path.startswith("/") else "/" + path)


@dataclass
class Outbox:
    """One delivery run: the settings, one HTTP client, and the tries it took.

    ``retries`` counts the tries after a transient failure, over the whole send (a
    Telegram message and its documents are each retried on their own, so a document
    that failed never sends the message twice).
    """

    settings: Settings
    http: httpx.Client
    sleep: Callable[[float], None] = time.sleep
    retries: int = 0
    last_error: str | None = None
    secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        found = [s.smtp_password, s.telegram_bot_token, s.webhook_secret,
                 *s.slack_webhooks.values(), *s.teams_webhooks.values()]
        self.secrets = [v.get_secret_value() for v in found if v is not None]

    def safe(self, text: str) -> str:
        return redact(text, self.secrets)

    def tried(self, action: Callable[[], Any]) -> Any:
        """``action()``, tried again with backoff while it raises ``TryAgain``."""
        settings = self.settings
        first = True
        for attempt in retrying(settings.delivery_retries, settings.delivery_backoff_seconds,
                                self.sleep):
            with attempt:
                if not first:
                    self.retries += 1
                first = False
                try:
                    return action()
                except TryAgain as exc:
                    self.last_error = self.safe(str(exc))
                    raise
        raise AssertionError("unreachable: retrying re-raises the last TryAgain")

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST with retries; the answer if 2xx, else ``TryAgain`` or ``ChannelError``."""
        return self.post_each(url, lambda: kwargs)

    def post_signed(self, url: str, body: bytes,
                    headers: Callable[[], dict[str, str]]) -> httpx.Response:
        """POST ``body`` with ``headers()`` made afresh for every try (a new timestamp)."""
        return self.post_each(url, lambda: {"content": body, "headers": headers()})

    def post_each(self, url: str, arguments: Callable[[], dict[str, Any]]) -> httpx.Response:
        def once() -> httpx.Response:
            try:
                response = self.http.post(url, **arguments())
            except httpx.TimeoutException:
                raise TryAgain("timed out") from None
            except httpx.TransportError as exc:
                raise TryAgain(f"connection failed ({type(exc).__name__}: "
                               f"{self.safe(str(exc))[:MAX_DETAIL]})") from None
            check(response, self.safe)
            return response

        response: httpx.Response = self.tried(once)
        return response


def check(response: httpx.Response, safe: Callable[[str], str]) -> None:
    if response.is_success:
        return
    detail = safe(response.text.strip().replace("\n", " "))[:MAX_DETAIL]
    reason = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
    if response.status_code in RETRY_STATUSES or response.status_code >= 500:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        raise TryAgain(reason, wait if wait is not None else _body_retry_after(response))
    raise ChannelError(reason)


def _body_retry_after(response: httpx.Response) -> float | None:
    """Telegram says how long to wait in its JSON (``parameters.retry_after``)."""
    try:
        data = response.json()
    except ValueError:
        return None
    parameters = data.get("parameters") if isinstance(data, dict) else None
    seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else None
