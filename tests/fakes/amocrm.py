"""A fake amoCRM / Kommo API v4 on FakeApi: a small sales account with the documented shapes.

Lists page with ``page``/``limit`` and ``_links.next``, answer 204 for an empty
page, filter by ``filter[updated_at][from]`` (events: ``filter[created_at][from]``
and ``filter[type]``), and refuse a wrong or expired token with 401. The page
size is tiny so that every list spans several pages.

``write_canonical_csv`` writes the same account as the product's canonical CSV
files, by hand from the raw records here (not through the connector's mapping),
so a test can compare KPIs of a sync with KPIs of a plain file import.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.server import FakeApi, Request, Response

TOKEN = "amo-long-lived-token-3f9c2a7d51e8"
ACCOUNT_ID = 30_001
WON, LOST = 142, 143
MAIN, PARTNERS = 5001, 5002
CURRENCY = "RUB"

Item = dict[str, Any]


def at(text: str) -> int:
    """Unix seconds of a UTC wall time such as "2024-03-01 09:00"."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


def iso(seconds: int | None) -> str:
    return "" if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def now() -> int:
    return int(time.time())


class FakeAmoCrm:
    """One amoCRM account served over HTTP; tests change it between syncs."""

    def __init__(self, page_size: int = 3, token: str = TOKEN) -> None:
        self.api = FakeApi()
        self.page_size = page_size
        self.token = token
        self.expired = False
        # "missing-id", "wrong-type" or "not-json": break the second page of leads.
        self.malformed: str | None = None
        self.groups = {0: "Отдел продаж", 101: "Москва", 102: "Київ"}
        self.users: list[Item] = [
            self._user(1001, "Анна Смирнова", "anna@acme.test", 101, admin=True),
            self._user(1002, "Борис Петров", "boris@acme.test", 101),
            self._user(1003, "Олена Коваль", "olena@acme.test", 102),
            self._user(1004, "Ivan Idle", "ivan@acme.test", 0, active=False),
        ]
        self.pipelines: dict[int, tuple[str, dict[int, str]]] = {
            MAIN: ("Продажи", {50011: "Первичный контакт", 50012: "Переговоры",
                               50013: "Принимают решение", WON: "Успешно реализовано",
                               LOST: "Закрыто и не реализовано"}),
            PARTNERS: ("Партнёры", {50021: "Новая заявка", 50022: "Согласование",
                                    WON: "Успешно реализовано",
                                    LOST: "Закрыто и не реализовано"}),
        }
        self.loss_reasons = {1: "Дорого", 2: "Выбрали конкурента"}
        self.companies: dict[int, Item] = {}
        for company_id, name, rep in ((9001, "ООО Ромашка", 1001), (9002, "ТОВ Соняшник", 1003),
                                      (9003, "Globex", 1002), (9004, "Initech", 1001)):
            self.companies[company_id] = self._company(company_id, name, rep)
        self.leads: dict[int, Item] = {}
        self.events: list[Item] = []
        self.notes: dict[str, dict[int, Item]] = {"leads": {}, "contacts": {}}
        self.tasks: dict[int, Item] = {}
        self._seed()
        self._routes()

    # -- the data set --------------------------------------------------------------
    def _seed(self) -> None:
        lead = self.add_lead
        lead(7001, rep=1001, status=50011, price=120_000, created="2024-03-01 09:00",
             company=9001, utm="yandex")
        self.move_lead(7001, 50012, at_=at("2024-03-05 10:00"))
        self.move_lead(7001, WON, at_=at("2024-03-20 15:00"))
        lead(7002, rep=1001, status=50011, price=50_000, created="2024-03-05 11:00",
             source_field="Сарафан")
        self.move_lead(7002, LOST, at_=at("2024-03-25 12:00"), loss_reason=1)
        lead(7003, rep=1001, status=50011, price=80_000, created="2024-04-02 08:30",
             company=9004)
        self.move_lead(7003, 50012, at_=at("2024-04-04 09:00"))
        lead(7004, rep=1002, status=50011, price=30_000.5, created="2024-03-10 10:00",
             company=9003)
        self.move_lead(7004, 50013, at_=at("2024-03-15 10:00"))
        self.move_lead(7004, WON, at_=at("2024-04-01 16:30"))
        lead(7005, rep=1002, status=50011, price=None, created="2024-04-10 14:00")
        lead(7006, rep=1003, status=50021, price=200_000, created="2024-04-12 09:15",
             company=9002, pipeline=PARTNERS, utm="partner_site")
        self.move_lead(7006, 50022, at_=at("2024-04-15 11:00"))
        lead(7007, rep=1003, status=50021, price=45_000, created="2024-02-15 13:00",
             pipeline=PARTNERS)
        self.move_lead(7007, LOST, at_=at("2024-03-01 10:00"), by=0)  # a robot closed it
        lead(7008, rep=1003, status=50011, price=75_000, created="2024-02-01 09:00")
        self.move_lead(7008, WON, at_=at("2024-02-20 17:00"))
        # 7009 was deleted before anyone synced; 7008 was deleted by mistake and restored.
        self._event("lead_deleted", 7009, at("2024-02-02 10:00"), entity="lead")
        self._event("lead_deleted", 7008, at("2024-03-02 10:00"), entity="lead")
        self._event("lead_restored", 7008, at("2024-03-02 10:05"), entity="lead")

        call = self.add_call
        call(8001, 7001, rep=1001, direction="out", duration=180, at_=at("2024-03-01 09:10"))
        call(8002, 7001, rep=1001, direction="in", duration=60, at_=at("2024-03-02 12:00"))
        call(8003, 7002, rep=1001, direction="out", duration=0, at_=at("2024-03-05 11:30"),
             status=6)
        call(8004, 7004, rep=1002, direction="out", duration=420, at_=at("2024-03-10 10:20"))
        call(8005, 7006, rep=1003, direction="out", duration=95, at_=at("2024-04-12 10:00"))
        self.notes["leads"][8006] = self._note(8006, "leads", 7003, "common", 1001,
                                               at("2024-04-03 09:00"), {"text": "Перезвонить"})
        call(8101, 6001, rep=1002, direction="out", duration=30, at_=at("2024-03-11 09:00"),
             on="contacts")
        call(8102, 6002, rep=1003, direction="in", duration=75, at_=at("2024-04-13 15:00"),
             on="contacts")
        call(8103, 6002, rep=1003, direction="out", duration=40, at_=at("2024-04-14 15:00"),
             on="contacts")
        call(8104, 6003, rep=1001, direction="out", duration=0, at_=at("2024-04-15 16:00"),
             on="contacts", status=7)

        for task_id, entity, entity_id, rep, kind, due, done in (
                (9501, "leads", 7001, 1001, 2, "2024-03-10 12:00", True),
                (9502, "leads", 7004, 1002, 2, "2024-03-20 11:00", True),
                (9503, "leads", 7003, 1001, 1, "2024-04-05 10:00", True),
                (9504, "leads", 7006, 1003, 2, "2024-04-20 10:00", False),
                (9505, "companies", 9002, 1003, 2, "2024-04-16 14:00", True)):
            self.add_task(task_id, entity, entity_id, rep=rep, kind=kind, due=at(due),
                          done=done, at_=at(due) - 86_400)

    def _links(self, path: str) -> Item:
        return {"self": {"href": f"https://fake.amocrm.ru{path}"}}

    def _user(self, user_id: int, name: str, email: str, group: int, *, admin: bool = False,
              active: bool = True) -> Item:
        return {"id": user_id, "name": name, "email": email, "lang": "ru",
                "rights": {"is_admin": admin, "is_free": False, "is_active": active,
                           "group_id": group or None, "role_id": None},
                "_links": self._links(f"/api/v4/users/{user_id}")}

    def _company(self, company_id: int, name: str, rep: int) -> Item:
        return {"id": company_id, "name": name, "responsible_user_id": rep, "group_id": 0,
                "created_by": rep, "updated_by": rep, "created_at": at("2024-01-15 10:00"),
                "updated_at": at("2024-01-15 10:00"), "closest_task_at": None,
                "is_deleted": False, "custom_fields_values": None, "account_id": ACCOUNT_ID,
                "_links": self._links(f"/api/v4/companies/{company_id}"),
                "_embedded": {"tags": []}}

    def add_lead(self, lead_id: int, *, rep: int, status: int, price: float | None,
                 created: str | None = None, company: int | None = None,
                 pipeline: int = MAIN, utm: str | None = None,
                 source_field: str | None = None) -> Item:
        created_at = at(created) if created else now()
        fields = []
        if utm:
            fields.append({"field_id": 301, "field_name": "utm_source", "field_code": "UTM_SOURCE",
                           "field_type": "tracking_data", "values": [{"value": utm}]})
        if source_field:
            fields.append({"field_id": 302, "field_name": "Источник", "field_code": None,
                           "field_type": "select",
                           "values": [{"value": source_field, "enum_id": 11}]})
        embedded: Item = {"tags": [], "companies": []}
        if company:
            embedded["companies"] = [{"id": company,
                                      "_links": self._links(f"/api/v4/companies/{company}")}]
        lead = {
            "id": lead_id, "name": f"Сделка #{lead_id}", "price": price,
            "responsible_user_id": rep, "group_id": 0, "status_id": status,
            "pipeline_id": pipeline, "loss_reason_id": None, "created_by": rep,
            "updated_by": rep, "created_at": created_at, "updated_at": created_at,
            "closed_at": None, "closest_task_at": None, "is_deleted": False,
            "custom_fields_values": fields or None, "score": None, "account_id": ACCOUNT_ID,
            "labor_cost": None, "_links": self._links(f"/api/v4/leads/{lead_id}"),
            "_embedded": embedded,
        }
        self.leads[lead_id] = lead
        return lead

    def move_lead(self, lead_id: int, status: int, *, at_: int | None = None,
                  by: int | None = None, loss_reason: int | None = None) -> None:
        """Move a lead to a stage (142 won, 143 lost), as a user would: event included."""
        when = at_ if at_ is not None else now()
        lead = self.leads[lead_id]
        before = {"lead_status": {"id": lead["status_id"], "pipeline_id": lead["pipeline_id"]}}
        lead["status_id"] = status
        lead["updated_at"] = when
        lead["closed_at"] = when if status in (WON, LOST) else None
        lead["loss_reason_id"] = loss_reason
        self._event("lead_status_changed", lead_id, when, entity="lead",
                    by=lead["responsible_user_id"] if by is None else by,
                    before=[before],
                    after=[{"lead_status": {"id": status, "pipeline_id": lead["pipeline_id"]}}])

    def delete_lead(self, lead_id: int) -> None:
        del self.leads[lead_id]
        self._event("lead_deleted", lead_id, now(), entity="lead")

    def add_call(self, note_id: int, entity_id: int, *, rep: int, direction: str,
                 duration: int, at_: int | None = None, status: int = 4,
                 on: str = "leads") -> None:
        params = {"uniq": f"call-{note_id}", "duration": duration, "source": "Mango Office",
                  "link": f"https://records.example/{note_id}.mp3", "phone": "+79990001122",
                  "call_status": status, "call_result": ""}
        when = at_ if at_ is not None else now()
        self.notes[on][note_id] = self._note(note_id, on, entity_id, f"call_{direction}", rep,
                                             when, params)

    def _note(self, note_id: int, on: str, entity_id: int, note_type: str, rep: int,
              when: int, params: Item) -> Item:
        return {"id": note_id, "entity_id": entity_id, "created_by": rep, "updated_by": rep,
                "created_at": when, "updated_at": when, "responsible_user_id": rep,
                "group_id": 0, "note_type": note_type, "params": params,
                "account_id": ACCOUNT_ID,
                "_links": self._links(f"/api/v4/{on}/{entity_id}/notes/{note_id}")}

    def add_task(self, task_id: int, entity_type: str, entity_id: int, *, rep: int, kind: int,
                 due: int, done: bool, at_: int | None = None) -> None:
        """A task set (and, with ``done``, completed) at ``at_``: now unless given."""
        when = at_ if at_ is not None else now()
        self.tasks[task_id] = {
            "id": task_id, "created_by": rep, "updated_by": rep, "created_at": when,
            "updated_at": when, "responsible_user_id": rep, "group_id": 0,
            "entity_id": entity_id, "entity_type": entity_type, "duration": 0,
            "is_completed": done, "task_type_id": kind, "text": "Встреча с клиентом",
            "result": {"text": "Провели"} if done else [], "complete_till": due,
            "account_id": ACCOUNT_ID, "_links": self._links(f"/api/v4/tasks/{task_id}")}

    def _event(self, kind: str, entity_id: int, when: int, *, entity: str, by: int = 0,
               before: list[Item] | None = None, after: list[Item] | None = None) -> None:
        self.events.append({
            "id": f"01hfake{len(self.events):08d}", "type": kind, "entity_id": entity_id,
            "entity_type": entity, "created_by": by, "created_at": when,
            "value_after": after or [], "value_before": before or [], "account_id": ACCOUNT_ID,
            "_links": self._links(f"/api/v4/events/{len(self.events)}"),
            "_embedded": {"entity": {"id": entity_id}}})

    # -- HTTP ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.api.url

    @property
    def subdomain(self) -> str:
        """What the account calls itself: the first label of the address it is served at."""
        return (urlsplit(self.url).hostname or "").split(".")[0]

    def start(self) -> FakeAmoCrm:
        self.api.start()
        return self

    def stop(self) -> None:
        self.api.stop()

    def requests(self, path: str) -> list[Request]:
        return [r for r in self.api.log if r.path == path]

    def _authorized(self, request: Request) -> bool:
        return not self.expired and request.headers.get("authorization") == f"Bearer {self.token}"

    def _unauthorized(self) -> Response:
        return Response(401, {"title": "Unauthorized", "type": "https://httpstatus.es/401",
                              "status": 401, "detail": "Unauthorized"},
                        {"Content-Type": "application/problem+json"})

    def _routes(self) -> None:
        route = self.api.route
        route("GET", "/api/v4/account")(self._guard(self._account))
        route("GET", "/api/v4/users")(self._guard(
            lambda r: self._list(r, "/api/v4/users", "users", self.users)))
        route("GET", "/api/v4/leads/pipelines")(self._guard(self._pipelines))
        route("GET", "/api/v4/companies")(self._guard(
            lambda r: self._list(r, "/api/v4/companies", "companies",
                                 self._changed(r, self.companies.values()))))
        route("GET", "/api/v4/leads")(self._guard(self._leads))
        route("GET", "/api/v4/leads/notes")(self._guard(lambda r: self._notes(r, "leads")))
        route("GET", "/api/v4/contacts/notes")(self._guard(lambda r: self._notes(r, "contacts")))
        route("GET", "/api/v4/tasks")(self._guard(
            lambda r: self._list(r, "/api/v4/tasks", "tasks",
                                 self._changed(r, self.tasks.values()))))
        route("GET", "/api/v4/events")(self._guard(self._events))

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            if not self._authorized(request):
                return self._unauthorized()
            response: Response = handler(request)
            return response
        return guarded

    def _account(self, request: Request) -> Response:
        body: Item = {"id": ACCOUNT_ID, "name": "Acme Trading", "subdomain": self.subdomain,
                      "currency": CURRENCY, "currency_symbol": "₽", "country": "RU",
                      "created_at": at("2023-01-10 08:00"), "created_by": 1001,
                      "is_technical_account": False,
                      "_links": self._links("/api/v4/account")}
        if "users_groups" in (request.arg("with") or ""):
            body["_embedded"] = {"users_groups": [{"id": i, "name": n, "uuid": None}
                                                  for i, n in self.groups.items()]}
        return Response(200, body, {"Content-Type": "application/hal+json"})

    def _pipelines(self, request: Request) -> Response:
        pipelines = []
        for sort, (pipeline_id, (name, statuses)) in enumerate(self.pipelines.items()):
            pipelines.append({
                "id": pipeline_id, "name": name, "sort": sort, "is_main": pipeline_id == MAIN,
                "is_unsorted_on": True, "is_archive": False, "account_id": ACCOUNT_ID,
                "_links": self._links(f"/api/v4/leads/pipelines/{pipeline_id}"),
                "_embedded": {"statuses": [
                    {"id": s, "name": n, "sort": 10 * i, "is_editable": s not in (WON, LOST),
                     "pipeline_id": pipeline_id, "color": "#fffeb2",
                     "type": 0, "account_id": ACCOUNT_ID}
                    for i, (s, n) in enumerate(statuses.items())]}})
        return Response(200, {"_total_items": len(pipelines),
                              "_links": self._links("/api/v4/leads/pipelines"),
                              "_embedded": {"pipelines": pipelines}},
                        {"Content-Type": "application/hal+json"})

    def _changed(self, request: Request, items: Any) -> list[Item]:
        since = request.arg("filter[updated_at][from]")
        chosen = [i for i in items if since is None or i["updated_at"] >= int(since)]
        return sorted(chosen, key=lambda i: i["id"])

    def _leads(self, request: Request) -> Response:
        leads = []
        with_ = request.arg("with") or ""
        for lead in self._changed(request, self.leads.values()):
            shown = copy.deepcopy(lead)
            reason = lead["loss_reason_id"]
            if "loss_reason" in with_ and reason:
                shown["_embedded"]["loss_reason"] = [{"id": reason,
                                                      "name": self.loss_reasons[reason]}]
            leads.append(shown)
        response = self._list(request, "/api/v4/leads", "leads", leads)
        if self.malformed and request.arg("page") == "2" and response.status == 200:
            first = response.body["_embedded"]["leads"][0]
            if self.malformed == "missing-id":
                del first["id"]
            elif self.malformed == "wrong-type":
                first["price"] = "12 000 ₽"
            else:
                return Response(200, b"<html><body>502 Bad Gateway</body></html>",
                                {"Content-Type": "text/html"})
        return response

    def _notes(self, request: Request, on: str) -> Response:
        types = request.query.get("filter[note_type][]") or [
            t for t in (request.arg("filter[note_type]") or "").split(",") if t]
        notes = [n for n in self._changed(request, self.notes[on].values())
                 if not types or n["note_type"] in types]
        return self._list(request, f"/api/v4/{on}/notes", "notes", notes)

    def _events(self, request: Request) -> Response:
        types = request.query.get("filter[type][]") or [
            t for t in (request.arg("filter[type]") or "").split(",") if t]
        since = request.arg("filter[created_at][from]")
        events = [e for e in self.events
                  if (not types or e["type"] in types)
                  and (since is None or e["created_at"] >= int(since))]
        events.sort(key=lambda e: e["created_at"], reverse=True)  # amoCRM: newest first
        return self._list(request, "/api/v4/events", "events", events, max_limit=100)

    def _list(self, request: Request, path: str, key: str, items: list[Item],
              max_limit: int = 250) -> Response:
        page = int(request.arg("page") or 1)
        limit = min(int(request.arg("limit") or 50), max_limit, self.page_size)
        chunk = copy.deepcopy(items[(page - 1) * limit: page * limit])
        if not chunk:
            return Response(204, None)
        links = self._links(f"{path}?page={page}&limit={limit}")
        if page * limit < len(items):
            links["next"] = {"href": f"https://fake.amocrm.ru{path}?page={page + 1}"
                                     f"&limit={limit}"}
        return Response(200, {"_page": page, "_links": links, "_embedded": {key: chunk}},
                        {"Content-Type": "application/hal+json"})

    # -- the same account as canonical CSV files ---------------------------------------
    def write_canonical_csv(self, folder: Path) -> Path:
        """reps, accounts, leads, deals, stage_changes and activities, mapped by hand."""
        folder.mkdir(parents=True, exist_ok=True)
        users = {u["id"] for u in self.users}
        stage_names = {(p, s): n for p, (_name, st) in self.pipelines.items()
                       for s, n in st.items()}

        def status(lead: Item) -> str:
            return {WON: "won", LOST: "lost"}.get(lead["status_id"], "open")

        def source(lead: Item) -> str:
            for field in lead["custom_fields_values"] or []:
                if field["field_code"] == "UTM_SOURCE" or field["field_name"] == "Источник":
                    return str(field["values"][0]["value"])
            return ""

        def company(lead: Item) -> str:
            companies = lead["_embedded"]["companies"]
            return str(companies[0]["id"]) if companies else ""

        tables: dict[str, tuple[list[str], list[list[object]]]] = {
            "reps": (["id", "name", "email", "team"],
                     [[u["id"], u["name"], u["email"],
                       self.groups[u["rights"]["group_id"]] if u["rights"]["group_id"] else ""]
                      for u in self.users]),
            "accounts": (["id", "name", "segment", "rep_id"],
                         [[c["id"], c["name"], "b2b", c["responsible_user_id"]]
                          for c in self.companies.values()]),
            "leads": (["id", "created_at", "rep_id", "source", "status"],
                      [[lead["id"], iso(lead["created_at"]), lead["responsible_user_id"],
                        source(lead), status(lead)] for lead in self.leads.values()]),
            "deals": (["id", "rep_id", "status", "created_at", "lead_id", "account_id",
                       "pipeline", "stage", "amount", "currency", "closed_at"],
                      [[lead["id"], lead["responsible_user_id"], status(lead),
                        iso(lead["created_at"]), lead["id"], company(lead),
                        self.pipelines[lead["pipeline_id"]][0],
                        stage_names[(lead["pipeline_id"], lead["status_id"])],
                        "" if lead["price"] is None else lead["price"], CURRENCY,
                        iso(lead["closed_at"]) if status(lead) != "open" else ""]
                       for lead in self.leads.values()]),
            "stage_changes": (["deal_id", "stage", "entered_at", "pipeline"], [
                [e["entity_id"],
                 stage_names[(e["value_after"][0]["lead_status"]["pipeline_id"],
                              e["value_after"][0]["lead_status"]["id"])],
                 iso(e["created_at"]),
                 self.pipelines[e["value_after"][0]["lead_status"]["pipeline_id"]][0]]
                for e in self.events
                if e["type"] == "lead_status_changed" and e["entity_id"] in self.leads]),
        }
        activities: list[list[object]] = []
        for on, notes in self.notes.items():
            for note in notes.values():
                is_call = note["note_type"].startswith("call_")
                target = note["entity_id"] if on == "leads" else ""
                activities.append([
                    f"{on}-{note['id']}", "call" if is_call else "note", note["created_by"],
                    iso(note["created_at"]), target, target, "",
                    note["note_type"].removeprefix("call_") if is_call else "",
                    note["params"]["duration"] if is_call else ""])
        for task in self.tasks.values():
            if not task["is_completed"] or task["responsible_user_id"] not in users:
                continue
            on_lead = task["entity_type"] == "leads"
            activities.append([
                f"task-{task['id']}", "meeting" if task["task_type_id"] == 2 else "task",
                task["responsible_user_id"], iso(task["complete_till"]),
                task["entity_id"] if on_lead else "", task["entity_id"] if on_lead else "",
                task["entity_id"] if task["entity_type"] == "companies" else "", "", ""])
        tables["activities"] = (["id", "type", "rep_id", "occurred_at", "lead_id", "deal_id",
                                 "account_id", "direction", "duration_s"], activities)
        for name, (header, rows) in tables.items():
            with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)
        return folder
