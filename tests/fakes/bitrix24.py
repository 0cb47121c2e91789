"""A fake Bitrix24 REST API on FakeApi: a small sales portal with the documented shapes.

Methods are called as ``POST /rest/<user>/<key>/<method>.json`` with a JSON body
(``filter``, ``order``, ``select``, ``start``) and answer
``{"result": [...], "next": 3, "total": N, "time": {...}}``; numbers come as text,
times as ISO 8601 with the portal's offset (+03:00). A wrong key answers 401
``INVALID_CREDENTIALS``, an expired one 401 ``expired_token``. The page size is
tiny so that every list spans several pages.

The portal counts requests in a leaky bucket as Bitrix24's cloud does (50 at once,
draining 2 a second, on ``clock``): a request that finds it full is refused with a 503
``QUERY_LIMIT_EXCEEDED`` and does not count; ``refused`` lists such requests. ``batch``
runs up to 50 commands (``method?query`` strings, PHP-style brackets) in one request.

``write_canonical_csv`` writes the same portal as the product's canonical CSV
files, by hand from the raw records here (not through the connector's mapping),
so a test can compare KPIs of a sync with KPIs of a plain file import.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.server import FakeApi, Request, Response

CODE = "k3x9w2p7q1m5z8v4"  # the inbound webhook's key
WEBHOOK_USER = 1
APP_TOKEN = "b24apptoken51856fefc120afa4b628"  # the outgoing webhook's application_token
MSK = dt.timezone(dt.timedelta(hours=3))

Item = dict[str, Any]

# (ENTITY_ID, STATUS_ID, NAME, semantics): deal stages of both pipelines, lead statuses,
# sources and industries, as crm.status.list lists them.
STATUSES = [
    ("DEAL_STAGE", "NEW", "Новая", "process"),
    ("DEAL_STAGE", "PREPARATION", "Подготовка документов", "process"),
    ("DEAL_STAGE", "EXECUTING", "В работе", "process"),
    ("DEAL_STAGE", "WON", "Сделка успешна", "success"),
    ("DEAL_STAGE", "LOSE", "Сделка провалена", "failure"),
    ("DEAL_STAGE_1", "C1:NEW", "Новая заявка", "process"),
    ("DEAL_STAGE_1", "C1:APPROVAL", "Согласование", "process"),
    ("DEAL_STAGE_1", "C1:WON", "Успешно", "success"),
    ("DEAL_STAGE_1", "C1:LOSE", "Провал", "failure"),
    ("STATUS", "NEW", "Не обработан", "process"),
    ("STATUS", "IN_PROCESS", "В работе", "process"),
    ("STATUS", "CONVERTED", "Качественный лид", "success"),
    ("STATUS", "JUNK", "Некачественный лид", "failure"),
    ("SOURCE", "CALL", "Звонок", None),
    ("SOURCE", "WEB", "Веб-сайт", None),
    ("SOURCE", "ADVERTISING", "Реклама", None),
    ("SOURCE", "PARTNER", "Партнёр", None),
    ("SOURCE", "RECOMMENDATION", "По рекомендации", None),
    ("INDUSTRY", "IT", "Информационные технологии", None),
    ("INDUSTRY", "MANUFACTURING", "Производство", None),
    ("INDUSTRY", "TELECOM", "Телекоммуникации", None),
]
LETTER = {"process": "P", "success": "S", "failure": "F"}
CATEGORIES = {0: "Продажи", 1: "Партнёры"}
# Who manages whom, written out by hand (head of the user's department, or above).
MANAGERS = {1: None, 2: 1, 3: 4, 4: 1, 5: 1}
DEPARTMENTS = {1: ("Acme", None, 1), 3: ("Продажи Москва", 1, 1), 5: ("Продажи Киев", 1, 4)}


def at(text: str) -> dt.datetime:
    """A Moscow wall time such as "2024-03-01 12:00" (the portal's zone)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=MSK)


def now() -> dt.datetime:
    return dt.datetime.now(MSK).replace(microsecond=0)


def b24(moment: dt.datetime | None) -> str:
    """How Bitrix24 writes a time: ISO 8601 with the portal's offset; "" for none."""
    return "" if moment is None else moment.astimezone(MSK).isoformat()


def utc(text: str | None) -> str:
    """A Bitrix24 time as UTC ISO 8601 for the canonical CSV; "" for none."""
    if not text:
        return ""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).isoformat()


