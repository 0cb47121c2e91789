"""Bitrix24 records -> canonical rows (docs/connectors/bitrix24.md has the full table).

Ids stay Bitrix24's own (text). Names replace codes wherever Bitrix24 has a
directory for them: pipelines (deal categories), stages, lead statuses, sources
and industries come from ``crm.category.list`` and ``crm.status.list``, teams and
managers from ``department.get``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from saleskpi.sources.connectors.crms.bitrix24.payload import Item
from saleskpi.sources.connectors.frames import canonical_frame

Row = dict[str, Any]

DEAL_STATUS = {"P": "open", "S": "won", "F": "lost"}
LEAD_STATUS = {"P": "open", "S": "converted", "F": "junk"}
# crm.status.list EXTRA.SEMANTICS (or SEMANTICS) -> the one-letter code deals and leads carry
SEMANTICS = {"process": "P", "success": "S", "failure": "F", "apology": "F",
             "S": "S", "F": "F", "P": "P"}
# crm.activity.list TYPE_ID (CCrmActivityType) and DIRECTION (CCrmActivityDirection)
MEETING, CALL, TASK, EMAIL, PROVIDER = 1, 2, 3, 4, 6
ACTIVITY_TYPES = {MEETING: "meeting", CALL: "call", TASK: "task", EMAIL: "email"}
PROVIDER_TYPES = {"CRM_TODO": "task", "CRM_MEETING": "meeting", "CRM_CALL_LIST": "call",
                  "VOXIMPLANT_CALL": "call", "CRM_EMAIL": "email", "CRM_SMS": "sms",
                  "IMOPENLINES_SESSION": "chat", "CRM_WEBFORM": "webform",
                  "CRM_REQUEST": "task"}
DIRECTIONS = {1: "in", 2: "out"}
# OWNER_TYPE_ID (CCrmOwnerType): what an activity belongs to
OWNER_LEAD, OWNER_DEAL, OWNER_COMPANY = 1, 2, 4


@dataclass
class Directory:
    """The portal's users and code books, for turning ids and codes into names."""

    users: dict[str, Item] = field(default_factory=dict)
    departments: dict[str, tuple[str, str | None, str | None]] = field(
        default_factory=dict)  # id -> (name, head user id, parent department id)
    pipelines: dict[str, str] = field(default_factory=dict)  # category id -> name
    stages: dict[str, tuple[str, str]] = field(default_factory=dict)  # STAGE_ID -> name, P/S/F
    lead_statuses: dict[str, tuple[str, str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    industries: dict[str, str] = field(default_factory=dict)
    # Users referred to but not listed by user.get (bots, integrators): placeholder reps.
    strangers: set[str] = field(default_factory=set)

    def read_status(self, status: Item) -> None:
        entity = status.text("ENTITY_ID") or ""
        code = status.text("STATUS_ID")
        if code is None:
            return
        name = status.text("NAME") or code
        extra = status.child("EXTRA")
        meaning = (extra.text("SEMANTICS") if extra is not None else None) \
            or status.text("SEMANTICS") or "process"
        letter = SEMANTICS.get(meaning, "P")
        if entity == "DEAL_STAGE" or entity.startswith("DEAL_STAGE_"):
            self.stages[code] = (name, letter)
        elif entity == "STATUS":
            self.lead_statuses[code] = (name, letter)
        elif entity == "SOURCE":
            self.sources[code] = name
        elif entity == "INDUSTRY":
            self.industries[code] = name

    def rep(self, user_id: str | None) -> str | None:
        """The user as a rep id; one user.get does not list becomes a placeholder rep."""
        if user_id is not None and user_id not in self.users:
            self.strangers.add(user_id)
        return user_id

    def pipeline(self, category_id: str | None) -> str:
        key = category_id or "0"
        return self.pipelines.get(key, key)

    def stage(self, stage_id: str) -> str:
        return self.stages.get(stage_id, (stage_id, "P"))[0]

    def team_and_manager(self, user: Item) -> tuple[str | None, str | None]:
        """The user's first department, and its head (the parent's, for the head himself)."""
        departments = user.ids("UF_DEPARTMENT")
        if not departments or departments[0] not in self.departments:
            return None, None
        user_id = user.id()
        name, head, parent = self.departments[departments[0]]
        seen = {departments[0]}
        while head in (None, user_id) and parent is not None and parent not in seen:
            seen.add(parent)
            _name, head, parent = self.departments.get(parent, ("", None, None))
        manager = head if head not in (None, user_id) and head in self.users else None
        return name, manager


# -- people and companies ----------------------------------------------------------
def full_name(user: Item) -> str:
    parts = [user.text("NAME"), user.text("LAST_NAME")]
    return " ".join(p for p in parts if p) or user.text("EMAIL") or user.id()


def rep_row(user: Item, directory: Directory) -> Row:
    team, manager = directory.team_and_manager(user)
    return {"id": user.id(), "name": full_name(user), "email": user.text("EMAIL"),
            "team": team, "manager_id": manager, "role": user.text("WORK_POSITION"),
            "active": user.flag("ACTIVE")}


def placeholder_rep_row(user_id: str) -> Row:
    """A user deals or activities name but user.get does not list (a bot, an integrator)."""
    return {"id": user_id, "name": f"Bitrix24 user {user_id}", "placeholder": True}


def account_row(company: Item, directory: Directory) -> Row:
    industry = company.text("INDUSTRY")
    return {
        "id": company.id(), "name": company.text("TITLE") or company.id(), "segment": "b2b",
        "sector": directory.industries.get(industry, industry) if industry else None,
        "rep_id": directory.rep(company.id_or_none("ASSIGNED_BY_ID")),
        "company_type": company.text("COMPANY_TYPE"),
    }


# -- leads and deals ---------------------------------------------------------------
def lead_semantic(lead: Item, directory: Directory) -> str:
    letter = lead.text("STATUS_SEMANTIC_ID")
    if letter not in DEAL_STATUS:
        status = lead.text("STATUS_ID")
        letter = directory.lead_statuses.get(status, ("", "P"))[1] if status else "P"
    return letter or "P"


def lead_row(lead: Item, directory: Directory) -> Row:
    letter = lead_semantic(lead, directory)
    status_id = lead.text("STATUS_ID")
    source = lead.text("SOURCE_ID")
    closed = None
    if letter != "P":
        closed = (lead.time_or_none("DATE_CLOSED") or lead.time_or_none("MOVED_TIME")
                  or lead.time("DATE_MODIFY"))
    return {
        "id": lead.id(), "created_at": lead.time("DATE_CREATE"),
        "rep_id": directory.rep(lead.id_or_none("ASSIGNED_BY_ID")),
        "source": directory.sources.get(source, source) if source else None,
        "status": LEAD_STATUS[letter],
        "qualified_at": closed if letter == "S" else None,
        "lost_at": closed if letter == "F" else None,
        "account_id": lead.id_or_none("COMPANY_ID"),
        "stage": directory.lead_statuses.get(status_id, (status_id, "P"))[0]
        if status_id else None,
        "title": lead.text("TITLE"),
    }


def deal_semantic(deal: Item, directory: Directory) -> str:
    letter = deal.text("STAGE_SEMANTIC_ID")
    if letter not in DEAL_STATUS:
        letter = directory.stages.get(deal.text("STAGE_ID") or "", ("", "P"))[1]
    return letter or "P"


def deal_row(deal: Item, directory: Directory) -> Row:
    rep = deal.id_or_none("ASSIGNED_BY_ID")
    if rep is None:
        deal.id("ASSIGNED_BY_ID")  # raises: a deal must have a responsible user
    status = DEAL_STATUS[deal_semantic(deal, directory)]
    stage_id = deal.text("STAGE_ID")
    close_date = deal.time_or_none("CLOSEDATE")
    closed_at = None
    if status != "open":
        # MOVED_TIME: when it entered the final stage; CLOSEDATE is a date only.
        closed_at = (deal.time_or_none("MOVED_TIME") or close_date
                     or deal.time("DATE_MODIFY"))
    probability = deal.money("PROBABILITY")
    currency = deal.text("CURRENCY_ID")
    return {
        "id": deal.id(), "rep_id": directory.rep(rep), "status": status,
        "created_at": deal.time_or_none("DATE_CREATE"),
        "lead_id": deal.id_or_none("LEAD_ID"), "account_id": deal.id_or_none("COMPANY_ID"),
        "pipeline": directory.pipeline(deal.text("CATEGORY_ID")),
        "stage": directory.stage(stage_id) if stage_id else None,
        "amount": deal.money("OPPORTUNITY"),
        "currency": currency.upper() if currency else None,
        "closed_at": closed_at,
        "expected_close_at": close_date if status == "open" else None,
        "probability": probability / 100 if probability is not None else None,
        # Bitrix24 has no loss-reason field: portals keep reasons as failure stages.
        "lost_reason": directory.stage(stage_id) if status == "lost" and stage_id else None,
        "name": deal.text("TITLE"),
    }


def stage_change_row(entry: Item, directory: Directory) -> Row:
    stage_id = entry.text("STAGE_ID")
    if stage_id is None:
        raise entry.missing("STAGE_ID")
    return {
        "deal_id": entry.id("OWNER_ID"), "stage": directory.stage(stage_id),
        "entered_at": entry.time("CREATED_TIME"),
        "pipeline": directory.pipeline(entry.text("CATEGORY_ID")),
    }


# -- activities -------------------------------------------------------------------
def activity_type(activity: Item) -> str:
    type_id = activity.whole_or_none("TYPE_ID")
    if type_id in ACTIVITY_TYPES:
        return ACTIVITY_TYPES[type_id]
    provider = activity.text("PROVIDER_ID")
    if type_id == PROVIDER and provider:
        return PROVIDER_TYPES.get(provider, provider.lower())
    return "activity"


def happened(activity: Item, kind: str, direction: str | None) -> bool:
    """Planned things count once done; an email or an incoming call counts as it arrives."""
    if activity.flag("COMPLETED"):
        return True
    return kind == "email" or (kind == "call" and direction == "in")


def activity_row(activity: Item, directory: Directory) -> Row | None:
    """A canonical activity, or None for one that has not happened (yet)."""
    kind = activity_type(activity)
    direction = DIRECTIONS.get(activity.whole_or_none("DIRECTION") or 0)
    activity_id = activity.id()
    if not happened(activity, kind, direction):
        return None
    start = activity.time_or_none("START_TIME")
    end = activity.time_or_none("END_TIME")
    occurred = start or activity.time_or_none("CREATED") or activity.time("LAST_UPDATED")
    duration = None
    if kind in ("call", "meeting") and start is not None and end is not None and end >= start:
        duration = int((end - start).total_seconds())
    owner_type = activity.whole_or_none("OWNER_TYPE_ID")
    owner = activity.id_or_none("OWNER_ID")
    rep = activity.id_or_none("RESPONSIBLE_ID")
    if rep is None:
        activity.id("RESPONSIBLE_ID")  # raises: an activity must have a responsible user
    return {
        "id": activity_id, "type": kind, "rep_id": directory.rep(rep),
        "occurred_at": occurred,
        "lead_id": owner if owner_type == OWNER_LEAD else None,
        "deal_id": owner if owner_type == OWNER_DEAL else None,
        "account_id": owner if owner_type == OWNER_COMPANY else None,
        "direction": direction if kind in ("call", "email") else None,
        "duration_s": duration, "subject": activity.text("SUBJECT"),
    }


# -- typed frames --------------------------------------------------------------------
def frame(entity: str, rows: list[Row]) -> pd.DataFrame:
    """Rows as a canonical frame; keys that are no column become custom fields."""
    return canonical_frame(entity, rows)

