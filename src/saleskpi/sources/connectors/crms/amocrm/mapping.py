"""amoCRM records -> canonical rows (docs/connectors/amocrm.md has the full table).

amoCRM calls its deals "leads": one amoCRM lead becomes both a canonical deal
(its money, pipeline and outcome) and a canonical lead (its arrival), with the
same id, so deal KPIs and lead KPIs both work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.crms.amocrm.records import Record, malformed
from saleskpi.sources.connectors.frames import canonical_frame

WON_STATUS = 142
LOST_STATUS = 143
MEETING_TASK_TYPE = 2  # amoCRM's built-in "Meeting"; 1 is "Follow-up", others are custom
CALL_NOTES = {"call_in": "in", "call_out": "out"}
# params.call_status of a call note (amoCRM's documented codes).
CALL_OUTCOMES = {1: "voicemail", 2: "call_back", 3: "unavailable", 4: "connected",
                 5: "wrong_number", 6: "no_answer", 7: "busy"}
# Custom fields that hold a lead's source when amoCRM's own UTM field is empty.
SOURCE_FIELD_NAMES = {"source", "lead source", "источник", "источник лида", "джерело"}

Row = dict[str, Any]


@dataclass
class Directory:
    """The account's users and pipelines, for turning ids into names while mapping."""

    currency: str | None = None
    users: set[int] = field(default_factory=set)
    teams: dict[int, str] = field(default_factory=dict)  # users_groups: id -> name
    pipelines: dict[int, str] = field(default_factory=dict)
    statuses: dict[tuple[int, int], str] = field(default_factory=dict)

    def stage(self, pipeline_id: int, status_id: int) -> str:
        name = self.statuses.get((pipeline_id, status_id))
        if name is None:  # 142/143 exist in every pipeline; a moved deal may be elsewhere
            name = next((n for (_p, s), n in self.statuses.items() if s == status_id), None)
        return name if name is not None else str(status_id)

    def pipeline(self, pipeline_id: int) -> str:
        return self.pipelines.get(pipeline_id, str(pipeline_id))

    def rep(self, *candidates: int | None) -> str | None:
        """The first candidate that is a user of the account (0 is amoCRM's robot)."""
        return next((str(c) for c in candidates if c is not None and c in self.users), None)


def deal_status(status_id: int) -> str:
    return {WON_STATUS: "won", LOST_STATUS: "lost"}.get(status_id, "open")


# -- account structure ---------------------------------------------------------
def read_pipelines(directory: Directory, pipelines: list[Record]) -> None:
    for pipeline in pipelines:
        pipeline_id = pipeline.whole("id")
        directory.pipelines[pipeline_id] = pipeline.text("name") or str(pipeline_id)
        for status in pipeline.embedded("statuses"):
            status_id = status.whole("id")
            directory.statuses[(pipeline_id, status_id)] = (status.text("name")
                                                            or str(status_id))


def rep_row(user: Record, directory: Directory) -> Row:
    rights = user.child("rights")
    group_id = rights.whole_or_none("group_id") if rights is not None else None
    is_admin = rights.flag("is_admin") if rights is not None else None
    is_active = rights.flag("is_active") if rights is not None else None
    return {
        "id": user.id(), "name": user.text("name") or user.id(), "email": user.text("email"),
        "team": directory.teams.get(group_id) if group_id else None,
        "role": "admin" if is_admin else None,
        "active": is_active,
    }


def account_row(company: Record, directory: Directory) -> Row:
    return {
        "id": company.id(), "name": company.text("name") or company.id(), "segment": "b2b",
        "rep_id": directory.rep(company.whole_or_none("responsible_user_id")),
    }


# -- leads: deals and leads ----------------------------------------------------
def _custom_value(lead: Record, *, code: str | None = None,
                  names: set[str] | None = None) -> str | None:
    """A custom field's first value; custom fields are optional extras, read leniently."""
    fields = lead.data.get("custom_fields_values")
    if not isinstance(fields, list):
        return None
    for item in fields:
        if not isinstance(item, dict):
            continue
        name = item.get("field_name")
        matches = (code is not None and item.get("field_code") == code) or (
            names is not None and isinstance(name, str) and name.strip().lower() in names)
        values = item.get("values")
        if matches and isinstance(values, list) and values and isinstance(values[0], dict):
            value = values[0].get("value")
            if isinstance(value, str | int | float) and str(value).strip():
                return str(value).strip()
    return None


def lead_source(lead: Record) -> str | None:
    return (_custom_value(lead, code="UTM_SOURCE")
            or _custom_value(lead, names=SOURCE_FIELD_NAMES))


