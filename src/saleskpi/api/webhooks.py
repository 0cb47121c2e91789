"""CRM webhooks: verified, de-duplicated, then the change is synced at once.

A webhook only says "something changed"; the connector's incremental sync
fetches it through the API, so a forged payload can at most cause a harmless
sync, and the stored data always comes from the CRM itself.
"""

from __future__ import annotations

import hashlib
import threading
import time

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from saleskpi.connectors.base import REGISTRY, ClientOptions, WebhookRejected, WebhookRequest
from saleskpi.connectors.http import ConnectorError
from saleskpi.connectors.sync import connector_for, sync
from saleskpi.settings import Settings
from saleskpi.state.webhook_log import remember_delivery

MAX_BODY = 256 * 1024  # CRM webhooks are small; anything bigger is not one
sync_lock = threading.Lock()  # DuckDB has one writer: syncs run one at a time


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/webhooks", tags=["webhooks"])

    async def receive(crm: str, request: Request, token: str | None) -> dict[str, object]:
        import saleskpi.connectors.crms  # noqa: F401  (registers the connectors)

        if crm not in REGISTRY:
            raise HTTPException(404, {"error": "unknown_crm"})
        declared = int(request.headers.get("content-length") or 0)
        if declared > MAX_BODY:
            raise HTTPException(413, {"error": "too_large"})
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, {"error": "too_large"})
        delivery = WebhookRequest(
            method=request.method, url=str(request.url), path_token=token,
            headers={k.lower(): v for k, v in request.headers.items()}, body=body,
            received_at=time.time(),
        )
        # Verification, the replay check and the sync block: keep them off the event loop.
        options = getattr(request.app.state, "client_options", None)
        return await run_in_threadpool(_verify_and_sync, settings, crm, delivery, options)

    def _verify_and_sync(settings: Settings, crm: str, delivery: WebhookRequest,
                         options: ClientOptions | None) -> dict[str, object]:
        try:
            connector = connector_for(settings, crm, options)
            delivery_id = connector.verify_webhook(delivery)
        except WebhookRejected:
            raise HTTPException(401, {"error": "not_verified"}) from None
        except ConnectorError:
            raise HTTPException(404, {"error": "not_connected"}) from None
        digest = hashlib.sha256(f"{crm}:{delivery_id}".encode()).hexdigest()
        if not remember_delivery(settings, crm, digest):
            raise HTTPException(409, {"error": "replayed"})
        with sync_lock:
            try:
                report = sync(settings, crm, options=options)
            except ConnectorError:
                # Verified and remembered: the next scheduled sync picks the change up.
                raise HTTPException(502, {"error": "sync_failed"}) from None
        return {"ok": True, "batches": report.batches}

    @routes.post("/{crm}")
    async def signed(crm: str, request: Request) -> dict[str, object]:
        return await receive(crm, request, None)

    @routes.post("/{crm}/{token}")
    async def with_token(crm: str, token: str, request: Request) -> dict[str, object]:
        return await receive(crm, request, token)

    return routes
