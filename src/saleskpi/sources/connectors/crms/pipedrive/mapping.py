"""Pipedrive objects onto the canonical entities (docs/connectors/pipedrive.md).

Each function reads one API object (a ``Record``) and adds its canonical rows,
or its deletion, to a ``Rows`` collection: one collection per batch, in which
the latest version of a record wins, so a batch never holds a row twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from saleskpi.domain.i18n import _
from saleskpi.domain.schema import ENTITIES
from saleskpi.sources.connectors.base import Batch
from saleskpi.sources.connectors.crms.pipedrive.payload import Record
from saleskpi.sources.connectors.frames import canonical_frame

Row = dict[str, Any]
NOTE_PREFIX = "note-"  # notes share the activities table with activities: keep ids apart
# Activities with a date but no time: noon UTC stays on the same calendar day in
# every time zone from UTC-11 to UTC+11, so a day-bucketed KPI counts it on its day.
DATE_ONLY_HOUR = 12


@dataclass
class Lookups:
    """Pipeline and stage names: deals carry only their ids."""

    pipelines: dict[str, str] = field(default_factory=dict)
    stages: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def add_pipeline(self, record: Record) -> None:
        self.pipelines[record.id()] = record.text("name") or record.id()

    def add_stage(self, record: Record) -> None:
        self.stages[record.id()] = (record.text("name") or record.id(),
                                    record.ref("pipeline_id"))

    def stage(self, stage_id: str) -> tuple[str, str | None]:
        """(stage name, pipeline name); a stage deleted since keeps its id as its name."""
        name, pipeline_id = self.stages.get(stage_id, (stage_id, None))
        return name, self.pipeline(pipeline_id)

    def pipeline(self, pipeline_id: str | None) -> str | None:
        if pipeline_id is None:
            return None
        return self.pipelines.get(pipeline_id, pipeline_id)


class Rows:
    """Canonical rows and deletions of one batch; the last word on a record wins."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[tuple[Any, ...], Row]] = {}
        self.deleted: dict[str, dict[str, None]] = {}

    def upsert(self, entity: str, row: Row) -> None:
        key = tuple(row[k] for k in ENTITIES[entity].key)
        self.rows.setdefault(entity, {})[key] = row
        self.deleted.get(entity, {}).pop(str(key[0]), None)

    def delete(self, entity: str, record_id: str) -> None:
        """Delete by the entity's first key column (stage_changes: every row of the deal)."""
        rows = self.rows.get(entity, {})
        for key in [k for k in rows if k[0] == record_id]:
            del rows[key]
        self.deleted.setdefault(entity, {})[record_id] = None

    def batch(self, cursor: dict[str, str], label: str) -> Batch:
        frames = {name: typed_frame(name, rows.values())
                  for name, rows in self.rows.items() if rows}
        deleted = {name: list(ids) for name, ids in self.deleted.items() if ids}
        return Batch(frames=frames, deleted=deleted, cursor=cursor, label=label)


def typed_frame(entity: str, rows: Iterable[Row]) -> pd.DataFrame:
    """Rows as a canonical frame; extra keys become custom fields."""
    return canonical_frame(entity, rows)


