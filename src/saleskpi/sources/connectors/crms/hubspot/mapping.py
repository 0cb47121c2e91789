"""HubSpot objects onto the canonical entities (docs/connectors/hubspot.md has the table).

HubSpot sends every property as text; here it becomes typed canonical columns:
timestamps naive UTC, money as float with its currency, ids as text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.crms.hubspot.api import Record, expected, malformed, object_id
from saleskpi.sources.connectors.frames import canonical_frame

# Deals and activities need a rep; records without a (known) HubSpot owner get this one.
UNASSIGNED = "unassigned"
UNASSIGNED_NAME = "(no owner in HubSpot)"

Row = dict[str, Any]


@dataclass(frozen=True)
class ObjectType:
    """A HubSpot object type, the properties read and the entity it becomes."""

    name: str
    entity: str
    properties: tuple[str, ...]
    modified: str = "hs_lastmodifieddate"  # the "last modified" property searched on
    associations: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    activity: str | None = None  # activity type for engagements


ENGAGEMENT = ("hs_timestamp", "hs_createdate", "hubspot_owner_id", "hs_lastmodifieddate")
TO_LINKS = ("contacts", "deals", "companies")
MERGED = "hs_merged_object_ids"

# In dependency order: accounts before the leads and deals that point at them.
OBJECTS: tuple[ObjectType, ...] = (
    ObjectType("companies", "accounts",
               ("name", "domain", "industry", "hubspot_owner_id", "hs_analytics_source",
                "hs_lifecyclestage_customer_date", "createdate", "hs_lastmodifieddate", MERGED)),
    ObjectType("contacts", "leads",
               ("createdate", "hubspot_owner_id", "hs_analytics_source", "hs_lead_status",
                "lifecyclestage", "hs_lifecyclestage_salesqualifiedlead_date",
                "associatedcompanyid", "lastmodifieddate", MERGED),
               modified="lastmodifieddate"),
    ObjectType("deals", "deals",
               ("dealname", "amount", "deal_currency_code", "dealstage", "pipeline",
                "closedate", "createdate", "hubspot_owner_id", "hs_lastmodifieddate",
                "closed_lost_reason", "hs_is_closed", "hs_is_closed_won", MERGED),
               associations=("companies", "contacts"), history=("dealstage",)),
    ObjectType("calls", "activities",
               (*ENGAGEMENT, "hs_call_direction", "hs_call_duration", "hs_call_status"),
               associations=TO_LINKS, activity="call"),
    ObjectType("meetings", "activities",
               (*ENGAGEMENT, "hs_meeting_start_time", "hs_meeting_end_time",
                "hs_meeting_outcome"),
               associations=TO_LINKS, activity="meeting"),
    ObjectType("emails", "activities",
               (*ENGAGEMENT, "hs_email_direction", "hs_email_status"),
               associations=TO_LINKS, activity="email"),
    ObjectType("tasks", "activities", (*ENGAGEMENT, "hs_task_status", "hs_task_type"),
               associations=TO_LINKS, activity="task"),
    ObjectType("notes", "activities", ENGAGEMENT, associations=TO_LINKS, activity="note"),
)
BY_NAME = {o.name: o for o in OBJECTS}

CALL_DIRECTION = {"INBOUND": "in", "OUTBOUND": "out"}
EMAIL_DIRECTION = {"INCOMING_EMAIL": "in", "EMAIL": "out", "FORWARDED_EMAIL": "out"}


@dataclass(frozen=True)
class Stage:
    pipeline: str  # the pipeline's label
    label: str
    status: str  # open, won or lost
    probability: float | None


@dataclass
class Context:
    """What mapping a page needs from the rest of the account."""

    owners: set[str] = field(default_factory=set)
    currency: str | None = None  # the portal's company currency
    pipelines: dict[str, str] = field(default_factory=dict)  # id -> label
    stages: dict[str, Stage] = field(default_factory=dict)  # stage id -> stage


# -- values ---------------------------------------------------------------------------
def parse_time(value: str | None, endpoint: str, where: str) -> dt.datetime | None:
    """ISO 8601 (HubSpot's form) or milliseconds since the epoch, as naive UTC."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    try:
        if text.isdigit():
            stamp = dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
        else:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise malformed(endpoint, where, expected(_("a timestamp"), value)) from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp


def parse_number(value: str | None, endpoint: str, where: str) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise malformed(endpoint, where, expected(_("a number"), value)) from None
    if not np.isfinite(number):
        raise malformed(endpoint, where, expected(_("a number"), value))
    return number


def lower(value: str | None) -> str | None:
    return value.strip().lower() if value and value.strip() else None


def first(ids: list[str] | None) -> str | None:
    return ids[0] if ids else None


def merged_ids(record: Record, endpoint: str) -> list[str]:
    """Records HubSpot merged into this one: gone from the CRM under their old ids."""
    raw = record.properties.get(MERGED) or ""
    where = f"{record.id}.properties.{MERGED}"
    return [object_id(part.strip(), endpoint, where) for part in raw.split(";") if part.strip()]


class Mapper:
    """One page of records to canonical rows, for one object type."""

    def __init__(self, context: Context, endpoint: str) -> None:
        self.context = context
        self.endpoint = endpoint
        self.unassigned_used = False

    def prop(self, record: Record, name: str) -> str | None:
        value = record.properties.get(name)
        return value if value is None or value.strip() else None

    def time(self, record: Record, name: str) -> dt.datetime | None:
        return parse_time(record.properties.get(name), self.endpoint,
                          f"{record.id}.properties.{name}")

    def number(self, record: Record, name: str) -> float | None:
        return parse_number(record.properties.get(name), self.endpoint,
                            f"{record.id}.properties.{name}")

    def owner(self, record: Record, *, required: bool) -> str | None:
        owner = self.prop(record, "hubspot_owner_id")
        if owner is not None and owner in self.context.owners:
            return owner
        if required:
            self.unassigned_used = True
            return UNASSIGNED
        return None

    def required_time(self, record: Record, *names: str) -> dt.datetime:
        for name in names:
            stamp = self.time(record, name)
            if stamp is not None:
                return stamp
        raise malformed(self.endpoint, f"{record.id}.properties.{names[0]}", _("is missing"))

    # -- entities ---------------------------------------------------------------------
    def account(self, record: Record) -> Row:
        return {
            "id": record.id,
            "name": (self.prop(record, "name") or self.prop(record, "domain")
                     or f"HubSpot company {record.id}"),
            "sector": self.prop(record, "industry"),
            "source": lower(self.prop(record, "hs_analytics_source")),
            "acquired_at": self.time(record, "hs_lifecyclestage_customer_date"),
            "rep_id": self.owner(record, required=False),
            "domain": self.prop(record, "domain"),
        }

    def lead(self, record: Record) -> Row:
        return {
            "id": record.id,
            "created_at": self.required_time(record, "createdate"),
            "rep_id": self.owner(record, required=False),
            "source": lower(self.prop(record, "hs_analytics_source")),
            "status": lower(self.prop(record, "hs_lead_status")),
            "qualified_at": self.time(record, "hs_lifecyclestage_salesqualifiedlead_date"),
            "account_id": self.prop(record, "associatedcompanyid"),
            "lifecycle_stage": lower(self.prop(record, "lifecyclestage")),
        }

    def deal(self, record: Record) -> tuple[Row, list[Row]]:
        stage_id = self.prop(record, "dealstage")
        pipeline_id = self.prop(record, "pipeline")
        stage = self.context.stages.get(stage_id or "")
        pipeline = stage.pipeline if stage else self.context.pipelines.get(
            pipeline_id or "", pipeline_id)
        if stage is not None:
            status = stage.status
        elif self.prop(record, "hs_is_closed_won") == "true":
            status = "won"
        elif self.prop(record, "hs_is_closed") == "true":
            status = "lost"
        else:
            status = "open"
        history = [(value, parse_time(stamp, self.endpoint,
                                      f"{record.id}.propertiesWithHistory.dealstage"))
                   for value, stamp in record.history.get("dealstage", []) if value]
        close_date = self.time(record, "closedate")
        closed_at = expected_close = None
        if status == "open":
            expected_close = close_date
        else:
            entered = [stamp for value, stamp in history if value == stage_id and stamp]
            closed_at = (close_date or (max(entered) if entered else None)
                         or self.time(record, "hs_lastmodifieddate"))
        amount = self.number(record, "amount")
        row = {
            "id": record.id,
            "rep_id": self.owner(record, required=True),
            "status": status,
            "created_at": self.time(record, "createdate"),
            "lead_id": first(record.associations.get("contacts")),
            "account_id": first(record.associations.get("companies")),
            "pipeline": pipeline,
            "stage": stage.label if stage else stage_id,
            "amount": amount,
            "currency": (self.prop(record, "deal_currency_code") or self.context.currency
                         if amount is not None else None),
            "closed_at": closed_at,
            "expected_close_at": expected_close,
            "probability": stage.probability if stage else None,
            "lost_reason": self.prop(record, "closed_lost_reason") if status == "lost" else None,
            "name": self.prop(record, "dealname"),
        }
        changes: dict[tuple[str, dt.datetime], Row] = {}
        for value, stamp in history:
            if stamp is None:
                continue
            entered_stage = self.context.stages.get(value or "")
            label = entered_stage.label if entered_stage else value or ""
            changes[(label, stamp)] = {
                "deal_id": record.id, "stage": label, "entered_at": stamp,
                "pipeline": entered_stage.pipeline if entered_stage else pipeline,
            }
        return row, list(changes.values())

    def activity(self, record: Record, kind: str) -> Row:
        row: Row = {
            "id": record.id,
            "type": kind,
            "rep_id": self.owner(record, required=True),
            "occurred_at": self.required_time(record, "hs_timestamp", "hs_createdate"),
            "lead_id": first(record.associations.get("contacts")),
            "deal_id": first(record.associations.get("deals")),
            "account_id": first(record.associations.get("companies")),
        }
        if kind == "call":
            row["direction"] = CALL_DIRECTION.get(self.prop(record, "hs_call_direction") or "")
            millis = self.number(record, "hs_call_duration")
            row["duration_s"] = round(millis / 1000) if millis is not None else None
            row["outcome"] = lower(self.prop(record, "hs_call_status"))
        elif kind == "meeting":
            start = self.time(record, "hs_meeting_start_time")
            end = self.time(record, "hs_meeting_end_time")
            row["duration_s"] = (round((end - start).total_seconds())
                                 if start and end and end >= start else None)
            row["outcome"] = lower(self.prop(record, "hs_meeting_outcome"))
        elif kind == "email":
            row["direction"] = EMAIL_DIRECTION.get(self.prop(record, "hs_email_direction") or "")
            row["outcome"] = lower(self.prop(record, "hs_email_status"))
        elif kind == "task":
            row["outcome"] = lower(self.prop(record, "hs_task_status"))
            row["task_type"] = lower(self.prop(record, "hs_task_type"))
        return row


def rep_row(owner: dict[str, Any], endpoint: str, index: int) -> Row:
    """An owner (active or deactivated) as a rep."""
    where = f"results[{index}]"
    owner_id = object_id(owner.get("id"), endpoint, f"{where}.id")
    for name in ("firstName", "lastName", "email", "updatedAt"):
        if owner.get(name) is not None and not isinstance(owner[name], str):
            raise malformed(endpoint, f"{where}.{name}", expected(_("text"), owner[name]))
    name = " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p).strip()
    teams = owner.get("teams") or []
    if not isinstance(teams, list):
        raise malformed(endpoint, f"{where}.teams", expected(_("a list"), teams))
    named = [t for t in teams if isinstance(t, dict) and isinstance(t.get("name"), str)]
    team_names: list[str] = [t["name"] for t in named]
    primary: list[str] = [t["name"] for t in named if t.get("primary")]
    left = None
    if owner.get("archived") is True:
        left = parse_time(owner.get("updatedAt"), endpoint, f"{where}.updatedAt")
    return {
        "id": owner_id,
        "name": name or owner.get("email") or f"HubSpot owner {owner_id}",
        "email": owner.get("email") or None,
        "team": first(primary) or first(team_names),
        "left_at": left.replace(hour=0, minute=0, second=0, microsecond=0) if left else None,
    }


def unassigned_rep() -> Row:
    return {"id": UNASSIGNED, "name": UNASSIGNED_NAME}


def stages_from(pipelines: list[dict[str, Any]], endpoint: str) -> Context:
    """Pipelines and stages; a closed stage with probability 1 is won, else lost."""
    context = Context()
    for i, pipeline in enumerate(pipelines):
        where = f"results[{i}]"
        pipeline_id = object_id(pipeline.get("id"), endpoint, f"{where}.id")
        label = pipeline.get("label")
        label = label if isinstance(label, str) and label else pipeline_id
        context.pipelines[pipeline_id] = label
        stages = pipeline.get("stages") or []
        if not isinstance(stages, list):
            raise malformed(endpoint, f"{where}.stages", expected(_("a list"), stages))
        for j, stage in enumerate(stages):
            at = f"{where}.stages[{j}]"
            if not isinstance(stage, dict):
                raise malformed(endpoint, at, expected(_("an object"), stage))
            stage_id = object_id(stage.get("id"), endpoint, f"{at}.id")
            meta = stage.get("metadata") or {}
            if not isinstance(meta, dict):
                raise malformed(endpoint, f"{at}.metadata", expected(_("an object"), meta))
            closed = str(meta.get("isClosed", "false")).lower() == "true"
            probability = parse_number(
                None if meta.get("probability") is None else str(meta["probability"]),
                endpoint, f"{at}.metadata.probability")
            if closed:
                status = "won" if probability is not None and probability >= 1.0 else "lost"
            else:
                status = "open"
            stage_label = stage.get("label")
            context.stages[stage_id] = Stage(
                label, stage_label if isinstance(stage_label, str) and stage_label else stage_id,
                status, probability)
    return context


# -- frames -----------------------------------------------------------------------------
def frame(entity: str, rows: list[Row]) -> pd.DataFrame:
    """Rows as a canonical frame; other keys become custom fields."""
    return canonical_frame(entity, rows)

