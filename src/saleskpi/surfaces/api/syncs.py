"""REST v1: CRM sync status (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from saleskpi.surfaces.api.people import ManagerCaller
from saleskpi.surfaces.http.deps import ServiceDep
from saleskpi.views.syncs import SyncStatusParams, SyncStatusView, sync_status

router = APIRouter(prefix="/api/v1")


@router.get("/sync/status", response_model=SyncStatusView)
def status(user: ManagerCaller, svc: ServiceDep, crm: str | None = None) -> dict[str, Any]:
    """Each CRM: connected or not, last stored batch, cursor (`saleskpi sync --status`)."""
    return sync_status(svc, user, SyncStatusParams(crm=crm)).to_json()
