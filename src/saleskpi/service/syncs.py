"""Syncs and CRM webhooks: every run of a connector goes through here.

DuckDB has one writer, so syncs run one at a time (``sync_lock``), whoever asks:
the scheduler, a webhook, or ``saleskpi sync``.

A webhook only says "something changed"; the connector's incremental sync
fetches it through the API, so a forged payload can at most cause a harmless
sync, and the stored data always comes from the CRM itself. A connector may also
read from a verified delivery the ids the CRM deleted (``webhook_deletions``,
confirmed through the API): the sync removes them first.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from saleskpi.domain.errors import Conflict, InvalidQuery, NotFound, TooLarge, Upstream
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import Progress
from saleskpi.domain.settings import Settings
from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import REGISTRY, ClientOptions
from saleskpi.sources.connectors.credentials import CREDENTIALS_FILE, CredentialStore
from saleskpi.sources.connectors.http import ConnectorError
from saleskpi.sources.connectors.sync import SyncReport, connector_for, sync
from saleskpi.store.state.webhook_log import remember_delivery

MAX_WEBHOOK_BODY = 256 * 1024  # CRM webhooks are small; anything bigger is not one
sync_lock = threading.Lock()


@dataclass(frozen=True)
class WebhookOutcome:
    batches: int


@dataclass(frozen=True)
class ConnectionField:
    """A value a CRM connection needs (``saleskpi connect`` asks for the missing ones)."""

    name: str
    help: str
    required: bool
    secret: bool
    default: str


def _registered() -> dict[str, object]:
    import saleskpi.sources.connectors.crms  # noqa: F401  (registers the connectors)

    return dict(REGISTRY)


def known_crms() -> list[str]:
    return sorted(_registered())


def connection_fields(crm: str) -> list[ConnectionField]:
    """The fields of ``crm``'s connection; ``InvalidQuery`` for an unknown CRM."""
    registry = _registered()
    if crm not in registry:
        raise InvalidQuery(_("unknown CRM {crm!r}; known: {known}", crm=crm,
                             known=", ".join(sorted(registry))), code="unknown_crm")
    fields = getattr(registry[crm], "fields", ())
    return [ConnectionField(f.name, f.help, bool(f.required), bool(f.secret),
                            str(f.default or "")) for f in fields]


def connect(settings: Settings, crm: str, credentials: dict[str, str]) -> str:
    """Test the credentials against the CRM, then store them encrypted; the account name."""
    connection_fields(crm)
    connector = REGISTRY[crm](credentials, ClientOptions())
    account = str(connector.check())
    CredentialStore(settings).put(crm, credentials)
    return account


def connected_crms(settings: Settings) -> list[str]:
    return list(CredentialStore(settings).names())


def run_sync(settings: Settings, crm: str, *, full: bool = False,
             options: ClientOptions | None = None, progress: Progress | None = None,
             hints: dict[str, list[str]] | None = None) -> SyncReport:
    """One sync of ``crm``, after any other that is running (``hints``: ids deleted).

    Each run's outcome is logged (``sync_runs``: alerts tell a failing sync), and the
    alert rules are evaluated after it, whether it worked or not.
    """
    from saleskpi.service.alerting import after_data_change

    try:
        with sync_lock:
            try:
                report = sync(settings, crm, full=full, options=options, progress=progress,
                              hints=hints)
            except Exception as exc:
                _log_run(settings, crm, ok=False, batches=0, message=str(exc))
                raise
            _log_run(settings, crm, ok=True, batches=report.batches, message="")
    finally:
        after_data_change(settings, f"sync:{crm}")
    return report


def _log_run(settings: Settings, crm: str, *, ok: bool, batches: int, message: str) -> None:
    """Only for a CRM that is connected: a typo in a CRM's name is not a failing sync."""
    from saleskpi.store.state.sync_runs import record_sync_run

    if not (settings.workspace / CREDENTIALS_FILE).exists() \
            or crm not in connected_crms(settings):
        return
    record_sync_run(settings.state_url, crm, ok=ok, batches=batches, message=message)


def handle_webhook(settings: Settings, crm: str, delivery: WebhookRequest,
                   options: ClientOptions | None = None) -> WebhookOutcome:
    """Verify, refuse replays, then sync at once.

    Raises ``NotFound`` (unknown or unconnected CRM), ``WebhookRejected`` (not
    verified), ``Conflict`` (replayed), ``TooLarge`` or ``Upstream`` (the sync failed;
    the delivery is remembered and the next scheduled sync picks the change up).
    """
    if crm not in _registered():
        raise NotFound("unknown CRM", code="unknown_crm")
    if len(delivery.body) > MAX_WEBHOOK_BODY:
        raise TooLarge("webhook body too large", code="too_large")
    try:
        connector = connector_for(settings, crm, options)
    except ConnectorError:
        raise NotFound("this CRM is not connected", code="not_connected") from None
    delivery_id = connector.verify_webhook(delivery)
    digest = hashlib.sha256(f"{crm}:{delivery_id}".encode()).hexdigest()
    if not remember_delivery(settings, crm, digest):
        raise Conflict("this delivery was already received", code="replayed")
    deletions = getattr(connector, "webhook_deletions", None)
    try:
        hints: dict[str, list[str]] = deletions(delivery) if deletions else {}
        report = run_sync(settings, crm, options=options, hints=hints)
    except ConnectorError:
        raise Upstream("the sync after the webhook failed", code="sync_failed") from None
    return WebhookOutcome(report.batches)