def _midnight(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime(day.year, day.month, day.day)


# -- users, organizations, leads -----------------------------------------------------


def add_user(record: Record, rows: Rows) -> None:
    """A user -> reps (every user, active or not: old deals still point to them).

    A user's ``created`` is when the account was made in Pipedrive, not a hire
    date, and ``is_admin`` is a CRM permission, not a sales role: both are kept
    as custom fields only.
    """
    rows.upsert("reps", {
        "id": record.id(),
        "name": record.text("name") or record.text("email") or record.id(),
        "email": record.text("email"),
        "active": record.flag("active_flag"),
        "admin": record.flag("is_admin"),
        "created_at": record.time("created"),
    })


def add_organization(record: Record, rows: Rows) -> None:
    """An organization -> accounts; a deleted (inactive) one is deleted."""
    if record.flag("active_flag") is False or record.flag("is_deleted") is True:
        rows.delete("accounts", record.id())
        return
    rows.upsert("accounts", {
        "id": record.id(),
        "name": record.text("name") or record.id(),
        "rep_id": record.ref("owner_id"),
        "created_at": record.time("add_time"),
    })


def add_lead(record: Record, rows: Rows) -> None:
    """A lead (Leads Inbox) -> leads."""
    created = record.time("add_time")
    if created is None:
        raise record.fail("add_time", _("is missing"))
    rows.upsert("leads", {
        "id": record.id(),
        "created_at": created,
        "rep_id": record.ref("owner_id"),
        "source": record.text("source_name"),
        "status": "archived" if record.flag("is_archived") else "open",
        "account_id": record.ref("organization_id"),
        "title": record.text("title"),
    })


# -- deals and their stage history ---------------------------------------------------

DEAL_STATUSES = {"open", "won", "lost"}


def deal_is_deleted(record: Record) -> bool:
    return (record.text("status") == "deleted" or record.flag("deleted") is True
            or record.flag("is_deleted") is True)  # v1 / API v2


def add_deal(record: Record, rows: Rows, lookups: Lookups) -> None:
    """A deal -> deals; a deleted one (status "deleted") takes its stage history with it."""
    deal_id = record.id()
    if deal_is_deleted(record):
        rows.delete("deals", deal_id)
        rows.delete("stage_changes", deal_id)
        return
    status = record.required_text("status")
    if status not in DEAL_STATUSES:
        raise record.fail("status", _("should be open, won, lost or deleted, got {value}",
                                      value=repr(status)))
    closed_at = None
    if status != "open":
        closed_at = record.time(f"{status}_time") or record.time("close_time")
        if closed_at is None:
            raise record.fail(f"{status}_time", _("is missing"))
    stage_id = record.ref("stage_id")
    stage, stage_pipeline = lookups.stage(stage_id) if stage_id else (None, None)
    owner = "owner_id" if record.has("owner_id") else "user_id"  # API v2 / v1 (recents)
    rep_id = record.ref(owner)
    if rep_id is None:
        raise record.fail(owner, _("is missing"))
    rows.upsert("deals", {
        "id": deal_id,
        "rep_id": rep_id,
        "status": status,
        "created_at": record.time("add_time"),
        "account_id": record.ref("org_id"),
        "pipeline": lookups.pipeline(record.ref("pipeline_id")) or stage_pipeline,
        "stage": stage,
        "amount": record.number("value"),
        "currency": record.text("currency"),
        "closed_at": closed_at,
        "expected_close_at": _midnight(record.date("expected_close_date")),
        "probability": record.number("probability"),
        "lost_reason": record.text("lost_reason") if status == "lost" else None,
        "title": record.text("title"),
        # A custom field: an archived deal counts like any other (a won one is won).
        "archived": bool(record.flag("is_archived")),
    })


def stage_moves(flow: Iterable[Record]) -> list[tuple[dt.datetime, str | None, str]]:
    """(when, from stage id, to stage id) of every stage change in a deal's flow, in order."""
    moves = []
    for entry in flow:
        if entry.data.get("object") != "dealChange":
            continue  # activities, notes, e-mails, participants: not stage history
        change = entry.child("data")
        if change is None or change.text("field_key") != "stage_id":
            continue
        when = change.time("log_time")
        if when is None:
            raise change.fail("log_time", _("is missing"))
        moves.append((when, change.text("old_value"), change.required_text("new_value")))
    return sorted(moves, key=lambda move: move[0])


def add_stage_history(deal: Record, moves: list[tuple[dt.datetime, str | None, str]],
                      rows: Rows, lookups: Lookups) -> None:
    """Stage entries: the first stage at creation, then one row per move."""
    created = deal.time("add_time")
    first = moves[0][1] if moves else deal.ref("stage_id")
    entries: list[tuple[dt.datetime, str]] = []
    if created is not None and first is not None:
        entries.append((created, first))
    entries += [(when, to) for when, _from, to in moves]
    rep_id = deal.ref("owner_id") if deal.has("owner_id") else deal.ref("user_id")
    for when, stage_id in entries:
        stage, pipeline = lookups.stage(stage_id)
        rows.upsert("stage_changes", {
            "deal_id": deal.id(), "stage": stage, "entered_at": when,
            "rep_id": rep_id, "pipeline": pipeline,
        })


# -- activities and notes ------------------------------------------------------------


def add_activity(record: Record, rows: Rows) -> None:
    """A done activity -> activities; planned (not done) or deleted ones are removed."""
    activity_id = record.id()
    if (record.flag("active_flag") is False or record.flag("deleted") is True
            or record.flag("is_deleted") is True):  # v1 / API v2
        rows.delete("activities", activity_id)
        return
    if not record.flag("done"):
        # Only what happened counts; an activity marked undone again leaves the KPIs.
        rows.delete("activities", activity_id)
        return
    kind = record.required_text("type").strip().lower()
    day = record.date("due_date")
    at = record.clock("due_time")
    occurred: dt.datetime | None
    if day is not None and at is not None:
        occurred = dt.datetime.combine(day, at)
    else:
        occurred = record.time("marked_as_done_time")
        if occurred is None and day is not None:
            occurred = dt.datetime(day.year, day.month, day.day, DATE_ONLY_HOUR)
    if occurred is None:
        raise record.fail("due_date", _("is missing"))
    owner = "owner_id" if record.has("owner_id") else "user_id"  # API v2 / v1 (recents)
    rep_id = record.ref(owner)
    if rep_id is None:
        raise record.fail(owner, _("is missing"))
    rows.upsert("activities", {
        "id": activity_id,
        "type": kind,
        "rep_id": rep_id,
        "occurred_at": occurred,
        "lead_id": record.ref("lead_id"),
        "deal_id": record.ref("deal_id"),
        "account_id": record.ref("org_id"),
        "duration_s": record.duration_s("duration"),
        "subject": record.text("subject"),
    })


def add_note(record: Record, rows: Rows) -> None:
    """A note -> activities of type note (ids "note-<id>")."""
    note_id = NOTE_PREFIX + record.id()
    if record.flag("active_flag") is False:
        rows.delete("activities", note_id)
        return
    added = record.time("add_time")
    if added is None:
        raise record.fail("add_time", _("is missing"))
    owner = "owner_id" if record.has("owner_id") else "user_id"  # API v2 / v1 (recents)
    rep_id = record.ref(owner)
    if rep_id is None:
        raise record.fail(owner, _("is missing"))
    rows.upsert("activities", {
        "id": note_id,
        "type": "note",
        "rep_id": rep_id,
        "occurred_at": added,
        "lead_id": record.ref("lead_id"),
        "deal_id": record.ref("deal_id"),
        "account_id": record.ref("org_id"),
    })
