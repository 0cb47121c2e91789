"""A fake HubSpot (CRM v3/v4 API shapes) on FakeApi, with a small sales team's data.

The data set is HubSpot-native (string properties, stage ids, owners, archived
records). ``write_canonical_csv`` writes the same data as the product's native
CSV files, mapped by hand here and not by the connector, so a test can check
that syncing and importing give the same numbers.

Every list is paged ``page_size`` records at a time (2 by default), so every
object type spans two pages or more.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.server import FakeApi, Request, Response

TOKEN = "pat-na1-0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"
CLIENT_SECRET = "hs-secret-7c1d0e5f-aa21-4b9e-9f3c-2d7e8b6a5c40"
PORTAL = 4242424

MODIFIED = {"contacts": "lastmodifieddate"}  # every other type: hs_lastmodifieddate
SINGULAR = {"companies": "company", "contacts": "contact", "deals": "deal", "calls": "call",
            "meetings": "meeting", "emails": "email", "tasks": "task", "notes": "note"}
OBJECT_TYPES = ("companies", "contacts", "deals", "calls", "meetings", "emails", "tasks",
                "notes")


def modified_property(object_type: str) -> str:
    return MODIFIED.get(object_type, "hs_lastmodifieddate")


def iso(stamp: dt.datetime) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(dt.datetime.now(dt.UTC))


def ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """What HubSpot puts in X-HubSpot-Signature-v3."""
    mac = hmac.new(secret.encode(), method.encode() + uri.encode() + body + timestamp.encode(),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Obj:
    id: str
    props: dict[str, str | None]
    assoc: dict[str, list[str]] = field(default_factory=dict)
    history: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # newest first
    archived_at: str | None = None


# Stage id -> (label, probability, closed); two pipelines, one with numeric ids.
PIPELINES = {
    "default": ("Sales Pipeline", {
        "appointmentscheduled": ("Appointment scheduled", "0.2", False),
        "qualifiedtobuy": ("Qualified to buy", "0.4", False),
        "contractsent": ("Contract sent", "0.9", False),
        "closedwon": ("Closed won", "1.0", True),
        "closedlost": ("Closed lost", "0.0", True),
    }),
    "2001": ("Partners", {
        "2002": ("Partner intro", "0.3", False),
        "2003": ("Partner won", "1.0", True),
        "2004": ("Partner lost", "0.0", True),
    }),
}
OLD = "2024-06-01T00:00:00.000Z"  # when the initial records were last modified


def _owners() -> list[dict[str, Any]]:
    def owner(oid: str, first: str, last: str, team: str, archived: bool = False,
              updated: str = "2024-01-02T08:00:00.000Z") -> dict[str, Any]:
        return {"id": oid, "email": f"{first.lower()}@example.com", "type": "PERSON",
                "firstName": first, "lastName": last, "userId": int(oid) * 7,
                "userIdIncludingInactive": int(oid) * 7, "createdAt": "2023-11-01T08:00:00.000Z",
                "updatedAt": updated, "archived": archived,
                "teams": [{"id": f"t-{team}", "name": team, "primary": True}]}
    return [owner("101", "Alice", "Smith", "East"), owner("102", "Bob", "Jones", "West"),
            owner("103", "Carol", "White", "East"),
            owner("104", "Dan", "Brown", "West", archived=True,
                  updated="2024-04-30T17:00:00.000Z")]


def _dataset() -> dict[str, dict[str, Obj]]:
    data: dict[str, dict[str, Obj]] = {t: {} for t in OBJECT_TYPES}

    def add(kind: str, oid: str, assoc: dict[str, list[str]] | None = None,
            history: dict[str, list[tuple[str, str]]] | None = None, **props: str | None) -> None:
        props.setdefault(modified_property(kind), OLD)
        props["hs_object_id"] = oid
        data[kind][oid] = Obj(oid, dict(props), assoc or {}, history or {})

    company = "companies"
    add(company, "201", name="Acme Corp", domain="acme.example", industry="COMPUTER_SOFTWARE",
        hubspot_owner_id="101", hs_analytics_source="ORGANIC_SEARCH",
        hs_lifecyclestage_customer_date="2024-02-20T10:00:00.000Z",
        createdate="2024-01-03T09:00:00.000Z")
    add(company, "202", name="Globex", domain="globex.example", industry="RETAIL",
        hubspot_owner_id="102", hs_analytics_source="REFERRALS",
        createdate="2024-01-20T09:00:00.000Z")
    add(company, "203", name="Initech", domain="initech.example", hubspot_owner_id="103",
        hs_analytics_source="PAID_SEARCH", createdate="2024-02-01T09:00:00.000Z")
    add(company, "204", name="", domain="umbrella.example", hubspot_owner_id=None,
        hs_analytics_source="OFFLINE", createdate="2024-03-01T09:00:00.000Z")
    add(company, "205", name="Hooli", domain="hooli.example", hubspot_owner_id="104",
        industry="INTERNET", createdate="2024-01-04T09:00:00.000Z")

    def contact(oid: str, created: str, owner: str | None, source: str, company: str | None,
                status: str | None = None, sql: str | None = None) -> None:
        add("contacts", oid, createdate=created, hubspot_owner_id=owner,
            hs_analytics_source=source, hs_lead_status=status, lifecyclestage="lead",
            hs_lifecyclestage_salesqualifiedlead_date=sql, associatedcompanyid=company)

    contact("301", "2024-01-10T10:00:00.000Z", "101", "ORGANIC_SEARCH", "201", "OPEN_DEAL",
            "2024-01-14T10:00:00.000Z")
    contact("302", "2024-01-28T11:30:00.000Z", "101", "PAID_SEARCH", "202", "OPEN_DEAL")
    contact("303", "2024-03-01T12:00:00.000Z", "102", "REFERRALS", "203", "IN_PROGRESS")
    contact("304", "2024-02-08T08:15:00.000Z", "102", "OFFLINE", "202")
    contact("305", "2024-01-02T16:45:00.000Z", "104", "DIRECT_TRAFFIC", "205", "OPEN_DEAL")
    contact("306", "2024-03-12T09:00:00.000Z", "103", "ORGANIC_SEARCH", None, "NEW")
    contact("307", "2024-03-13T09:30:00.000Z", None, "SOCIAL_MEDIA", None, "NEW")

    def deal(oid: str, name: str, owner: str | None, pipeline: str, stages: list[tuple[str, str]],
             amount: str | None, created: str, close: str | None, company: str | None,
             contact: str | None, currency: str | None = "USD", lost: str | None = None) -> None:
        assoc = {"companies": [company] if company else [],
                 "contacts": [contact] if contact else []}
        add("deals", oid, assoc, {"dealstage": [(s, t) for s, t in reversed(stages)]},
            dealname=name, amount=amount, deal_currency_code=currency,
            dealstage=stages[-1][0], pipeline=pipeline, closedate=close, createdate=created,
            hubspot_owner_id=owner, closed_lost_reason=lost)

    deal("401", "Acme expansion", "101", "default",
         [("appointmentscheduled", "2024-01-15T09:00:00.000Z"),
          ("qualifiedtobuy", "2024-01-25T09:00:00.000Z"),
          ("contractsent", "2024-02-05T09:00:00.000Z"),
          ("closedwon", "2024-02-20T10:00:00.000Z")],
         "12000", "2024-01-15T09:00:00.000Z", "2024-02-20T10:00:00.000Z", "201", "301")
    deal("402", "Globex pilot", "101", "default",
         [("appointmentscheduled", "2024-02-01T09:00:00.000Z"),
          ("closedlost", "2024-03-01T15:00:00.000Z")],
         "5000", "2024-02-01T09:00:00.000Z", "2024-03-01T15:00:00.000Z", "202", "302",
         lost="Price")
    deal("403", "Initech rollout", "102", "default",
         [("appointmentscheduled", "2024-03-05T09:00:00.000Z"),
          ("qualifiedtobuy", "2024-03-20T09:00:00.000Z")],
         "8000.50", "2024-03-05T09:00:00.000Z", "2024-07-31T00:00:00.000Z", "203", "303")
    deal("404", "Globex via partner", "102", "2001",
         [("2002", "2024-02-10T09:00:00.000Z"), ("2003", "2024-04-02T11:00:00.000Z")],
         "3000", "2024-02-10T09:00:00.000Z", "2024-04-02T11:00:00.000Z", "202", "304",
         currency=None)
    deal("405", "Umbrella intro", "103", "default",
         [("appointmentscheduled", "2024-04-01T09:00:00.000Z")],
         "2500", "2024-04-01T09:00:00.000Z", None, "204", None)
    deal("406", "Hooli licence", "104", "default",
         [("appointmentscheduled", "2024-01-05T09:00:00.000Z"),
          ("closedwon", "2024-03-15T16:00:00.000Z")],
         "7000", "2024-01-05T09:00:00.000Z", "2024-03-15T16:00:00.000Z", "205", "305")
    deal("407", "Acme add-on", None, "default",
         [("appointmentscheduled", "2024-04-10T09:00:00.000Z"),
          ("contractsent", "2024-04-20T09:00:00.000Z")],
         "4000", "2024-04-10T09:00:00.000Z", "2024-06-30T00:00:00.000Z", "201", None)
    deal("408", "Partner referral", "103", "2001",
         [("2002", "2024-03-01T09:00:00.000Z"), ("2004", "2024-03-25T09:00:00.000Z")],
         None, "2024-03-01T09:00:00.000Z", "2024-03-25T09:00:00.000Z", None, "306")
    deal("409", "Deleted long ago", "101", "default",
         [("appointmentscheduled", "2024-01-01T09:00:00.000Z")],
         "100", "2024-01-01T09:00:00.000Z", None, None, None)
    data["deals"]["409"].archived_at = "2024-05-01T10:00:00.000Z"

    def engagement(kind: str, oid: str, when: str, owner: str | None, contacts: list[str],
                   deals: list[str], **props: str | None) -> None:
        add(kind, oid, {"contacts": contacts, "deals": deals, "companies": []},
            hs_timestamp=when, hs_createdate=when, hubspot_owner_id=owner, **props)

    engagement("calls", "501", "2024-01-10T10:05:00.000Z", "101", ["301"], [],
               hs_call_direction="OUTBOUND", hs_call_duration="125000", hs_call_status="COMPLETED")
    engagement("calls", "502", "2024-01-16T11:00:00.000Z", "101", ["301"], ["401"],
               hs_call_direction="OUTBOUND", hs_call_duration="600400", hs_call_status="COMPLETED")
    engagement("calls", "503", "2024-02-02T09:30:00.000Z", "101", ["302"], ["402"],
               hs_call_direction="INBOUND", hs_call_duration="30000", hs_call_status="COMPLETED")
    engagement("calls", "504", "2024-03-06T14:00:00.000Z", "102", ["303"], ["403"],
               hs_call_direction="OUTBOUND", hs_call_duration="0", hs_call_status="NO_ANSWER")
    engagement("calls", "505", "2024-03-02T10:00:00.000Z", "104", ["305"], [],
               hs_call_direction="OUTBOUND", hs_call_duration="90000", hs_call_status="COMPLETED")
    engagement("calls", "506", "2024-04-11T10:00:00.000Z", None, [], ["407"],
               hs_call_direction="OUTBOUND", hs_call_duration="45000", hs_call_status="COMPLETED")
    engagement("calls", "599", "2024-04-12T10:00:00.000Z", "101", [], [],
               hs_call_direction="OUTBOUND", hs_call_duration="1000", hs_call_status="COMPLETED")
    data["calls"]["599"].archived_at = "2024-05-02T10:00:00.000Z"
    engagement("meetings", "601", "2024-01-12T12:00:00.000Z", "101", ["301"], ["401"],
               hs_meeting_start_time="2024-01-12T12:00:00.000Z",
               hs_meeting_end_time="2024-01-12T12:45:00.000Z", hs_meeting_outcome="COMPLETED")
    engagement("meetings", "602", "2024-03-10T15:00:00.000Z", "102", ["303"], ["403"],
               hs_meeting_start_time="2024-03-10T15:00:00.000Z",
               hs_meeting_end_time="2024-03-10T16:00:00.000Z", hs_meeting_outcome="COMPLETED")
    engagement("meetings", "603", "2024-02-12T10:00:00.000Z", "104", ["305"], ["406"],
               hs_meeting_start_time="2024-02-12T10:00:00.000Z",
               hs_meeting_end_time="2024-02-12T10:30:00.000Z", hs_meeting_outcome="NO_SHOW")
    engagement("meetings", "604", "2024-04-05T13:00:00.000Z", "103", [], ["405"],
               hs_meeting_start_time="2024-04-05T13:00:00.000Z",
               hs_meeting_end_time=None, hs_meeting_outcome="SCHEDULED")
    engagement("emails", "701", "2024-01-11T08:00:00.000Z", "101", ["301"], [],
               hs_email_direction="EMAIL", hs_email_status="SENT")
    engagement("emails", "702", "2024-01-11T09:00:00.000Z", "101", ["301"], [],
               hs_email_direction="INCOMING_EMAIL", hs_email_status=None)
    engagement("emails", "703", "2024-03-07T09:00:00.000Z", "102", ["303"], ["403"],
               hs_email_direction="EMAIL", hs_email_status="SENT")
    engagement("emails", "704", "2024-03-14T09:00:00.000Z", "103", ["306"], [],
               hs_email_direction="FORWARDED_EMAIL", hs_email_status="SENT")
    engagement("tasks", "801", "2024-01-20T09:00:00.000Z", "101", ["301"], ["401"],
               hs_task_status="COMPLETED", hs_task_type="CALL")
    engagement("tasks", "802", "2024-03-21T09:00:00.000Z", "102", [], ["403"],
               hs_task_status="NOT_STARTED", hs_task_type="TODO")
    engagement("tasks", "803", "2024-04-02T09:00:00.000Z", "103", ["306"], [],
               hs_task_status="COMPLETED", hs_task_type="EMAIL")
    engagement("notes", "901", "2024-01-16T12:00:00.000Z", "101", ["301"], ["401"])
    engagement("notes", "902", "2024-03-06T15:00:00.000Z", "102", ["303"], [])
    engagement("notes", "903", "2024-04-11T11:00:00.000Z", None, [], ["407"])
    return data


class FakeHubSpot:
    """The HubSpot API on 127.0.0.1: ``FakeHubSpot().start()``; ``.url`` for ``base_url``."""

    def __init__(self, page_size: int = 2, association_page: int = 2) -> None:
        self.api = FakeApi()
        self.page_size = page_size
        # Links an associations batch read returns per object and page (tiny, so that
        # they span pages); (from type, id, to type) -> the primary one, if not the first.
        self.association_page = association_page
        self.primary: dict[tuple[str, str, str], str] = {}
        self.token = TOKEN
        self.expired = False
        # (object type, "missing_id" | "wrong_type" | "not_json"): its pages come back broken
        self.malformed: tuple[str, str] | None = None
        self.owners = _owners()
        self.objects = _dataset()
        self._routes()

    def reset(self) -> None:
        """Back to the initial data set, with no faults and an empty request log."""
        self.token, self.expired, self.malformed = TOKEN, False, None
        self.owners, self.objects = _owners(), _dataset()
        self.primary = {}
        self.api.faults.clear()
        self.api.log.clear()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FakeHubSpot:
        self.api.start()
        return self

    def stop(self) -> None:
        self.api.stop()

    @property
    def url(self) -> str:
        return self.api.url

    def credentials(self, **extra: str) -> dict[str, str]:
        return {"base_url": self.url, "access_token": self.token,
                "client_secret": CLIENT_SECRET,
                "webhook_url": "https://kpi.example.com/webhooks/hubspot", **extra}

    # -- faults --------------------------------------------------------------------------
    def flaky(self) -> None:
        """A 429 (Retry-After: 0) on the first deals page and a 503 on a companies page."""
        self.api.fail(lambda r: r.path == "/crm/v3/objects/deals" and not r.arg("after"),
                      Response(429, {"status": "error", "category": "RATE_LIMITS",
                                     "message": "You have reached your secondly limit."},
                               {"Retry-After": "0"}))
        self.api.fail(lambda r: r.path == "/crm/v3/objects/companies" and r.arg("after") == "2",
                      Response(503, {"status": "error", "message": "Service Unavailable"}))

    def break_page(self, object_type: str, page: int) -> None:
        """Answer page ``page`` (1-based) of a full listing with 500s until ``heal``."""
        after = str((page - 1) * self.page_size)
        self.api.fail(lambda r: r.path == f"/crm/v3/objects/{object_type}"
                      and r.arg("archived") == "false" and (r.arg("after") or "0") == after,
                      Response(500, {"status": "error", "message": "internal error"}),
                      times=10**6)

    def heal(self) -> None:
        self.api.faults.clear()
        self.malformed = None

    def requests_to(self, path: str, method: str = "GET") -> list[Request]:
        return [r for r in self.api.log if r.path == path and r.method == method]

    # -- changes, as a user makes them in HubSpot ---------------------------------------
    def touch(self, object_type: str, oid: str, when: str | None = None) -> Obj:
        """Mark a record modified now (each change a millisecond apart, as in HubSpot)."""
        time.sleep(0.002)
        obj = self.objects[object_type][oid]
        obj.props[modified_property(object_type)] = when or now_iso()
        return obj

    def add_contact(self, oid: str, created: str, owner: str | None, source: str) -> None:
        self.objects["contacts"][oid] = Obj(oid, {
            "hs_object_id": oid, "createdate": created, "hubspot_owner_id": owner,
            "hs_analytics_source": source, "hs_lead_status": "NEW", "lifecyclestage": "lead",
            "hs_lifecyclestage_salesqualifiedlead_date": None, "associatedcompanyid": None})
        self.touch("contacts", oid)

    def move_deal(self, oid: str, stage: str, when: str) -> None:
        obj = self.touch("deals", oid)
        obj.props["dealstage"] = stage
        obj.props["closedate"] = when
        obj.history["dealstage"].insert(0, (stage, when))

    def delete(self, object_type: str, oid: str) -> None:
        self.objects[object_type][oid].archived_at = now_iso()

    def add_call(self, oid: str, when: str, owner: str, deal: str | None = None,
                 contact: str | None = None, direction: str = "OUTBOUND") -> None:
        self.objects["calls"][oid] = Obj(oid, {
            "hs_object_id": oid, "hs_timestamp": when, "hs_createdate": when,
            "hubspot_owner_id": owner, "hs_call_direction": direction,
            "hs_call_duration": "61000", "hs_call_status": "COMPLETED"},
            {"contacts": [contact] if contact else [], "deals": [deal] if deal else [],
             "companies": []})
        self.touch("calls", oid)

    def merge_contacts(self, keep: str, gone: str) -> None:
        """HubSpot keeps ``keep``; ``gone`` vanishes (not archived) and is named in keep."""
        del self.objects["contacts"][gone]
        obj = self.touch("contacts", keep)
        obj.props["hs_merged_object_ids"] = gone

    def change_everything(self) -> None:
        """A new lead, a deal won, a deal deleted, a new call, two contacts merged and a
        lead's status changed."""
        self.add_contact("308", "2024-05-10T09:00:00.000Z", "102", "PAID_SEARCH")
        self.move_deal("403", "closedwon", "2024-05-15T12:00:00.000Z")
        self.delete("deals", "405")
        self.add_call("507", "2024-05-16T10:00:00.000Z", "103", deal="403")
        self.merge_contacts("306", "307")
        self.touch("contacts", "301").props["hs_lead_status"] = "CONNECTED"

    # -- the API -------------------------------------------------------------------------
    def _routes(self) -> None:
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", "/account-info/v3/details", self._account),
            ("GET", "/crm/v3/owners", self._owners),
            ("GET", "/crm/v3/pipelines/deals", self._pipelines),
            ("GET", "/crm/v3/objects/", self._list),
            ("POST", "/crm/v3/objects/", self._post_objects),
            ("POST", "/crm/v4/associations/", self._associations),
        ]
        for method, path, handler in routes:
            self.api.route(method, path)(self._authorised(handler))

    def _authorised(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return Response(401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                                      "message": "Authentication credentials not found.",
                                      "correlationId": "c0ffee00-0000-4000-8000-000000000001"})
            if self.expired:
                return Response(401, {"status": "error", "category": "EXPIRED_AUTHENTICATION",
                                      "message": "The OAuth token used to make this call "
                                                 "expired 2 hour(s) ago.",
                                      "correlationId": "c0ffee00-0000-4000-8000-000000000002"})
            return handler(request)
        return serve

    def _account(self, request: Request) -> Response:
        return Response(200, {"portalId": PORTAL, "accountType": "STANDARD",
                              "timeZone": "US/Eastern", "companyCurrency": "USD",
                              "additionalCurrencies": [], "utcOffset": "-05:00",
                              "utcOffsetMilliseconds": -18000000,
                              "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"})

    def _page(self, items: list[Any], request: Request, after: str | None,
              limit: int) -> tuple[list[Any], dict[str, Any]]:
        start = int(after or 0)
        size = min(limit, self.page_size)
        chunk = items[start:start + size]
        extra: dict[str, Any] = {}
        if start + size < len(items):
            nxt = str(start + size)
            link = f"{self.url}{request.path}?after={nxt}"
            extra["paging"] = {"next": {"after": nxt, "link": link}}
        return chunk, extra

    def _owners(self, request: Request) -> Response:
        archived = request.arg("archived", "false") == "true"
        owners = [o for o in self.owners if o["archived"] == archived]
        chunk, extra = self._page(owners, request, request.arg("after"),
                                  int(request.arg("limit", "100") or 100))
        return Response(200, {"results": chunk, **extra})

    def _pipelines(self, request: Request) -> Response:
        results = []
        for order, (pid, (label, stages)) in enumerate(PIPELINES.items()):
            results.append({
                "id": pid, "label": label, "displayOrder": order, "archived": False,
                "createdAt": "2023-01-01T00:00:00.000Z", "updatedAt": "2023-01-01T00:00:00.000Z",
                "stages": [{"id": sid, "label": slabel, "displayOrder": i, "archived": False,
                            "metadata": {"isClosed": "true" if closed else "false",
                                         "probability": prob},
                            "createdAt": "2023-01-01T00:00:00.000Z",
                            "updatedAt": "2023-01-01T00:00:00.000Z"}
                           for i, (sid, (slabel, prob, closed)) in enumerate(stages.items())],
            })
        return Response(200, {"results": results})

    def _render(self, object_type: str, obj: Obj, properties: list[str],
                history: list[str] | None = None,
                associations: list[str] | None = None) -> dict[str, Any]:
        modified = modified_property(object_type)
        out: dict[str, Any] = {
            "id": obj.id,
            "properties": {p: obj.props.get(p) for p in ("hs_object_id", *properties)},
            "createdAt": obj.props.get("createdate") or obj.props.get("hs_createdate"),
            "updatedAt": obj.props.get(modified), "archived": obj.archived_at is not None,
        }
        if obj.archived_at:
            out["archivedAt"] = obj.archived_at
        if history:
            out["propertiesWithHistory"] = {
                p: [{"value": v, "timestamp": t, "sourceType": "CRM_UI",
                     "sourceId": "userId:707", "updatedByUserId": 707}
                    for v, t in obj.history.get(p, [])] for p in history}
        links = {}
        for target in associations or []:
            ids = obj.assoc.get(target) or []
            if ids:
                kind = f"{SINGULAR[object_type]}_to_{SINGULAR[target]}"
                links[target] = {"results": [{"id": i, "type": kind} for i in ids]}
        if links:
            out["associations"] = links
        return out

    def _spoil(self, object_type: str, results: list[dict[str, Any]]) -> Response | None:
        if self.malformed is None or self.malformed[0] != object_type or not results:
            return None
        kind = self.malformed[1]
        if kind == "not_json":
            return Response(200, b"<html><body>502 Bad Gateway</body></html>",
                            {"Content-Type": "text/html"})
        if kind == "missing_id":
            del results[0]["id"]
        elif kind == "wrong_type":
            results[0]["properties"]["hubspot_owner_id"] = {"id": 101}
        return None

    def _list(self, request: Request) -> Response:
        object_type = request.path.removeprefix("/crm/v3/objects/").strip("/")
        if object_type not in self.objects:
            return Response(404, {"status": "error", "message": f"Unknown object {object_type}"})
        archived = request.arg("archived", "false") == "true"
        objs = sorted((o for o in self.objects[object_type].values()
                       if (o.archived_at is not None) == archived), key=lambda o: int(o.id))
        history = [p for p in (request.arg("propertiesWithHistory") or "").split(",") if p]
        limit = int(request.arg("limit", "10") or 10)
        if history and limit > 50:
            return Response(400, {"status": "error", "category": "VALIDATION_ERROR",
                                  "message": "limit must be at most 50 with history"})
        chunk, extra = self._page(objs, request, request.arg("after"), limit)
        properties = [p for p in (request.arg("properties") or "").split(",") if p]
        associations = [p for p in (request.arg("associations") or "").split(",") if p]
        results = [self._render(object_type, o, properties, history, associations)
                   for o in chunk]
        spoiled = self._spoil(object_type, results)
        return spoiled or Response(200, {"results": results, **extra})

    def _post_objects(self, request: Request) -> Response:
        parts = request.path.removeprefix("/crm/v3/objects/").strip("/").split("/")
        object_type = parts[0]
        if object_type not in self.objects:
            return Response(404, {"status": "error", "message": f"Unknown object {object_type}"})
        body = request.json()
        if parts[1:] == ["search"]:
            return self._search(object_type, request, body)
        if parts[1:] == ["batch", "read"]:
            live = self.objects[object_type]
            ids = [str(i["id"]) for i in body.get("inputs", [])]
            results = [self._render(object_type, live[i], body.get("properties", []),
                                    body.get("propertiesWithHistory", []))
                       for i in ids if i in live and live[i].archived_at is None]
            return Response(200, {"status": "COMPLETE", "results": results,
                                  "startedAt": now_iso(), "completedAt": now_iso()})
        return Response(404, {"status": "error", "message": "no such endpoint"})

    def _search(self, object_type: str, request: Request, body: dict[str, Any]) -> Response:
        modified = modified_property(object_type)
        floor: int | None = None
        strict = False
        for group in body.get("filterGroups", []):
            for flt in group.get("filters", []):
                if flt.get("propertyName") != modified or flt.get("operator") not in ("GT", "GTE"):
                    return Response(400, {"status": "error", "category": "VALIDATION_ERROR",
                                          "message": f"cannot filter on {flt}"})
                floor, strict = ms(str(flt["value"])), flt["operator"] == "GT"
        objs = [o for o in self.objects[object_type].values() if o.archived_at is None]
        if floor is not None:
            objs = [o for o in objs if (ms(o.props[modified] or "0") > floor if strict
                                        else ms(o.props[modified] or "0") >= floor)]
        objs.sort(key=lambda o: (ms(o.props[modified] or "0"), int(o.id)))
        chunk, extra = self._page(objs, request, body.get("after"), int(body.get("limit", 10)))
        results = [self._render(object_type, o, body.get("properties", [])) for o in chunk]
        spoiled = self._spoil(object_type, results)
        return spoiled or Response(200, {"total": len(objs), "results": results, **extra})

    def _associations(self, request: Request) -> Response:
        parts = request.path.removeprefix("/crm/v4/associations/").strip("/").split("/")
        if len(parts) != 4 or parts[2:] != ["batch", "read"] or parts[0] not in self.objects:
            return Response(404, {"status": "error", "message": "no such endpoint"})
        source, target = parts[0], parts[1]
        live = self.objects[source]
        results, errors = [], []
        inputs = request.json().get("inputs", [])
        if len(inputs) > 1000:
            return Response(400, {"status": "error", "category": "VALIDATION_ERROR",
                                  "message": "Batch input must not exceed 1000 inputs"})
        for item in inputs:
            obj = live.get(str(item["id"]))
            ids = obj.assoc.get(target, []) if obj else []
            if not ids:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                               "context": {"fromObjectId": [str(item["id"])]}})
                continue
            # Each object's links page on their own: ``paging`` only when more follow.
            start = int(item.get("after") or 0)
            primary = self.primary.get((source, str(item["id"]), target), ids[0])
            links = [{"toObjectId": int(i), "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 5 if i == primary else 341,
                 "label": "Primary" if i == primary and target == "companies" else None}]}
                for i in ids[start:start + self.association_page]]
            result: dict[str, Any] = {"from": {"id": str(item["id"])}, "to": links}
            if start + self.association_page < len(ids):
                after = str(start + self.association_page)
                result["paging"] = {"next": {"after": after, "link": None}}
            results.append(result)
        status = 207 if errors else 200
        return Response(status, {"status": "COMPLETE", "results": results, "errors": errors,
                                 "numErrors": len(errors)})

    # -- the same data as canonical CSV files, mapped by hand -------------------------
    def write_canonical_csv(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        live = {t: [o for o in sorted(objs.values(), key=lambda o: int(o.id))
                    if o.archived_at is None] for t, objs in self.objects.items()}
        owner_ids = {o["id"] for o in self.owners}
        stage_info = {sid: (plabel, slabel, prob, closed)
                      for plabel, stages in PIPELINES.values()
                      for sid, (slabel, prob, closed) in stages.items()}

        def ts(value: str | None) -> str:
            return value.replace(".000Z", "+00:00") if value else ""

        def low(value: str | None) -> str:
            return value.lower() if value else ""

        def rep(value: str | None) -> str:
            return value if value in owner_ids else "unassigned"

        reps = [{"id": o["id"], "name": f"{o['firstName']} {o['lastName']}",
                 "email": o["email"], "team": o["teams"][0]["name"],
                 "left_at": o["updatedAt"][:10] if o["archived"] else ""} for o in self.owners]
        reps.append({"id": "unassigned", "name": "(no owner in HubSpot)", "email": "",
                     "team": "", "left_at": ""})
        accounts = [{"id": c.id, "name": c.props["name"] or c.props["domain"],
                     "sector": c.props.get("industry") or "",
                     "source": low(c.props.get("hs_analytics_source")),
                     "acquired_at": ts(c.props.get("hs_lifecyclestage_customer_date")),
                     "rep_id": c.props["hubspot_owner_id"] or ""} for c in live["companies"]]
        leads = [{"id": c.id, "created_at": ts(c.props["createdate"]),
                  "rep_id": c.props["hubspot_owner_id"] or "",
                  "source": low(c.props["hs_analytics_source"]),
                  "status": low(c.props["hs_lead_status"]),
                  "qualified_at": ts(c.props["hs_lifecyclestage_salesqualifiedlead_date"]),
                  "account_id": c.props["associatedcompanyid"] or ""} for c in live["contacts"]]
        deals, changes = [], []
        for d in live["deals"]:
            plabel, slabel, prob, closed = stage_info[d.props["dealstage"] or ""]
            status = ("won" if prob == "1.0" else "lost") if closed else "open"
            deals.append({
                "id": d.id, "rep_id": rep(d.props["hubspot_owner_id"]), "status": status,
                "created_at": ts(d.props["createdate"]),
                "lead_id": (d.assoc["contacts"] or [""])[0],
                "account_id": (d.assoc["companies"] or [""])[0], "pipeline": plabel,
                "stage": slabel, "amount": d.props["amount"] or "",
                "currency": (d.props["deal_currency_code"] or "USD") if d.props["amount"] else "",
                "closed_at": ts(d.props["closedate"]) if closed else "",
                "expected_close_at": "" if closed else ts(d.props["closedate"]),
                "probability": prob,
                "lost_reason": (d.props["closed_lost_reason"] or "") if status == "lost" else ""})
            for stage, when in d.history["dealstage"]:
                changes.append({"deal_id": d.id, "stage": stage_info[stage][1],
                                "entered_at": ts(when), "pipeline": stage_info[stage][0]})
        activities = []
        directions = {"INBOUND": "in", "OUTBOUND": "out", "EMAIL": "out",
                      "INCOMING_EMAIL": "in", "FORWARDED_EMAIL": "out"}
        for kind, type_name in (("calls", "call"), ("meetings", "meeting"), ("emails", "email"),
                                ("tasks", "task"), ("notes", "note")):
            for a in live[kind]:
                p = a.props
                duration = ""
                if kind == "calls":
                    duration = str(round(int(p["hs_call_duration"] or 0) / 1000))
                elif kind == "meetings" and p["hs_meeting_end_time"]:
                    duration = str((ms(p["hs_meeting_end_time"])
                                    - ms(p["hs_meeting_start_time"] or "")) // 1000)
                outcome = (p.get("hs_call_status") or p.get("hs_meeting_outcome")
                           or p.get("hs_email_status") or p.get("hs_task_status"))
                activities.append({
                    "id": a.id, "type": type_name, "rep_id": rep(p["hubspot_owner_id"]),
                    "occurred_at": ts(p["hs_timestamp"]),
                    "lead_id": (a.assoc["contacts"] or [""])[0],
                    "deal_id": (a.assoc["deals"] or [""])[0], "account_id": "",
                    "direction": directions.get(p.get("hs_call_direction")
                                                or p.get("hs_email_direction") or "", ""),
                    "outcome": low(outcome), "duration_s": duration})
        for name, rows in (("reps", reps), ("accounts", accounts), ("leads", leads),
                           ("deals", deals), ("stage_changes", changes),
                           ("activities", activities)):
            with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        return folder

    def webhook_body(self, *events: tuple[int, str, str]) -> bytes:
        """A delivery as HubSpot sends it: (eventId, subscriptionType, objectId) each."""
        return json.dumps([
            {"eventId": event_id, "subscriptionId": 77, "portalId": PORTAL, "appId": 5150,
             "occurredAt": int(dt.datetime.now(dt.UTC).timestamp() * 1000),
             "subscriptionType": kind, "attemptNumber": 0, "objectId": int(object_id),
             "changeFlag": "CREATED", "changeSource": "CRM_UI"}
            for event_id, kind, object_id in events]).encode()
