"""CRM syncs at a glance: which CRM is connected, and how far its data has come.

The time is when the last batch was stored (a sync saves its cursor only then);
``last_run`` is the latest import-log entry whose source is the CRM's name, with its
counts per entity. Managers only, like connections and imports.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.service.sync_status import sync_status as read_status
from saleskpi.service.syncs import connection_fields
from saleskpi.views.base import ViewModel, require_manager


class SyncStatusParams(BaseModel):
    crm: str | None = Field(default=None, description="One CRM; every known CRM if omitted.")


class LoggedRunModel(BaseModel):
    finished_at: dt.datetime = Field(description="UTC.")
    ok: bool
    entities: dict[str, dict[str, int]] = Field(
        description="Per entity: inserted, updated, unchanged, rejected.")


class CrmStatus(BaseModel):
    crm: str
    connected: bool = Field(description="Credentials are stored (saleskpi connect).")
    last_sync: dt.datetime | None = Field(
        description="When the last batch was stored (UTC); null: never synced.")
    cursor: dict[str, str] = Field(description="Where the next sync starts.")
    last_run: LoggedRunModel | None = Field(
        description="The latest import-log entry of this CRM's source, if any.")


class SyncStatusView(ViewModel):
    crms: list[CrmStatus]


def sync_status(service: SalesKpiService, caller: Principal,
                params: SyncStatusParams) -> SyncStatusView:
    require_manager(caller)
    if params.crm is not None:
        connection_fields(params.crm)  # an unknown CRM: a clear error naming the known ones
    found = read_status(service.settings, params.crm)
    crms = [CrmStatus(crm=s.crm, connected=s.connected, last_sync=s.last_sync,
                      cursor=s.cursor,
                      last_run=None if s.last_run is None else LoggedRunModel(
                          finished_at=s.last_run.finished_at, ok=s.last_run.ok,
                          entities=s.last_run.entities))
            for s in found]
    view: SyncStatusView = SyncStatusView(crms=crms).with_source(found)
    return view
