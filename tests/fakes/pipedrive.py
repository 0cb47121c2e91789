"""A fake Pipedrive (API v1 and v2, as of 2026) over real HTTP, with a small company in it.

v2 (``/api/v2/deals``, ``/deals/archived``, ``/organizations``, ``/activities``,
``/pipelines``, ``/stages``) pages with an opaque ``cursor``/``next_cursor`` and
sends RFC 3339 times, plain ids, ``owner_id``, ``is_deleted``/``is_archived``.
As Pipedrive's v2 reference documents: ``updated_since`` (``update_time`` at or
after it) on deals, organizations and activities, and on v1 notes; deals take
``status`` with ``deleted`` (the only v2 list that shows deleted records);
activities take ``done``. As Pipedrive does since July 2025, archived deals and
leads are listed only by the ``/archived`` endpoints. Deal flows take ``items``
(e.g. ``dealChange``).

The company lives in plain dataclasses (``PipedriveData``); the routes render
it in Pipedrive's documented response shapes (``{success, data,
additional_data.pagination}``, v1 deals with embedded user and organization
objects, ``/v1/recents`` with ``last_timestamp_on_page``, deal flows with
``dealChange`` entries). Pages are tiny (``page_limit``) so that every list
spans several pages. ``write_canonical_csv`` writes the same company as the
product's native CSV files, by hand from the dataclasses, so tests can compare
a sync against a file import without trusting the connector's mapping.

Faults: ``FakeApi.fail`` (429, 5xx), ``expire_token`` (401), ``malformed``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.server import FakeApi, Request, Response, serve

TOKEN = "pd-4f9c2e7a1b8d4c3e9f0a6b5c7d8e9f01"


def stamp(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def T(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@dataclass
class User:
    id: int
    name: str
    email: str
    created: dt.datetime
    active: bool = True
    admin: bool = False


@dataclass
class Stage:
    id: int
    name: str
    pipeline_id: int
    order: int


@dataclass
class Org:
    id: int
    name: str
    owner: int
    added: dt.datetime
    updated: dt.datetime
    active: bool = True


@dataclass
class Lead:
    id: str
    title: str
    owner: int
    added: dt.datetime
    source: str
    org: int | None = None
    archived: bool = False
    amount: float | None = None
    updated: dt.datetime | None = None


@dataclass
class Deal:
    id: int
    title: str
    owner: int
    org: int | None
    value: float
    currency: str
    added: dt.datetime
    history: list[tuple[int, dt.datetime]]  # (stage id, entered); the first is at `added`
    status: str = "open"
    won_time: dt.datetime | None = None
    lost_time: dt.datetime | None = None
    lost_reason: str | None = None
    deleted: bool = False
    expected_close: dt.date | None = None
    updated: dt.datetime | None = None
    archived: bool = False  # listed only by /v1/deals/archived (Pipedrive, since July 2025)


@dataclass
class Activity:
    id: int
    type: str
    owner: int
    due_date: dt.date
    due_time: str | None  # "HH:MM" UTC, None for a whole-day activity
    done: bool
    added: dt.datetime
    duration: str | None = None
    deal: int | None = None
    lead: str | None = None
    org: int | None = None
    done_time: dt.datetime | None = None
    active: bool = True
    subject: str = ""
    updated: dt.datetime | None = None


@dataclass
class Note:
    id: int
    owner: int
    added: dt.datetime
    content: str
    deal: int | None = None
    lead: str | None = None
    org: int | None = None
    active: bool = True
    updated: dt.datetime | None = None


@dataclass
class PipedriveData:
    users: dict[int, User] = field(default_factory=dict)
    pipelines: dict[int, str] = field(default_factory=dict)
    stages: dict[int, Stage] = field(default_factory=dict)
    orgs: dict[int, Org] = field(default_factory=dict)
    leads: dict[str, Lead] = field(default_factory=dict)
    deals: dict[int, Deal] = field(default_factory=dict)
    activities: dict[int, Activity] = field(default_factory=dict)
    notes: dict[int, Note] = field(default_factory=dict)


def seed() -> PipedriveData:
    """A small company: 4 users (one gone), 2 pipelines, 7 deals, calls and meetings."""
    d = PipedriveData()
    for user in (
        User(1, "Olena Koval", "olena@acme.example", T("2023-01-02 09:00:00"), admin=True),
        User(2, "James Smith", "james@acme.example", T("2023-02-01 09:00:00")),
        User(3, "Maria Ivanova", "maria@acme.example", T("2023-06-01 09:00:00")),
        User(4, "Petro Former", "petro@acme.example", T("2022-05-01 09:00:00"), active=False),
    ):
        d.users[user.id] = user
    d.pipelines = {1: "Sales", 2: "Partners"}
    for stage in (Stage(1, "Qualified", 1, 1), Stage(2, "Contact Made", 1, 2),
                  Stage(3, "Proposal Made", 1, 3), Stage(4, "Negotiations Started", 1, 4),
                  Stage(5, "Intro", 2, 1), Stage(6, "Contract", 2, 2)):
        d.stages[stage.id] = stage
    for org in (Org(11, "Northwind Ltd", 1, T("2023-10-01 10:00:00"), T("2024-01-05 10:00:00")),
                Org(12, "Bluebird GmbH", 2, T("2023-11-01 10:00:00"), T("2024-01-06 10:00:00")),
                Org(13, "Redwood LLC", 3, T("2023-12-01 10:00:00"), T("2024-01-07 10:00:00")),
                Org(14, "Harbour Foods", 1, T("2024-01-02 10:00:00"), T("2024-01-08 10:00:00")),
                Org(15, "Summit AG", 2, T("2024-01-03 10:00:00"), T("2024-01-09 10:00:00"))):
        d.orgs[org.id] = org
    for lead in (
        Lead("2c1f1a10-0e10-11eb-879b-05d71fb426e1", "Website enquiry", 1,
             T("2024-01-08 08:30:00"), "Web forms", org=11, amount=1000.0),
        Lead("2c1f1a10-0e10-11eb-879b-05d71fb426e2", "Trade fair contact", 2,
             T("2024-01-20 11:00:00"), "Manually created", org=12),
        Lead("2c1f1a10-0e10-11eb-879b-05d71fb426e3", "Chatbot visitor", 3,
             T("2024-02-11 15:45:00"), "Chatbot"),
        Lead("2c1f1a10-0e10-11eb-879b-05d71fb426e4", "Cold list", 3,
             T("2024-02-28 09:10:00"), "Prospector", archived=True),
        Lead("2c1f1a10-0e10-11eb-879b-05d71fb426e5", "Partner referral", 1,
             T("2024-03-05 13:20:00"), "API", org=15),
    ):
        d.leads[lead.id] = lead
    for deal in (
        Deal(1, "Northwind rollout", 1, 11, 1200.0, "EUR", T("2024-01-10 09:00:00"),
             [(1, T("2024-01-10 09:00:00")), (2, T("2024-01-12 10:00:00")),
              (3, T("2024-01-20 14:00:00"))],
             status="won", won_time=T("2024-02-01 12:00:00")),
        Deal(2, "Harbour pilot", 1, 14, 800.0, "EUR", T("2024-02-05 10:00:00"),
             [(1, T("2024-02-05 10:00:00"))], expected_close=dt.date(2024, 6, 30)),
        Deal(3, "Bluebird partnership", 2, 12, 5000.0, "EUR", T("2024-01-15 09:30:00"),
             [(5, T("2024-01-15 09:30:00")), (6, T("2024-02-01 16:00:00"))],
             status="lost", lost_time=T("2024-03-01 11:00:00"), lost_reason="Price"),
        Deal(4, "Small order", 2, None, 300.0, "EUR", T("2024-03-10 12:00:00"),
             [(1, T("2024-03-10 12:00:00"))]),
        Deal(5, "Redwood platform", 3, 13, 2500.0, "EUR", T("2024-02-20 08:00:00"),
             [(1, T("2024-02-20 08:00:00")), (2, T("2024-02-22 09:00:00")),
              (3, T("2024-03-01 10:00:00")), (4, T("2024-03-15 15:00:00"))]),
        Deal(6, "Summit licences", 3, 15, 1500.0, "EUR", T("2024-03-01 09:00:00"),
             [(1, T("2024-03-01 09:00:00"))], status="won", won_time=T("2024-04-02 10:00:00")),
        Deal(7, "Old Northwind upsell", 4, 11, 700.0, "EUR", T("2023-11-01 09:00:00"),
             [(1, T("2023-11-01 09:00:00"))], status="lost", lost_time=T("2023-12-01 09:00:00"),
             lost_reason="No budget"),
    ):
        d.deals[deal.id] = deal
    day = dt.date.fromisoformat
    for activity in (
        Activity(101, "call", 1, day("2024-01-10"), "09:30", True, T("2024-01-10 09:00:00"),
                 "00:15", deal=1, org=11, subject="Intro call"),
        Activity(102, "meeting", 1, day("2024-01-12"), "10:00", True, T("2024-01-11 08:00:00"),
                 "01:00", deal=1, org=11, subject="Demo"),
        Activity(103, "email", 1, day("2024-02-05"), "11:00", True, T("2024-02-05 10:30:00"),
                 deal=2, subject="Proposal sent"),
        Activity(104, "call", 2, day("2024-01-16"), "14:00", True, T("2024-01-16 13:00:00"),
                 "00:05", deal=3, subject="Follow-up"),
        Activity(105, "call", 2, day("2024-01-21"), "10:00", True, T("2024-01-21 09:00:00"),
                 "00:20", lead="2c1f1a10-0e10-11eb-879b-05d71fb426e2", subject="Qualify"),
        Activity(106, "meeting", 3, day("2024-02-23"), "09:00", True, T("2024-02-22 09:00:00"),
                 "00:45", deal=5, org=13, subject="Workshop"),
        Activity(107, "task", 3, day("2024-03-02"), None, True, T("2024-03-01 09:00:00"),
                 deal=6, done_time=T("2024-03-02 16:30:00"), subject="Send contract"),
        Activity(108, "deadline", 3, day("2024-03-20"), None, True, T("2024-03-18 09:00:00"),
                 deal=5, subject="Decision due"),
        # Planned, not done: not an activity that happened.
        Activity(109, "call", 1, day("2024-12-20"), "09:00", False, T("2024-03-20 09:00:00"),
                 deal=2, subject="Check-in"),
    ):
        d.activities[activity.id] = activity
    for note in (
        Note(201, 1, T("2024-01-12 11:00:00"), "Liked the demo", deal=1, org=11),
        Note(202, 2, T("2024-01-22 09:00:00"), "Call back in spring",
             lead="2c1f1a10-0e10-11eb-879b-05d71fb426e2"),
        Note(203, 3, T("2024-03-02 10:00:00"), "Budget approved", deal=6, org=15),
        Note(204, 3, T("2024-03-16 10:00:00"), "Legal review", deal=5, org=13),
    ):
        d.notes[note.id] = note
    return d


class FakePipedrive:
    """The fake company and its HTTP API."""

    def __init__(self, token: str = TOKEN, page_limit: int = 3) -> None:
        self.token = token
        self.page_limit = page_limit
        self.data = seed()
        self.api = FakeApi()
        # endpoint -> "missing_id" | "wrong_type" | "not_json"
        self.malformed: dict[str, str] = {}
        self._next_id = 1000
        routes: dict[str, Any] = {
            "/v1/users/me": self._me, "/v1/users": self._users,
            "/v1/pipelines": self._pipelines, "/v1/stages": self._stages,
            "/v1/organizations": self._organizations, "/v1/leads": self._leads,
            "/v1/deals": self._deals, "/v1/deals/": self._flow,
            "/v1/deals/archived": self._archived_deals,
            "/v1/leads/archived": self._archived_leads,
            "/v1/activities": self._activities, "/v1/notes": self._notes,
            "/v1/recents": self._recents,
            # API v2 (cursor pagination, RFC 3339 times, no related objects)
            "/api/v2/deals": self._deals_v2, "/api/v2/deals/archived": self._archived_deals_v2,
            "/api/v2/pipelines": self._pipelines_v2, "/api/v2/stages": self._stages_v2,
            "/api/v2/organizations": self._organizations_v2,
            "/api/v2/activities": self._activities_v2,
        }
        for path, handler in routes.items():
            self.api.route("GET", path)(self._guarded(path, handler))

    # -- lifecycle and faults ------------------------------------------------------

    @property
    def url(self) -> str:
        return self.api.url

    def serve(self) -> Iterator[FakePipedrive]:
        for _api in serve(self.api):
            yield self

    def expire_token(self) -> None:
        self.token = "pd-rotated-" + uuid.uuid4().hex

    def fail_page(self, path: str, start: int, status: int, *, times: int = 1,
                  retry_after: str | None = "0") -> None:
        """Answer GET ``path`` at ``start`` with ``status`` (``times`` times)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.api.fail(
            lambda r: r.path == path and self.offset(r) == start,
            Response(status, {"success": False, "error": "busy", "errorCode": status},
                     headers), times=times)

    @staticmethod
    def offset(request: Request) -> int:
        """Where a page starts: ``start`` (v1) or the opaque v2 ``cursor`` decoded."""
        cursor = request.arg("cursor")
        if cursor:
            return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":")[1])
        return int(request.arg("start", "0") or 0)

    def clear_faults(self) -> None:
        self.api.faults.clear()
        self.malformed.clear()

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.api.log if r.path == path]

    # -- changes, stamped with the current time --------------------------------------

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_user(self, name: str, email: str) -> User:
        user = User(max(self.data.users) + 1, name, email, utc_now())
        self.data.users[user.id] = user
        return user

    def add_lead(self, title: str, owner: int, source: str = "Web forms") -> Lead:
        lead = Lead(str(uuid.uuid4()), title, owner, utc_now(), source)
        self.data.leads[lead.id] = lead
        return lead

    def add_deal(self, title: str, owner: int, value: float, *, won: bool = False,
                 archived: bool = False) -> Deal:
        """A deal added (and won) a week ago, archived or not."""
        added = utc_now() - dt.timedelta(days=7)
        deal = Deal(self.new_id(), title, owner, None, value, "EUR", added, [(1, added)],
                    status="won" if won else "open",
                    won_time=added + dt.timedelta(days=1) if won else None, archived=archived)
        self.data.deals[deal.id] = deal
        return deal

    def archive_deal(self, deal_id: int) -> None:
        deal = self.data.deals[deal_id]
        deal.archived, deal.updated = True, utc_now()

    def archive_lead(self, lead_id: str) -> None:
        lead = self.data.leads[lead_id]
        lead.archived, lead.updated = True, utc_now()

    def win_deal(self, deal_id: int) -> None:
        deal = self.data.deals[deal_id]
        deal.status, deal.won_time, deal.updated = "won", utc_now(), utc_now()

    def move_deal(self, deal_id: int, stage_id: int) -> None:
        deal = self.data.deals[deal_id]
        deal.history.append((stage_id, utc_now()))
        deal.updated = utc_now()

    def delete_deal(self, deal_id: int) -> None:
        deal = self.data.deals[deal_id]
        deal.deleted, deal.updated = True, utc_now()

    def add_activity(self, kind: str, owner: int, *, deal: int | None = None,
                     duration: str | None = "00:10") -> Activity:
        now = utc_now()
        activity = Activity(self.new_id(), kind, owner, now.date(), now.strftime("%H:%M"), True,
                            now, duration, deal=deal, done_time=now, subject=f"New {kind}")
        self.data.activities[activity.id] = activity
        return activity

    def delete_activity(self, activity_id: int) -> None:
        activity = self.data.activities[activity_id]
        activity.active, activity.updated = False, utc_now()

    # -- rendering in Pipedrive's shapes -----------------------------------------------

    def _user_ref(self, user_id: int) -> dict[str, Any]:
        user = self.data.users[user_id]
        return {"id": user.id, "name": user.name, "email": user.email, "has_pic": 0,
                "pic_hash": None, "active_flag": user.active, "value": user.id}

    def user_json(self, user: User) -> dict[str, Any]:
        return {"id": user.id, "name": user.name, "default_currency": "EUR", "locale": "en_US",
                "lang": 1, "email": user.email, "phone": None, "activated": True,
                "last_login": "2024-04-01 08:00:00", "created": stamp(user.created),
                "modified": stamp(user.created), "has_created_company": user.admin,
                "access": [{"app": "sales", "admin": user.admin, "permission_set_id": "1"}],
                "active_flag": user.active, "timezone_name": "Europe/Kyiv",
                "timezone_offset": "+02:00", "role_id": 1, "icon_url": None, "is_you": False,
                "is_admin": int(user.admin)}

    def org_json(self, org: Org) -> dict[str, Any]:
        return {"id": org.id, "company_id": 77, "owner_id": self._user_ref(org.owner),
                "name": org.name, "open_deals_count": 0, "related_open_deals_count": 0,
                "closed_deals_count": 0, "people_count": 1, "add_time": stamp(org.added),
                "update_time": stamp(org.updated), "visible_to": "3",
                "active_flag": org.active, "label": None, "address": None,
                "cc_email": "acme@pipedrivemail.com", "owner_name": self.data.users[org.owner].name}

    def lead_json(self, lead: Lead) -> dict[str, Any]:
        return {"id": lead.id, "title": lead.title, "owner_id": lead.owner,
                "creator_id": lead.owner, "label_ids": [], "person_id": None,
                "organization_id": lead.org, "source_name": lead.source,
                "origin": "ManuallyCreated", "origin_id": None, "channel": None,
                "channel_id": None, "is_archived": lead.archived, "was_seen": True,
                "value": None if lead.amount is None else {"amount": lead.amount,
                                                            "currency": "EUR"},
                "expected_close_date": None, "next_activity_id": None,
                "add_time": iso(lead.added), "update_time": iso(lead.updated or lead.added),
                "visible_to": "3", "cc_email": "acme+lead@pipedrivemail.com"}

    def deal_json(self, deal: Deal) -> dict[str, Any]:
        stage_id, _entered = deal.history[-1]
        stage = self.data.stages[stage_id]
        org = self.data.orgs.get(deal.org) if deal.org else None
        closed = deal.won_time or deal.lost_time
        return {
            "id": deal.id, "creator_user_id": self._user_ref(deal.owner),
            "user_id": self._user_ref(deal.owner), "person_id": None,
            "org_id": None if org is None else {
                "name": org.name, "people_count": 1, "owner_id": org.owner, "address": None,
                "active_flag": org.active, "cc_email": "acme@pipedrivemail.com",
                "value": org.id},
            "stage_id": stage_id, "title": deal.title, "value": deal.value,
            "currency": deal.currency, "add_time": stamp(deal.added),
            "update_time": stamp(deal.updated or closed or deal.history[-1][1]),
            "stage_change_time": stamp(deal.history[-1][1]) if len(deal.history) > 1 else None,
            "active": deal.status == "open" and not deal.deleted, "deleted": deal.deleted,
            "status": "deleted" if deal.deleted else deal.status, "probability": None,
            "next_activity_date": None, "next_activity_time": None, "next_activity_id": None,
            "last_activity_id": None, "last_activity_date": None,
            "lost_reason": deal.lost_reason, "visible_to": "3", "close_time": stamp(closed),
            "pipeline_id": stage.pipeline_id, "won_time": stamp(deal.won_time),
            "first_won_time": stamp(deal.won_time), "lost_time": stamp(deal.lost_time),
            "products_count": 0, "files_count": 0, "notes_count": 0, "followers_count": 1,
            "email_messages_count": 0, "activities_count": 0, "done_activities_count": 0,
            "undone_activities_count": 0, "participants_count": 0,
            "expected_close_date": deal.expected_close.isoformat() if deal.expected_close
            else None,
            "last_incoming_mail_time": None, "last_outgoing_mail_time": None, "label": None,
            "stage_order_nr": stage.order, "person_name": None,
            "org_name": None if org is None else org.name,
            "next_activity_subject": None, "next_activity_type": None,
            "next_activity_duration": None, "next_activity_note": None,
            "formatted_value": f"€{deal.value:,.0f}", "weighted_value": deal.value,
            "formatted_weighted_value": f"€{deal.value:,.0f}", "weighted_value_currency": "EUR",
            "rotten_time": None, "owner_name": self.data.users[deal.owner].name,
            "cc_email": "acme+deal1@pipedrivemail.com", "org_hidden": False,
            "person_hidden": False, "origin": "ManuallyCreated", "origin_id": None,
            "channel": None, "channel_id": None, "is_archived": deal.archived,
            "archive_time": stamp(deal.updated) if deal.archived else None,
        }

    def deal_json_v2(self, deal: Deal) -> dict[str, Any]:
        """A deal in API v2's shape: ids as numbers, RFC 3339 times, ``custom_fields``."""
        v1 = self.deal_json(deal)

        def rfc(field: str) -> str | None:
            value = v1[field]
            return None if value is None else value.replace(" ", "T") + "Z"

        stage_id, _entered = deal.history[-1]
        return {
            "id": deal.id, "title": deal.title, "creator_user_id": deal.owner,
            "owner_id": deal.owner, "value": deal.value, "person_id": None,
            "org_id": deal.org, "stage_id": stage_id,
            "pipeline_id": self.data.stages[stage_id].pipeline_id,
            "currency": deal.currency, "add_time": rfc("add_time"),
            "update_time": rfc("update_time"), "stage_change_time": rfc("stage_change_time"),
            "is_deleted": deal.deleted, "is_archived": deal.archived,
            "archive_time": rfc("archive_time"), "status": deal.status,
            "probability": None, "lost_reason": deal.lost_reason, "visible_to": 3,
            "close_time": rfc("close_time"), "won_time": rfc("won_time"),
            "lost_time": rfc("lost_time"), "expected_close_date": v1["expected_close_date"],
            "label_ids": [], "origin": "ManuallyCreated", "origin_id": None,
            "channel": None, "channel_id": None, "acv": None, "arr": None, "mrr": None,
            "custom_fields": {},
        }

    def activity_json(self, a: Activity) -> dict[str, Any]:
        deal = self.data.deals.get(a.deal) if a.deal else None
        return {"id": a.id, "company_id": 77, "user_id": a.owner, "done": a.done, "type": a.type,
                "reference_type": "none", "reference_id": None,
                "conference_meeting_client": None, "conference_meeting_url": None,
                "due_date": a.due_date.isoformat(), "due_time": a.due_time or "",
                "duration": a.duration or "", "busy_flag": False, "add_time": stamp(a.added),
                "marked_as_done_time": stamp(a.done_time) or "",
                "last_notification_time": None, "last_notification_user_id": None,
                "notification_language_id": None, "subject": a.subject,
                "public_description": "", "calendar_sync_include_context": None,
                "location": None, "org_id": a.org, "person_id": None, "deal_id": a.deal,
                "lead_id": a.lead, "project_id": None, "active_flag": a.active,
                "update_time": stamp(a.updated or a.done_time or a.added),
                "update_user_id": None, "source_timezone": None, "note": None,
                "created_by_user_id": a.owner, "attendees": None, "participants": None,
                "org_name": None, "person_name": None,
                "deal_title": None if deal is None else deal.title,
                "owner_name": self.data.users[a.owner].name, "assigned_to_user_id": a.owner,
                "type_name": a.type.title(), "file": None}

    def note_json(self, n: Note) -> dict[str, Any]:
        return {"id": n.id, "user_id": n.owner, "deal_id": n.deal, "person_id": None,
                "org_id": n.org, "lead_id": n.lead, "content": f"<p>{n.content}</p>",
                "add_time": stamp(n.added), "update_time": stamp(n.updated or n.added),
                "active_flag": n.active, "pinned_to_deal_flag": False,
                "pinned_to_person_flag": False, "pinned_to_organization_flag": False,
                "pinned_to_lead_flag": False, "last_update_user_id": None,
                "organization": None, "person": None, "deal": None,
                "user": {"email": self.data.users[n.owner].email,
                         "name": self.data.users[n.owner].name, "icon_url": None,
                         "is_you": False}}

    def flow_json(self, deal: Deal) -> list[dict[str, Any]]:
        """The deal's updates, newest first: stage changes among other noise."""
        entries: list[tuple[dt.datetime, dict[str, Any]]] = []

        def change(when: dt.datetime, key: str, old: Any, new: Any) -> None:
            entries.append((when, {"object": "dealChange", "timestamp": stamp(when), "data": {
                "id": len(entries) + 9000, "item_id": deal.id, "user_id": deal.owner,
                "field_key": key, "old_value": old, "new_value": new,
                "is_bulk_update_flag": None, "log_time": stamp(when), "change_source": "app",
                "change_source_user_agent": None, "additional_data": {}}}))

        change(deal.added, "add_time", None, stamp(deal.added))
        for (old, _t), (new, entered) in zip(deal.history, deal.history[1:], strict=False):
            change(entered, "stage_id", str(old), str(new))
        change(deal.added + dt.timedelta(minutes=5), "value", None, str(deal.value))
        for activity in self.data.activities.values():
            if activity.deal == deal.id:
                entries.append((activity.added, {"object": "activity",
                                                 "timestamp": stamp(activity.added),
                                                 "data": self.activity_json(activity)}))
        entries.sort(key=lambda e: e[0], reverse=True)
        return [entry for _when, entry in entries]

    # -- routes --------------------------------------------------------------------------

    def _guarded(self, path: str, handler: Any) -> Any:
        def handle(request: Request) -> Response:
            if request.headers.get("x-api-token") != self.token:
                return Response(401, {"success": False, "error": "unauthorized access",
                                      "errorCode": 401, "error_info": "Please check "
                                      "developers.pipedrive.com for more information."})
            response: Response = handler(request)
            return self._corrupt(path, response)
        return handle

    def _corrupt(self, path: str, response: Response) -> Response:
        kind = self.malformed.get(path)
        if kind is None or not isinstance(response.body, dict):
            return response
        if kind == "not_json":
            return Response(200, b"<html><body>502 Bad Gateway</body></html>",
                            {"Content-Type": "text/html"})
        items = response.body.get("data") or []
        if items:
            if kind == "missing_id":
                items[-1].pop("id", None)
            elif kind == "wrong_type":
                items[-1]["value" if "value" in items[-1] else "add_time"] = {"amount": "lots"}
        return response

    def _page(self, request: Request, items: list[dict[str, Any]],
              **additional: Any) -> Response:
        start = int(request.arg("start", "0") or 0)
        limit = min(int(request.arg("limit", "100") or 100), self.page_limit)
        chunk = items[start:start + limit]
        more = start + limit < len(items)
        pagination: dict[str, Any] = {"start": start, "limit": limit,
                                      "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return Response(200, {"success": True, "data": chunk or None,
                              "additional_data": {**additional, "pagination": pagination}})

    def _me(self, request: Request) -> Response:
        me = self.user_json(self.data.users[1])
        me.update(company_id=77, company_name="Acme Trading", company_domain="acme")
        return Response(200, {"success": True, "data": me})

    def _users(self, request: Request) -> Response:
        return self._page(request, [self.user_json(u) for u in self.data.users.values()])

    def _pipelines(self, request: Request) -> Response:
        return self._page(request, [{"id": i, "name": n, "url_title": n.lower(),
                                     "order_nr": i, "active": True, "deal_probability": True,
                                     "add_time": "2023-01-02 09:00:00",
                                     "update_time": "2023-01-02 09:00:00", "selected": i == 1}
                                    for i, n in self.data.pipelines.items()])

    def _stages(self, request: Request) -> Response:
        return self._page(request, [{"id": s.id, "order_nr": s.order, "name": s.name,
                                     "active_flag": True, "deal_probability": 100,
                                     "pipeline_id": s.pipeline_id, "rotten_flag": False,
                                     "rotten_days": None, "add_time": "2023-01-02 09:00:00",
                                     "update_time": "2023-01-02 09:00:00",
                                     "pipeline_name": self.data.pipelines[s.pipeline_id],
                                     "pipeline_deal_probability": True}
                                    for s in self.data.stages.values()])

    def _organizations(self, request: Request) -> Response:
        return self._page(request, [self.org_json(o) for o in self.data.orgs.values()
                                    if o.active])

    def _leads(self, request: Request, archived: bool = False) -> Response:
        """Since July 2025 ``/v1/leads`` lists no archived lead (``archived_status`` is gone)."""
        leads = sorted(self.data.leads.values(), key=lambda x: (x.updated or x.added, x.id),
                       reverse=(request.arg("sort") or "").upper().endswith("DESC"))
        leads = [x for x in leads if x.archived == archived]
        return self._page(request, [self.lead_json(x) for x in leads])

    def _archived_leads(self, request: Request) -> Response:
        return self._leads(request, archived=True)

    def _deals(self, request: Request, archived: bool = False) -> Response:
        """Since July 2025 ``/v1/deals`` lists no archived deal."""
        status = request.arg("status", "all_not_deleted")
        deals = [d for d in self.data.deals.values()
                 if (d.deleted if status == "deleted" else not d.deleted)
                 and status in ("all_not_deleted", "deleted", d.status)
                 and d.archived == archived]
        if (request.arg("sort") or "").upper().endswith("DESC"):
            deals.sort(key=lambda d: (self.deal_json(d)["update_time"], d.id), reverse=True)
        return self._page(request, [self.deal_json(d) for d in deals],
                          related_objects={"user": {str(u): self._user_ref(u)
                                                    for u in self.data.users}})

    def _cursor_page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """API v2 paging: ``cursor`` in, ``additional_data.next_cursor`` out (opaque)."""
        start = self.offset(request)
        limit = min(int(request.arg("limit", "100") or 100), self.page_limit)
        chunk = items[start:start + limit]
        following = None
        if start + limit < len(items):
            following = base64.urlsafe_b64encode(f"o:{start + limit}".encode()).decode()
        return Response(200, {"success": True, "data": chunk,
                              "additional_data": {"next_cursor": following}})

    @staticmethod
    def _since(request: Request) -> dt.datetime | None:
        """``updated_since`` (RFC 3339, v2 and v1 notes) as naive UTC, if given."""
        text = request.arg("updated_since")
        return dt.datetime.fromisoformat(text).replace(tzinfo=None) if text else None

    @staticmethod
    def _changed(since: dt.datetime | None, update_time: str | None) -> bool:
        """Pipedrive's ``update_time >= updated_since``."""
        if since is None:
            return True
        return update_time is not None and dt.datetime.fromisoformat(
            update_time.replace("Z", "+00:00")).replace(tzinfo=None) >= since

    def _v2_deals(self, request: Request, archived: bool) -> Response:
        """Deals by id; ``status`` may name ``deleted`` (deleted in the last 30 days), and
        ``updated_since`` (RFC 3339) keeps only later changes."""
        statuses = set((request.arg("status") or "open,won,lost").split(","))
        since = self._since(request)
        items = []
        for deal in sorted(self.data.deals.values(), key=lambda d: d.id):
            shown = self.deal_json_v2(deal)
            status = "deleted" if deal.deleted else deal.status
            if deal.archived == archived and status in statuses and self._changed(
                    since, shown["update_time"]):
                items.append(shown)
        return self._cursor_page(request, items)

    def _deals_v2(self, request: Request) -> Response:
        """Since July 2025 not archived deals only."""
        return self._v2_deals(request, archived=False)

    def _archived_deals_v2(self, request: Request) -> Response:
        return self._v2_deals(request, archived=True)

    @staticmethod
    def _rfc(moment: dt.datetime | None) -> str | None:
        return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def org_json_v2(self, org: Org) -> dict[str, Any]:
        return {"id": org.id, "name": org.name, "owner_id": org.owner,
                "add_time": self._rfc(org.added), "update_time": self._rfc(org.updated),
                "visible_to": 3, "label_ids": [], "address": None,
                "is_deleted": not org.active, "custom_fields": {}}

    def activity_json_v2(self, a: Activity) -> dict[str, Any]:
        return {"id": a.id, "subject": a.subject, "type": a.type, "owner_id": a.owner,
                "creator_user_id": a.owner, "is_deleted": not a.active,
                "add_time": self._rfc(a.added),
                "update_time": self._rfc(a.updated or a.done_time or a.added),
                "deal_id": a.deal, "lead_id": a.lead, "person_id": None, "org_id": a.org,
                "project_id": None, "due_date": a.due_date.isoformat(),
                "due_time": a.due_time, "duration": a.duration, "busy": False,
                "done": a.done, "marked_as_done_time": self._rfc(a.done_time),
                "location": None, "participants": [], "attendees": [],
                "conference_meeting_client": None, "conference_meeting_url": None,
                "conference_meeting_id": None, "public_description": None,
                "priority": None, "note": None}

    def _organizations_v2(self, request: Request) -> Response:
        """Not deleted organizations (API v2: a deleted one is not listed); ``updated_since``."""
        since = self._since(request)
        items = [self.org_json_v2(o) for o in self.data.orgs.values() if o.active]
        return self._cursor_page(request, [o for o in items
                                           if self._changed(since, o["update_time"])])

    def _activities_v2(self, request: Request) -> Response:
        """Every visible user's not deleted activities (API v2 has no user_id=0 trick and
        lists no deleted one); ``done``, ``updated_since``."""
        done = request.arg("done")
        since = self._since(request)
        items = [self.activity_json_v2(a) for a in self.data.activities.values()
                 if a.active and (done is None or a.done == (done == "true"))]
        return self._cursor_page(request, [a for a in items
                                           if self._changed(since, a["update_time"])])

    def _pipelines_v2(self, request: Request) -> Response:
        return self._cursor_page(request, [
            {"id": i, "name": n, "order_nr": i, "is_deleted": False,
             "is_deal_probability_enabled": True, "add_time": "2023-01-02T09:00:00Z",
             "update_time": "2023-01-02T09:00:00Z", "is_selected": i == 1}
            for i, n in self.data.pipelines.items()])

    def _stages_v2(self, request: Request) -> Response:
        return self._cursor_page(request, [
            {"id": s.id, "order_nr": s.order, "name": s.name, "is_deleted": False,
             "deal_probability": 100, "pipeline_id": s.pipeline_id,
             "is_deal_rot_enabled": False, "days_to_rotten": None,
             "add_time": "2023-01-02T09:00:00Z", "update_time": "2023-01-02T09:00:00Z"}
            for s in self.data.stages.values()])

    def _archived_deals(self, request: Request) -> Response:
        return self._deals(request, archived=True)

    def _flow(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")  # v1, deals, <id>, flow
        if len(parts) != 4 or parts[3] != "flow" or not parts[2].isdigit():
            return Response(404, {"success": False, "error": "Not found"})
        deal = self.data.deals.get(int(parts[2]))
        if deal is None:
            return Response(404, {"success": False, "error": "Deal not found"})
        entries = self.flow_json(deal)
        wanted = request.arg("items")
        if wanted:  # ``items=dealChange``: only those kinds of entry
            entries = [e for e in entries if e["object"] in wanted.split(",")]
        return self._page(request, entries)

    def _activities(self, request: Request) -> Response:
        if request.arg("user_id") != "0":
            return Response(200, {"success": True, "data": None})  # only the token owner's
        done = request.arg("done")
        items = [a for a in self.data.activities.values()
                 if a.active and (done is None or a.done == (done == "1"))]
        return self._page(request, [self.activity_json(a) for a in items])

    def _notes(self, request: Request) -> Response:
        """Not deleted notes; ``updated_since`` (RFC 3339, as in v2)."""
        since = self._since(request)
        items = [self.note_json(n) for n in self.data.notes.values() if n.active]
        return self._page(request, [n for n in items if self._changed(since, n["update_time"])])

    def _recents(self, request: Request) -> Response:
        since = dt.datetime.fromisoformat(request.arg("since_timestamp") or "")
        wanted = set((request.arg("items") or "deal,activity,organization,note,user")
                     .split(","))
        entries: list[tuple[dt.datetime, str, int, dict[str, Any]]] = []

        def add(kind: str, item_id: int, updated: dt.datetime | None, data: Any) -> None:
            if kind in wanted and updated is not None and updated > since:
                entries.append((updated, kind, item_id, {"item": kind, "id": item_id,
                                                         "data": data}))

        for deal in self.data.deals.values():
            add("deal", deal.id, dt.datetime.fromisoformat(self.deal_json(deal)["update_time"]),
                self.deal_json(deal))
        for a in self.data.activities.values():
            add("activity", a.id, a.updated or a.done_time or a.added, self.activity_json(a))
        for org in self.data.orgs.values():
            add("organization", org.id, org.updated, self.org_json(org))
        for note in self.data.notes.values():
            add("note", note.id, note.updated or note.added, self.note_json(note))
        for user in self.data.users.values():  # recents gives users as a list
            add("user", user.id, user.created, [self.user_json(user)])
        entries.sort(key=lambda e: e[:3])
        start = int(request.arg("start", "0") or 0)
        limit = min(int(request.arg("limit", "100") or 100), self.page_limit)
        chunk = entries[start:start + limit]
        response = self._page(request, [e[3] for e in entries],
                              since_timestamp=stamp(since),
                              last_timestamp_on_page=stamp(chunk[-1][0]) if chunk else None)
        return response

    # -- the same company as canonical CSV files, written by hand ----------------------

    def write_canonical_csv(self, folder: Path) -> Path:
        """What a sync should store, as the product's native CSV import (all times UTC)."""
        folder.mkdir(parents=True, exist_ok=True)
        d = self.data

        def ts(moment: dt.datetime | None) -> str:
            return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")

        def write(name: str, header: list[str], rows: list[list[Any]]) -> None:
            with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                out = csv.writer(handle)
                out.writerow(header)
                out.writerows([["" if v is None else v for v in row] for row in rows])

        write("reps", ["id", "name", "email"],
              [[u.id, u.name, u.email] for u in d.users.values()])
        write("accounts", ["id", "name", "rep_id"],
              [[o.id, o.name, o.owner] for o in d.orgs.values() if o.active])
        write("leads", ["id", "created_at", "rep_id", "source", "status", "account_id"],
              [[x.id, ts(x.added), x.owner, x.source, "archived" if x.archived else "open",
                x.org] for x in d.leads.values()])
        live = [deal for deal in d.deals.values() if not deal.deleted]
        write("deals", ["id", "rep_id", "status", "created_at", "account_id", "pipeline",
                        "stage", "amount", "currency", "closed_at"],
              [[deal.id, deal.owner, deal.status, ts(deal.added), deal.org,
                d.pipelines[d.stages[deal.history[-1][0]].pipeline_id],
                d.stages[deal.history[-1][0]].name, deal.value, deal.currency,
                ts(deal.won_time or deal.lost_time)] for deal in live])
        write("stage_changes", ["deal_id", "stage", "entered_at", "rep_id", "pipeline"],
              [[deal.id, d.stages[stage].name, ts(entered), deal.owner,
                d.pipelines[d.stages[stage].pipeline_id]]
               for deal in live for stage, entered in deal.history])
        rows = []
        for a in d.activities.values():
            if not (a.active and a.done):
                continue
            if a.due_time:
                when = dt.datetime.combine(a.due_date, dt.time.fromisoformat(a.due_time))
            elif a.done_time:
                when = a.done_time
            else:
                when = dt.datetime.combine(a.due_date, dt.time(12))
            hours, minutes = (a.duration or "0:0").split(":")
            rows.append([a.id, a.type, a.owner, ts(when), a.lead, a.deal, a.org,
                         int(hours) * 3600 + int(minutes) * 60 if a.duration else None])
        for n in d.notes.values():
            if n.active:
                rows.append([f"note-{n.id}", "note", n.owner, ts(n.added), n.lead, n.deal, n.org,
                             None])
        write("activities", ["id", "type", "rep_id", "occurred_at", "lead_id", "deal_id",
                             "account_id", "duration_s"], rows)
        return folder