def php_params(query: str) -> dict[str, Any]:
    """``filter[>ID]=5&select[0]=ID`` back into nested values, as PHP reads it."""
    root: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        head, *rest = re.findall(r"^[^\[]+|(?<=\[)[^\]]*(?=\])", name)
        node = root
        for key, following in zip([head, *rest], [*rest, None], strict=True):
            if following is None:
                node[key] = value
            else:
                node = node.setdefault(key, {})

    def lists(value: Any) -> Any:
        if isinstance(value, dict):
            if value and all(k.isdigit() for k in value):
                return [lists(value[k]) for k in sorted(value, key=int)]
            return {k: lists(v) for k, v in value.items()}
        return value

    return dict(lists(root))


def _key(value: Any) -> Any:
    """Values as Bitrix24's filter compares them: ids as numbers, times as times."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=MSK)
    return value


class PortalBucket:
    """Bitrix24's request counter: +1 a request, drains ``per_second``, full at ``capacity``."""

    def __init__(self, capacity: float = 50, per_second: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self.clock = clock
        self.level = 0.0
        self.last: float | None = None
        self.peak = 0.0
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            now = self.clock()
            if self.last is not None:
                self.level = max(0.0, self.level - (now - self.last) * self.per_second)
            self.last = now
            if self.level + 1 > self.capacity + 1e-9:
                return False
            self.level += 1
            self.peak = max(self.peak, self.level)
            return True


class FakeBitrix24:
    """One Bitrix24 portal served over HTTP; tests change it between syncs."""

    def __init__(self, page_size: int = 3, code: str = CODE,
                 bucket: PortalBucket | None = None) -> None:
        self.api = FakeApi()
        self.bucket = bucket or PortalBucket()
        self.refused: list[Request] = []
        self.page_size = page_size
        self.code = code
        self.expired = False
        # "missing-id", "wrong-type" or "not-json": break the second page of deals.
        self.malformed: str | None = None
        self.users: dict[int, Item] = {}
        self.companies: dict[int, Item] = {}
        self.leads: dict[int, Item] = {}
        self.deals: dict[int, Item] = {}
        self.history: list[Item] = []
        self.activities: dict[int, Item] = {}
        self._seed()
        self.api.route("POST", "/rest/")(self._serve)
        self.api.route("GET", "/rest/")(self._serve)

    # -- the data set ------------------------------------------------------------------
    def _seed(self) -> None:
        for user_id, name, last, email, department, position, active in (
                (1, "Анна", "Смирнова", "anna@acme.test", 3, "Руководитель отдела продаж", True),
                (2, "Борис", "Петров", "boris@acme.test", 3, "Менеджер", True),
                (3, "Олена", "Коваль", "olena@acme.test", 5, "Менеджерка", True),
                (4, "Дмитро", "Шевченко", "dmytro@acme.test", 5, "Керівник відділу", True),
                (5, "Ivan", "Idle", "ivan@acme.test", 3, "Стажёр", False)):
            self.users[user_id] = {
                "ID": str(user_id), "XML_ID": f"u{user_id}", "ACTIVE": active, "NAME": name,
                "LAST_NAME": last, "SECOND_NAME": "", "EMAIL": email,
                "LAST_LOGIN": "2024-04-01T09:00:00+03:00",
                "DATE_REGISTER": "2023-01-10T00:00:00+03:00", "IS_ONLINE": "N",
                "TIME_ZONE_OFFSET": "10800", "PERSONAL_GENDER": "", "WORK_POSITION": position,
                "UF_DEPARTMENT": [department], "USER_TYPE": "employee"}
        for company_id, title, industry, rep in (
                (101, "ООО Ромашка", "IT", 1), (102, "ТОВ Соняшник", "MANUFACTURING", 3),
                (103, "Globex", "TELECOM", 2), (104, "Initech", "IT", 1)):
            created = b24(at("2024-01-15 10:00"))
            self.companies[company_id] = {
                "ID": str(company_id), "TITLE": title, "COMPANY_TYPE": "CUSTOMER",
                "INDUSTRY": industry, "EMPLOYEES": "EMPLOYEES_2", "CURRENCY_ID": "RUB",
                "REVENUE": "0.00", "OPENED": "Y", "ASSIGNED_BY_ID": str(rep),
                "CREATED_BY_ID": str(rep), "MODIFY_BY_ID": str(rep), "DATE_CREATE": created,
                "DATE_MODIFY": created, "LEAD_ID": None, "ORIGINATOR_ID": None}

        lead = self.add_lead
        lead(11, rep=1, status="CONVERTED", source="WEB", created=at("2024-02-20 10:00"),
             company=101)
        lead(12, rep=1, status="IN_PROCESS", source="CALL", created=at("2024-03-02 11:00"))
        lead(13, rep=2, status="JUNK", source="ADVERTISING", created=at("2024-03-03 12:00"))
        lead(14, rep=2, status="NEW", source="WEB", created=at("2024-03-04 09:30"))
        lead(15, rep=3, status="CONVERTED", source="PARTNER", created=at("2024-04-01 10:00"),
             company=102)
        lead(16, rep=3, status="NEW", source="RECOMMENDATION", created=at("2024-04-02 15:00"))
        lead(17, rep=4, status="IN_PROCESS", source="CALL", created=at("2024-04-03 16:00"))

        deal = self.add_deal
        deal(201, rep=1, amount="120000.00", created=at("2024-03-01 09:00"), lead=11,
             company=101)
        self.move_deal(201, "PREPARATION", at("2024-03-05 10:00"))
        self.move_deal(201, "WON", at("2024-03-20 15:00"))
        deal(202, rep=1, amount="50000.00", created=at("2024-03-05 11:00"))
        self.move_deal(202, "LOSE", at("2024-03-25 12:00"))
        deal(203, rep=1, amount="80000.00", created=at("2024-04-02 08:30"), company=104)
        self.move_deal(203, "EXECUTING", at("2024-04-04 09:00"))
        deal(204, rep=2, amount="30000.50", created=at("2024-03-10 10:00"), company=103)
        self.move_deal(204, "PREPARATION", at("2024-03-15 10:00"))
        self.move_deal(204, "WON", at("2024-04-01 16:30"))
        deal(205, rep=2, amount="", created=at("2024-04-10 14:00"))
        deal(206, rep=3, amount="200000.00", created=at("2024-04-12 09:15"), lead=15,
             company=102, category=1)
        self.move_deal(206, "C1:APPROVAL", at("2024-04-15 11:00"))
        deal(207, rep=3, amount="45000.00", created=at("2024-02-15 13:00"), category=1)
        self.move_deal(207, "C1:LOSE", at("2024-03-01 10:00"))
        deal(208, rep=3, amount="75000", created=at("2024-02-01 09:00"))
        self.move_deal(208, "WON", at("2024-02-20 17:00"))
        deal(209, rep=4, amount="15000.00", currency="USD", created=at("2024-04-05 12:00"),
             category=1)

        act = self.add_activity
        act(301, kind=2, owner=(2, 201), rep=1, direction=2, start=at("2024-03-01 09:10"),
            seconds=180)
        act(302, kind=2, owner=(2, 201), rep=1, direction=1, start=at("2024-03-02 12:00"),
            seconds=60)
        act(303, kind=2, owner=(2, 202), rep=1, direction=2, start=at("2024-03-05 11:30"),
            seconds=0)
        act(304, kind=2, owner=(2, 204), rep=2, direction=2, start=at("2024-03-10 10:20"),
            seconds=420)
        act(305, kind=2, owner=(1, 14), rep=2, direction=2, start=at("2024-03-04 10:00"),
            seconds=30)
        act(306, kind=1, owner=(2, 201), rep=1, direction=0, start=at("2024-03-12 14:00"),
            seconds=3600)
        act(307, kind=1, owner=(2, 206), rep=3, direction=0, start=at("2024-05-20 10:00"),
            seconds=3600, done=False)  # planned, not held yet
        act(308, kind=1, owner=(4, 102), rep=3, direction=0, start=at("2024-04-16 14:00"),
            seconds=5400)
        act(309, kind=4, owner=(2, 206), rep=3, direction=2, start=at("2024-04-13 09:00"))
        act(310, kind=4, owner=(1, 16), rep=3, direction=1, start=at("2024-04-02 15:05"),
            done=False)  # an incoming email not answered yet: it still arrived
        act(311, kind=6, owner=(2, 203), rep=1, direction=0, start=at("2024-04-05 10:00"),
            provider="CRM_TODO")
        act(312, kind=2, owner=(1, 17), rep=4, direction=2, start=at("2024-05-02 11:00"),
            done=False)  # a planned call
        act(313, kind=2, owner=(3, 7001), rep=4, direction=1, start=at("2024-04-08 17:45"),
            seconds=0, done=False)  # a missed incoming call on a contact

    def grow(self, *, leads: int, deals: int, activities: int, open_share: float = 0.6) -> None:
        """A bigger portal: generated leads (``open_share`` of them in work), deals with
        a stage history, and calls, numbered after the hand-written ones."""
        statuses = ("NEW", "IN_PROCESS", "CONVERTED", "JUNK")
        sources = ("CALL", "WEB", "ADVERTISING", "PARTNER", "RECOMMENDATION")
        start = at("2024-01-01 09:00")
        for n in range(leads):
            in_work = n < leads * open_share
            self.add_lead(1000 + n, rep=1 + n % 4, status=statuses[n % 2 if in_work else 2 + n % 2],
                          source=sources[n % 5], created=start + dt.timedelta(hours=n))
        for n in range(deals):
            deal_id = 5000 + n
            self.add_deal(deal_id, rep=1 + n % 4, amount=f"{1000 + 10 * n}.00",
                          created=start + dt.timedelta(hours=2 * n))
            self.move_deal(deal_id, "PREPARATION", start + dt.timedelta(hours=2 * n + 1))
            if n % 3:
                self.move_deal(deal_id, "WON" if n % 3 == 1 else "LOSE",
                               start + dt.timedelta(hours=2 * n + 2))
        for n in range(activities):
            self.add_activity(20000 + n, kind=2, owner=(2, 5000 + n % max(deals, 1)),
                              rep=1 + n % 4, direction=2, seconds=60 + n % 300,
                              start=start + dt.timedelta(minutes=37 * n))

    def add_lead(self, lead_id: int, *, rep: int, status: str, source: str,
                 created: dt.datetime | None = None, company: int | None = None) -> Item:
        when = b24(created or now())
        letter = LETTER[next(s[3] for s in STATUSES if s[0] == "STATUS" and s[1] == status)]
        self.leads[lead_id] = {
            "ID": str(lead_id), "TITLE": f"Лид #{lead_id}", "HONORIFIC": None, "NAME": "Клиент",
            "STATUS_ID": status, "STATUS_SEMANTIC_ID": letter, "STATUS_DESCRIPTION": None,
            "OPPORTUNITY": "0.00", "CURRENCY_ID": "RUB", "SOURCE_ID": source,
            "COMPANY_ID": str(company) if company else None, "ASSIGNED_BY_ID": str(rep),
            "CREATED_BY_ID": str(rep), "MODIFY_BY_ID": str(rep), "DATE_CREATE": when,
            "DATE_MODIFY": when, "DATE_CLOSED": when if letter != "P" else "",
            "MOVED_BY_ID": str(rep), "MOVED_TIME": when, "OPENED": "Y", "IS_RETURN_CUSTOMER": "N"}
        return self.leads[lead_id]

    def add_deal(self, deal_id: int, *, rep: int, amount: str, created: dt.datetime | None = None,
                 lead: int | None = None, company: int | None = None, category: int = 0,
                 currency: str = "RUB") -> Item:
        when = created or now()
        stage = "NEW" if category == 0 else f"C{category}:NEW"
        self.deals[deal_id] = {
            "ID": str(deal_id), "TITLE": f"Сделка #{deal_id}", "TYPE_ID": "SALE",
            "STAGE_ID": stage, "STAGE_SEMANTIC_ID": "P", "CATEGORY_ID": str(category),
            "PROBABILITY": None, "CURRENCY_ID": currency, "OPPORTUNITY": amount,
            "IS_MANUAL_OPPORTUNITY": "Y", "TAX_VALUE": "0.00",
            "LEAD_ID": str(lead) if lead else None, "COMPANY_ID": str(company or 0),
            "CONTACT_ID": None, "QUOTE_ID": None, "BEGINDATE": b24(when.replace(hour=0, minute=0)),
            "CLOSEDATE": b24((when + dt.timedelta(days=7)).replace(hour=0, minute=0)),
            "ASSIGNED_BY_ID": str(rep), "CREATED_BY_ID": str(rep), "MODIFY_BY_ID": str(rep),
            "DATE_CREATE": b24(when), "DATE_MODIFY": b24(when), "OPENED": "Y", "CLOSED": "N",
            "COMMENTS": None, "ADDITIONAL_INFO": None, "LOCATION_ID": None,
            "SOURCE_ID": "WEB", "SOURCE_DESCRIPTION": None, "ORIGINATOR_ID": None,
            "ORIGIN_ID": None, "MOVED_BY_ID": str(rep), "MOVED_TIME": b24(when),
            "LAST_ACTIVITY_TIME": b24(when), "UTM_SOURCE": None}
        self._history(deal_id, 1, stage, category, when)
        return self.deals[deal_id]

    def move_deal(self, deal_id: int, stage: str, when: dt.datetime | None = None) -> None:
        """Move a deal to a stage as a user would: history entry included."""
        moment = when or now()
        deal = self.deals[deal_id]
        semantics = next(s[3] for s in STATUSES if s[0].startswith("DEAL_STAGE")
                         and s[1] == stage)
        letter = LETTER[str(semantics)]
        deal.update({"STAGE_ID": stage, "STAGE_SEMANTIC_ID": letter,
                     "CLOSED": "Y" if letter != "P" else "N", "MOVED_TIME": b24(moment),
                     "DATE_MODIFY": b24(moment)})
        if letter != "P":
            deal["CLOSEDATE"] = b24(moment.replace(hour=0, minute=0, second=0))
        self._history(deal_id, 3 if letter != "P" else 2, stage, int(deal["CATEGORY_ID"]),
                      moment)

    def delete_deal(self, deal_id: int) -> None:
        """Bitrix24 removes the deal with its stage history and the activities bound to it."""
        del self.deals[deal_id]
        self.history = [h for h in self.history if h["OWNER_ID"] != deal_id]
        self.activities = {i: a for i, a in self.activities.items()
                           if (a["OWNER_TYPE_ID"], a["OWNER_ID"]) != ("2", str(deal_id))}

    def delete_lead(self, lead_id: int) -> None:
        del self.leads[lead_id]
        self.activities = {i: a for i, a in self.activities.items()
                           if (a["OWNER_TYPE_ID"], a["OWNER_ID"]) != ("1", str(lead_id))}

    def _history(self, deal_id: int, type_id: int, stage: str, category: int,
                 when: dt.datetime) -> None:
        letter = LETTER[str(next(s[3] for s in STATUSES if s[0].startswith("DEAL_STAGE")
                                 and s[1] == stage))]
        self.history.append({
            "ID": len(self.history) + 1, "TYPE_ID": type_id, "OWNER_ID": deal_id,
            "CREATED_TIME": b24(when), "CATEGORY_ID": category, "STAGE_SEMANTIC_ID": letter,
            "STAGE_ID": stage})

    def add_activity(self, activity_id: int, *, kind: int, owner: tuple[int, int], rep: int,
                     direction: int, start: dt.datetime | None = None, seconds: int = 0,
                     done: bool = True, provider: str | None = None) -> Item:
        begin = start or now()
        providers = {1: "CRM_MEETING", 2: "VOXIMPLANT_CALL", 4: "CRM_EMAIL"}
        subjects = {1: "Встреча", 2: "Звонок", 4: "Письмо", 6: "Дело"}
        changed = b24(now() if start is None else begin)
        self.activities[activity_id] = {
            "ID": str(activity_id), "OWNER_ID": str(owner[1]), "OWNER_TYPE_ID": str(owner[0]),
            "TYPE_ID": str(kind), "PROVIDER_ID": provider or providers.get(kind, "CRM_TODO"),
            "PROVIDER_TYPE_ID": "CALL" if kind == 2 else None, "ASSOCIATED_ENTITY_ID": "0",
            "SUBJECT": subjects.get(kind, "Дело"), "COMPLETED": "Y" if done else "N",
            "STATUS": "2" if done else "1", "RESPONSIBLE_ID": str(rep), "PRIORITY": "2",
            "DIRECTION": str(direction), "START_TIME": b24(begin),
            "END_TIME": b24(begin + dt.timedelta(seconds=seconds)),
            "DEADLINE": b24(begin), "CREATED": changed, "LAST_UPDATED": changed,
            "AUTHOR_ID": str(rep), "EDITOR_ID": str(rep), "DESCRIPTION": ""}
        return self.activities[activity_id]

    # -- HTTP ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.api.url

    @property
    def webhook_url(self) -> str:
        return f"{self.api.url}/rest/{WEBHOOK_USER}/{self.code}/"

    def start(self) -> FakeBitrix24:
        self.api.start()
        return self

    def stop(self) -> None:
        self.api.stop()

    def calls(self, method: str) -> list[Request]:
        return [r for r in self.api.log if r.path.endswith(f"/{method}.json")]

    def requests(self) -> list[Request]:
        """The HTTP requests made (a batch is one; the calls inside it are logged too)."""
        return [r for r in self.api.log if "x-batch-call" not in r.headers]

    def page_of(self, request: Request) -> int:
        """Which page (1, 2, ...) a keyset request of crm.*.list asks for (``>ID``, then
        ``start`` pages on from there)."""
        params = request.json() or {}
        after = int((params.get("filter") or {}).get(">ID") or 0)
        start = max(int(params.get("start") or 0), 0)
        method = request.path.rsplit("/", 1)[-1].removesuffix(".json")
        ids = sorted(int(i["ID"]) for i in self._records(method))
        return (sum(1 for i in ids if i <= after) + start) // self.page_size + 1

    def _records(self, method: str) -> list[Item]:
        return {"crm.company.list": list(self.companies.values()),
                "crm.lead.list": list(self.leads.values()),
                "crm.deal.list": list(self.deals.values()),
                "crm.activity.list": list(self.activities.values()),
                "crm.stagehistory.list": self.history}.get(method, [])

    def _serve(self, request: Request, inner: bool = False) -> Response:
        match = re.match(r"^/rest/(\d+)/([^/]+)/([a-z0-9_.]+)\.json$", request.path)
        if match is None or int(match[1]) != WEBHOOK_USER or match[2] != self.code:
            return Response(401, {"error": "INVALID_CREDENTIALS",
                                  "error_description": "Invalid request credentials"})
        if self.expired:
            return Response(401, {"error": "expired_token",
                                  "error_description": "The access token provided has expired."})
        if not inner and not self.bucket.admit():
            self.refused.append(request)
            return Response(503, {"error": "QUERY_LIMIT_EXCEEDED",
                                  "error_description": "Too many requests"})
        method = match[3]
        params: dict[str, Any] = request.json() if request.body else {}
        if method == "profile":
            return self._answer({"ID": "1", "ADMIN": True, "NAME": "Анна",
                                 "LAST_NAME": "Смирнова", "PERSONAL_GENDER": "F",
                                 "TIME_ZONE": "Europe/Moscow", "TIME_ZONE_OFFSET": 10800})
        if method == "user.get":
            return self._list(params, sorted(self.users.values(), key=lambda u: int(u["ID"])))
        if method == "department.get":
            return self._list(params, [
                {"ID": str(i), "NAME": n, "SORT": 500, "UF_HEAD": str(h),
                 **({"PARENT": str(p)} if p else {})} for i, (n, p, h) in DEPARTMENTS.items()])
        if method == "crm.category.list":
            categories = [{"id": i, "name": n, "sort": 100 * (i + 1), "entityTypeId": 2,
                           "isDefault": "Y" if i == 0 else "N", "originId": "",
                           "originatorId": ""} for i, n in CATEGORIES.items()]
            return self._list(params, categories, key="categories")
        if method == "crm.status.list":
            return self._list(params, self._statuses())
        if method in ("crm.company.list", "crm.lead.list", "crm.deal.list",
                      "crm.activity.list", "crm.stagehistory.list"):
            return self._crm_list(method, params)
        if method == "batch":
            return self._batch(request, params)
        return Response(400, {"error": "ERROR_METHOD_NOT_FOUND",
                              "error_description": "Method not found!"})

    def _batch(self, request: Request, params: dict[str, Any]) -> Response:
        """``batch``: each command is ``method?query`` (PHP brackets), run in order as if
        called alone (faults and the log see it, the bucket counts only the batch)."""
        commands = params.get("cmd") or {}
        if not isinstance(commands, dict) or len(commands) > 50:
            return Response(400, {"error": "ERROR_BATCH_LENGTH_EXCEEDED",
                                  "error_description": "Max batch length exceeded"})
        halt = str(params.get("halt") or "0") in ("1", "true", "Y")
        prefix = request.path.rsplit("/", 1)[0]
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for name, command in commands.items():
            method, _sep, query = str(command).partition("?")
            call = Request("POST", f"{prefix}/{method}.json", {}, {"x-batch-call": name},
                           json.dumps(php_params(query)).encode())
            answer = self._inner(call)
            if isinstance(answer.body, bytes):
                return answer  # a broken page breaks the whole answer
            body = answer.body or {}
            if answer.status != 200 or "error" in body:
                errors[name] = {"error": body.get("error", "INTERNAL_SERVER_ERROR"),
                                "error_description": body.get("error_description", "")}
                if halt:
                    break
                continue
            results[name] = body["result"]
            times[name] = body["time"]
            if "total" in body:
                totals[name] = body["total"]
            if "next" in body:
                nexts[name] = body["next"]
        return self._answer({"result": results or [], "result_error": errors or [],
                             "result_total": totals or [], "result_next": nexts or [],
                             "result_time": times or []})

    def _inner(self, call: Request) -> Response:
        """A call inside a batch: logged and open to faults like a request of its own."""
        with self.api._lock:
            self.api.log.append(call)
            for fault in self.api.faults:
                if fault.times > 0 and fault.match(call):
                    fault.times -= 1
                    return fault.response
        if call.path.endswith("/batch.json"):
            return Response(400, {"error": "ERROR_BATCH_METHOD_NOT_ALLOWED",
                                  "error_description": "Batch call is not allowed in batch"})
        return self._serve(call, inner=True)

    def _statuses(self) -> list[Item]:
        statuses = []
        for number, (entity, code, name, semantics) in enumerate(STATUSES, start=1):
            item: Item = {"ID": str(number), "ENTITY_ID": entity, "STATUS_ID": code,
                          "NAME": name, "NAME_INIT": name, "SORT": str(10 * number),
                          "SYSTEM": "N", "CATEGORY_ID": None, "COLOR": None, "SEMANTICS": None}
            if entity.startswith("DEAL_STAGE") or entity == "STATUS":
                item["CATEGORY_ID"] = entity.removeprefix("DEAL_STAGE_") if "_STAGE_" in entity \
                    else "0"
                item["SEMANTICS"] = {"success": "S", "failure": "F"}.get(str(semantics))
                item["EXTRA"] = {"SEMANTICS": semantics, "COLOR": "#39A8EF"}
            statuses.append(item)
        return statuses

    def _crm_list(self, method: str, params: dict[str, Any]) -> Response:
        filters = params.get("filter") or {}
        records = [r for r in self._records(method) if self._matches(r, filters)]
        records.sort(key=lambda r: int(r["ID"]))
        select = params.get("select") or []
        if select and "*" not in select:
            records = [{k: r[k] for k in select if k in r} for r in records]
        response = self._list(params, records,
                              key="items" if method == "crm.stagehistory.list" else None)
        if (self.malformed and method == "crm.deal.list" and filters.get(">ID")
                and response.status == 200):
            first = response.body["result"][0]
            if self.malformed == "missing-id":
                del first["ID"]
            elif self.malformed == "wrong-type":
                first["OPPORTUNITY"] = "12 000 ₽"
            else:
                return Response(200, b"<html><body>502 Bad Gateway</body></html>",
                                {"Content-Type": "text/html"})
        return response

    @staticmethod
    def _matches(record: Item, filters: dict[str, Any]) -> bool:
        for key, wanted in filters.items():
            found = re.match(r"^(>=|<=|>|<|=|!|@)?(.+)$", key)
            assert found is not None
            op, name = found[1] or "=", found[2]
            have = _key(record.get(name))
            if isinstance(wanted, list):
                if have not in {_key(w) for w in wanted}:
                    return False
                continue
            want = _key(wanted)
            if have is None or have == "":
                return False
            ok = {"=": have == want, "!": have != want, ">": have > want, "<": have < want,
                  ">=": have >= want, "<=": have <= want}[op]
            if not ok:
                return False
        return True

    def _answer(self, result: Any, **extra: Any) -> Response:
        started = time.time()
        moment = dt.datetime.fromtimestamp(started, MSK).replace(microsecond=0)
        return Response(200, {"result": result, **extra, "time": {
            "start": started, "finish": started + 0.01, "duration": 0.01,
            "processing": 0.005, "date_start": moment.isoformat(),
            "date_finish": moment.isoformat(), "operating": 0}},
            {"Content-Type": "application/json; charset=utf-8"})

    def _list(self, params: dict[str, Any], items: list[Item], key: str | None = None) -> Response:
        start = int(params.get("start") or 0)
        chunk = copy.deepcopy(items[start:start + self.page_size])
        extra: dict[str, Any] = {"total": len(items)}
        if start + self.page_size < len(items):
            extra = {"next": start + self.page_size, **extra}
        return self._answer({key: chunk} if key else chunk, **extra)

    # -- the same portal as canonical CSV files ---------------------------------------------
    def write_canonical_csv(self, folder: Path) -> Path:
        """reps, accounts, leads, deals, stage_changes and activities, mapped by hand."""
        folder.mkdir(parents=True, exist_ok=True)
        names = {(e, c): n for e, c, n, _s in STATUSES}
        stage_names = {c: n for e, c, n, _s in STATUSES if e.startswith("DEAL_STAGE")}

        def deal_status(deal: Item) -> str:
            return {"S": "won", "F": "lost"}.get(deal["STAGE_SEMANTIC_ID"], "open")

        def lead_status(lead: Item) -> str:
            return {"S": "converted", "F": "junk"}.get(lead["STATUS_SEMANTIC_ID"], "open")

        def reference(value: str | None) -> str:
            return "" if value in (None, "", "0") else str(value)

        tables: dict[str, tuple[list[str], list[list[object]]]] = {
            "reps": (["id", "name", "email", "team", "manager_id", "role"], [
                [u["ID"], f"{u['NAME']} {u['LAST_NAME']}", u["EMAIL"],
                 DEPARTMENTS[u["UF_DEPARTMENT"][0]][0], MANAGERS[int(u["ID"])] or "",
                 u["WORK_POSITION"]] for u in self.users.values()]),
            "accounts": (["id", "name", "segment", "sector", "rep_id"], [
                [c["ID"], c["TITLE"], "b2b", names[("INDUSTRY", c["INDUSTRY"])],
                 c["ASSIGNED_BY_ID"]] for c in self.companies.values()]),
            "leads": (["id", "created_at", "rep_id", "source", "status", "account_id"], [
                [lead["ID"], utc(lead["DATE_CREATE"]), lead["ASSIGNED_BY_ID"],
                 names[("SOURCE", lead["SOURCE_ID"])], lead_status(lead),
                 reference(lead["COMPANY_ID"])] for lead in self.leads.values()]),
            "deals": (["id", "rep_id", "status", "created_at", "lead_id", "account_id",
                       "pipeline", "stage", "amount", "currency", "closed_at"], [
                [d["ID"], d["ASSIGNED_BY_ID"], deal_status(d), utc(d["DATE_CREATE"]),
                 reference(d["LEAD_ID"]), reference(d["COMPANY_ID"]),
                 CATEGORIES[int(d["CATEGORY_ID"])], stage_names[d["STAGE_ID"]],
                 d["OPPORTUNITY"], d["CURRENCY_ID"],
                 utc(d["MOVED_TIME"]) if deal_status(d) != "open" else ""]
                for d in self.deals.values()]),
            "stage_changes": (["deal_id", "stage", "entered_at", "pipeline"], [
                [h["OWNER_ID"], stage_names[h["STAGE_ID"]], utc(h["CREATED_TIME"]),
                 CATEGORIES[h["CATEGORY_ID"]]] for h in self.history]),
        }
        kinds = {"1": "meeting", "2": "call", "3": "task", "4": "email"}
        activities: list[list[object]] = []
        for a in self.activities.values():
            kind = kinds.get(a["TYPE_ID"]) or ("task" if a["PROVIDER_ID"] == "CRM_TODO"
                                               else a["PROVIDER_ID"].lower())
            direction = {"1": "in", "2": "out"}.get(a["DIRECTION"], "")
            if a["COMPLETED"] != "Y" and not (kind == "email" or (kind == "call"
                                                                 and direction == "in")):
                continue  # not held yet
            owner_type, owner = a["OWNER_TYPE_ID"], a["OWNER_ID"]
            start = dt.datetime.fromisoformat(a["START_TIME"])
            seconds = int((dt.datetime.fromisoformat(a["END_TIME"]) - start).total_seconds())
            activities.append([
                a["ID"], kind, a["RESPONSIBLE_ID"], utc(a["START_TIME"]),
                owner if owner_type == "1" else "", owner if owner_type == "2" else "",
                owner if owner_type == "4" else "",
                direction if kind in ("call", "email") else "",
                seconds if kind in ("call", "meeting") else ""])
        tables["activities"] = (["id", "type", "rep_id", "occurred_at", "lead_id", "deal_id",
                                 "account_id", "direction", "duration_s"], activities)
        for name, (header, rows) in tables.items():
            with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)
        return folder
