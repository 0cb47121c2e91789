"""Send notices to people through their channels, each once, with retries, logged.

``deliver(settings, notices)`` is what alerts, contests and scheduled reports call.
For every notice and every channel of its recipient (``service.contacts.routes``):

1. claim the delivery in the log (``store/state/deliveries.py``): a notice key
   already sent on that channel to that person is skipped, so evaluating a rule
   again, or a scheduler that runs twice, sends nothing twice;
2. send it, trying again with exponential backoff while the channel fails in a way
   that may pass (``sources/connectors/pacing.py``, as the CRM connectors do);
3. record sent or failed, the tries and the last error: ``saleskpi report
   deliveries`` and the /deliveries page show them. A failed delivery is tried
   again the next time the same notice is delivered.

Secrets (the SMTP password, the bot token, webhook URLs) never reach the log or
the messages: every error text is scrubbed of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from saleskpi.domain.i18n import _
from saleskpi.domain.notices import Notice
from saleskpi.domain.settings import Settings
from saleskpi.service.auth import disabled_ids, list_users
from saleskpi.service.channels import SENDERS
from saleskpi.service.channels.base import ChannelError, Message, Outbox, absolute_link
from saleskpi.service.contacts import Route, routes
from saleskpi.sources.connectors.pacing import TryAgain
from saleskpi.store.state.contacts import load_contacts
from saleskpi.store.state.deliveries import (
    STATUSES,
    Claim,
    DeliveryRecord,
    claim,
    finish,
    recent_deliveries,
)

__all__ = ["STATUSES", "DeliveryOutcome", "DeliveryRecord", "deliver", "delivery_log"]
log = logging.getLogger("saleskpi.delivery")

# What became of one notice on one channel.
SENT = "sent"
FAILED = "failed"
ALREADY_SENT = "already_sent"  # sent before (or being sent by another process): skipped
NO_CHANNEL = "no_channel"  # the recipient has no channel: nothing to do
UNKNOWN_RECIPIENT = "unknown_recipient"  # no such user, or disabled


@dataclass(frozen=True)
class DeliveryOutcome:
    key: str
    recipient: str
    channel: str | None
    status: str
    attempts: int = 0
    error: str | None = None


def deliver(settings: Settings, notices: Sequence[Notice], *,
            sleep: Callable[[float], None] = time.sleep) -> list[DeliveryOutcome]:
    """Send each notice through its recipient's channels; one outcome per channel tried.

    ``sleep``: how pauses between tries are waited (tests pass one that records them).
    """
    if not notices:
        return []
    users = {u.username: u for u in list_users(settings)}
    disabled = disabled_ids(settings)
    contacts = load_contacts(settings.state_url)
    outcomes: list[DeliveryOutcome] = []
    with httpx.Client(timeout=settings.delivery_timeout_seconds,
                      follow_redirects=False) as http:
        for notice in notices:
            user = users.get(notice.recipient)
            if user is None or user.user_id in disabled:
                log.warning("notice %s not delivered: no enabled user %r", notice.key,
                            notice.recipient)
                outcomes.append(DeliveryOutcome(notice.key, notice.recipient, None,
                                                UNKNOWN_RECIPIENT))
                continue
            found = routes(settings, user, contacts.get(user.user_id))
            if not found:
                outcomes.append(DeliveryOutcome(notice.key, notice.recipient, None,
                                                NO_CHANNEL))
                continue
            message = Message(notice, absolute_link(settings, notice.link))
            for route in found:
                outbox = Outbox(settings, http, sleep)
                outcomes.append(_deliver_once(outbox, message, route))
    return outcomes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _deliver_once(outbox: Outbox, message: Message, route: Route) -> DeliveryOutcome:
    notice = message.notice
    settings = outbox.settings
    wanted = Claim(notice.key, notice.kind, notice.recipient, route.channel, notice.subject)
    delivery_id = claim(settings.state_url, wanted, _now())
    if delivery_id is None:
        return DeliveryOutcome(notice.key, notice.recipient, route.channel, ALREADY_SENT)
    error: str | None = route.problem
    sent = False
    tried = route.address is not None and route.problem is None
    if tried:
        assert route.address is not None
        try:
            SENDERS[route.channel](outbox, message, route.address)
            sent = True
        except (TryAgain, ChannelError) as exc:
            error = outbox.safe(str(exc))
        except Exception as exc:  # a bug in a channel must not stop the other notices
            log.exception("delivery of %s by %s failed unexpectedly", notice.key,
                          route.channel)
            error = outbox.safe(_("unexpected error: {kind}", kind=type(exc).__name__))
    attempts = 1 + outbox.retries if tried else 0
    shown = error if error is not None else outbox.last_error
    finish(settings.state_url, delivery_id, sent=sent, attempts=attempts, error=shown,
           now=_now())
    if sent:
        log.info("notice %s sent to %s by %s (%d tries)", notice.key, notice.recipient,
                 route.channel, attempts)
    else:
        log.warning("notice %s to %s by %s failed: %s", notice.key, notice.recipient,
                    route.channel, error)
    return DeliveryOutcome(notice.key, notice.recipient, route.channel,
                           SENT if sent else FAILED, attempts, None if sent else error)


def delivery_log(settings: Settings, *, limit: int = 100, offset: int = 0,
                 status: str | None = None,
                 recipients: frozenset[str] | None = None) -> tuple[list[DeliveryRecord], int]:
    """The delivery log, newest first, and how many entries match in all."""
    return recent_deliveries(settings.state_url, limit=limit, offset=offset, status=status,
                             recipients=recipients)