def deal_and_lead_rows(lead: Record, directory: Directory) -> tuple[Row, Row]:
    lead_id = lead.id()
    rep_id = str(lead.whole("responsible_user_id"))
    status_id = lead.whole("status_id")
    pipeline_id = lead.whole("pipeline_id")
    created_at = lead.time("created_at")
    status = deal_status(status_id)
    closed_at = None
    if status != "open":
        # A won or lost deal needs a close time; amoCRM sets closed_at, updated_at is
        # the fallback for deals closed by an import that left it empty.
        closed_at = lead.time_or_none("closed_at") or lead.time("updated_at")
    reasons = lead.embedded("loss_reason")
    lost_reason = reasons[0].text("name") if reasons and status == "lost" else None
    companies = lead.embedded("companies")
    account_id = companies[0].id() if companies else None
    deal = {
        "id": lead_id, "rep_id": rep_id, "status": status, "created_at": created_at,
        "lead_id": lead_id, "account_id": account_id,
        "pipeline": directory.pipeline(pipeline_id),
        "stage": directory.stage(pipeline_id, status_id),
        "amount": lead.number("price"), "currency": directory.currency,
        "closed_at": closed_at, "lost_reason": lost_reason, "name": lead.text("name"),
    }
    canonical_lead = {
        "id": lead_id, "created_at": created_at, "rep_id": rep_id,
        "source": lead_source(lead), "status": status,
        "lost_at": closed_at if status == "lost" else None, "lost_reason": lost_reason,
        "account_id": account_id,
    }
    return deal, canonical_lead


# -- events ----------------------------------------------------------------------
def stage_change_row(event: Record, directory: Directory) -> Row | None:
    if event.text("entity_type") not in (None, "lead"):
        return None
    after = event.children("value_after")
    status = after[0].child("lead_status") if after else None
    if status is None:
        raise malformed(event.endpoint, f"{event.where}.value_after[0].lead_status",
                        _("is missing"))
    pipeline_id = status.whole("pipeline_id")
    return {
        "deal_id": event.id("entity_id"),
        "stage": directory.stage(pipeline_id, status.whole("id")),
        "entered_at": event.time("created_at"),
        "rep_id": directory.rep(event.whole_or_none("created_by")),
        "pipeline": directory.pipeline(pipeline_id),
    }


# -- notes and tasks -> activities ------------------------------------------------
def note_row(note: Record, directory: Directory, *, on: str) -> Row | None:
    """A call or a common note; ``on`` is "leads" or "contacts" (whose notes these are)."""
    note_type = note.required_text("note_type")
    rep_id = directory.rep(note.whole_or_none("responsible_user_id"),
                           note.whole_or_none("created_by"))
    if rep_id is None:  # written by a robot or an integration with no user behind it
        return None
    entity_id = note.id("entity_id")
    row: Row = {
        "id": f"{'note' if on == 'leads' else 'contact-note'}-{note.id()}",
        "type": "call" if note_type in CALL_NOTES else "note",
        "rep_id": rep_id, "occurred_at": note.time("created_at"),
        "lead_id": entity_id if on == "leads" else None,
        "deal_id": entity_id if on == "leads" else None,
        "direction": CALL_NOTES.get(note_type),
    }
    if note_type in CALL_NOTES:
        params = note.child("params")
        if params is not None:
            duration = params.number("duration")
            row["duration_s"] = int(duration) if duration is not None else None
            status = params.data.get("call_status")
            row["outcome"] = CALL_OUTCOMES.get(status) if isinstance(status, int) else None
    return row


def task_row(task: Record, directory: Directory) -> Row | None:
    """A completed task as an activity; None for one still to do."""
    if not task.flag("is_completed"):
        return None
    rep_id = directory.rep(task.whole_or_none("responsible_user_id"),
                           task.whole_or_none("created_by"))
    if rep_id is None:
        return None
    entity_type = task.text("entity_type")
    entity_id = task.id("entity_id") if task.has("entity_id") else None
    duration = task.whole_or_none("duration")
    return {
        "id": f"task-{task.id()}",
        "type": "meeting" if task.whole_or_none("task_type_id") == MEETING_TASK_TYPE else "task",
        "rep_id": rep_id,
        # The time it was planned for: amoCRM keeps no separate completion time.
        "occurred_at": task.time_or_none("complete_till") or task.time("updated_at"),
        "lead_id": entity_id if entity_type == "leads" else None,
        "deal_id": entity_id if entity_type == "leads" else None,
        "account_id": entity_id if entity_type == "companies" else None,
        "outcome": "done", "duration_s": duration if duration else None,
    }


# -- typed frames ------------------------------------------------------------------
def frame(entity: str, rows: list[Row]) -> pd.DataFrame:
    """Rows as a canonical frame; amoCRM gives times as unix seconds."""
    return canonical_frame(entity, rows, epoch_seconds=True)

