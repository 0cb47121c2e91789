"""CRM webhooks over HTTP: read the delivery, hand it to the service, answer.

Verification, replay checks and the sync itself live in ``saleskpi.service.syncs``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from saleskpi.domain.errors import HTTP_STATUS, SalesKpiError
from saleskpi.domain.settings import Settings
from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.service.syncs import MAX_WEBHOOK_BODY, handle_webhook


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/webhooks", tags=["webhooks"])

    async def receive(crm: str, request: Request, token: str | None) -> dict[str, object]:
        declared = int(request.headers.get("content-length") or 0)
        if declared > MAX_WEBHOOK_BODY:
            raise HTTPException(413, {"error": "too_large"})
        body = await request.body()
        delivery = WebhookRequest(
            method=request.method, url=str(request.url), path_token=token,
            headers={k.lower(): v for k, v in request.headers.items()}, body=body,
            received_at=time.time(),
        )
        options = getattr(request.app.state, "client_options", None)
        try:
            # Verification, the replay check and the sync block: off the event loop.
            outcome = await run_in_threadpool(handle_webhook, settings, crm, delivery, options)
        except SalesKpiError as exc:
            # A CRM reads only the status; the code tells a person reading the log.
            raise HTTPException(HTTP_STATUS[exc.kind], {"error": exc.code}) from None
        return {"ok": True, "batches": outcome.batches}

    @routes.post("/{crm}")
    async def signed(crm: str, request: Request) -> dict[str, object]:
        return await receive(crm, request, None)

    @routes.post("/{crm}/{token}")
    async def with_token(crm: str, token: str, request: Request) -> dict[str, object]:
        return await receive(crm, request, token)

    return routes
