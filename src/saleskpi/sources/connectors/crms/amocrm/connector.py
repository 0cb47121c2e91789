"""The amoCRM / Kommo connector: API v4 into canonical batches, resumable page by page.

A sync reads the account's structure (users, their groups, pipelines and
stages) first, then walks the phases below in order, one batch per API page,
each batch carrying the cursor to resume from once it is stored. The first sync
reads everything; later ones ask only for records changed since the previous
sync started, minus a few minutes of overlap (upserts make re-reading harmless).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import Batch, ClientOptions, Field, register
from saleskpi.sources.connectors.crms.amocrm import mapping
from saleskpi.sources.connectors.crms.amocrm.records import CRM, Record, page_items
from saleskpi.sources.connectors.crms.amocrm.webhook import subdomain_of, verify_delivery
from saleskpi.sources.connectors.http import ApiClient, AuthError, ConnectorError, redact

PAGE_LIMIT = 250  # amoCRM's maximum for lists
EVENTS_LIMIT = 100  # ...and for the events list
OVERLAP_S = 5 * 60  # re-read this much before the previous sync's start
# amoCRM allows 7 requests a second per integration: ClientOptions' default (5/s)
# stays under it, and a 429 is retried after the Retry-After it sends.

PHASES = ("reps", "accounts", "deals", "stage_changes", "calls", "contact_calls", "tasks",
          "deletions")
DELETION_EVENTS = "lead_deleted,lead_restored,company_deleted,company_restored"

FIELDS = (
    Field("base_url", _("amoCRM or Kommo address, e.g. https://acme.amocrm.ru")),
    Field("access_token", _("amoCRM long-lived access token"), secret=True),
    Field("webhook_secret", _("Webhook secret: amoCRM will call /webhooks/amocrm/<secret>"),
          secret=True),
)


@dataclass(frozen=True)
class Position:
    """Where a sync is: the phase and page to read next, and the time window."""

    phase: str | None  # None: no sync under way, start at the first phase
    page: int
    since: int | None  # None: a full load
    started: int

    @classmethod
    def read(cls, cursor: dict[str, str], now: int) -> Position:
        since = _int(cursor.get("since"))
        phase = cursor.get("phase")
        if phase not in PHASES:
            return cls(None, 1, since, now)
        return cls(phase, max(_int(cursor.get("page")) or 1, 1), since,
                   _int(cursor.get("started")) or now)

    def at(self, phase: str, page: int) -> dict[str, str]:
        return {"phase": phase, "page": str(page), "since": str(self.since or ""),
                "started": str(self.started)}

    def done(self) -> dict[str, str]:
        return {"since": str(self.started - OVERLAP_S)}


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


@dataclass
class Page:
    frames: dict[str, list[mapping.Row]]
    deleted: dict[str, list[str]]
    has_next: bool


class AmoCrmConnector:
    """amoCRM (amocrm.ru / amocrm.com) and Kommo (kommo.com): the same API v4."""

    name: str = CRM
    fields: tuple[Field, ...] = FIELDS
    # Calls and tasks on a deleted lead are no longer listed, yet they happened: a full
    # sync keeps them (as the incremental one does).
    kept_when_unlisted = frozenset({"activities"})

    def __init__(self, credentials: dict[str, str], options: ClientOptions,
                 clock: Callable[[], float] = time.time) -> None:
        base_url = (credentials.get("base_url") or "").strip().rstrip("/")
        if base_url and not re.match(r"^https?://", base_url):
            base_url = "https://" + base_url
        token = (credentials.get("access_token") or "").strip()
        if not base_url or not token:
            raise ConnectorError(_(
                "{crm}: base_url and access_token are both needed; run 'saleskpi connect "
                "{crm}'", crm=CRM))
        self.base_url = base_url
        self.webhook_secret = credentials.get("webhook_secret") or ""
        self.secrets = [token, self.webhook_secret]
        self.clock = clock
        self.client: ApiClient = options.client(
            CRM, base_url, headers={"Authorization": f"Bearer {token}"},
            secrets=self.secrets)

    # -- the API -----------------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.client.get(path, **(params or {}))
        except AuthError:
            raise AuthError(redact(_(
                "{crm}: amoCRM refused the access token at {path}: it has expired, was "
                "revoked or lacks access. Create a new long-lived token in amoCRM (Settings → "
                "Integrations → your integration → Keys and scopes) and run 'saleskpi connect "
                "{crm}' again.",
                crm=CRM, path=path), self.secrets)) from None

    def _page(self, path: str, key: str, page: int, params: dict[str, Any],
              limit: int = PAGE_LIMIT) -> tuple[list[Record], bool]:
        body = self._get(path, {**params, "page": page, "limit": limit})
        return page_items(path, body, key)

    def check(self) -> str:
        """The account's name and subdomain, from one cheap call."""
        account = Record("/api/v4/account", "<response>", self._get("/api/v4/account"))
        return f"{account.required_text('name')} ({account.text('subdomain') or '-'})"

    # -- a sync --------------------------------------------------------------------
    def batches(self, cursor: dict[str, str]) -> Iterator[Batch]:
        position = Position.read(cursor, int(self.clock()))
        directory, user_pages = self._directory()
        first = PHASES.index(position.phase) if position.phase else 0
        for index in range(first, len(PHASES)):
            phase = PHASES[index]
            page = position.page if phase == position.phase else 1
            while True:
                read = self._read(phase, page, position.since, directory, user_pages)
                if read.has_next:
                    resume = position.at(phase, page + 1)
                elif index + 1 < len(PHASES):
                    resume = position.at(PHASES[index + 1], 1)
                else:
                    resume = position.done()
                frames = {entity: mapping.frame(entity, rows)
                          for entity, rows in read.frames.items() if rows}
                deleted = {entity: ids for entity, ids in read.deleted.items() if ids}
                if frames or deleted or "phase" not in resume:
                    # An empty page is not worth a store transaction: the next batch's
                    # cursor covers it, and a crash before then re-reads an empty page.
                    yield Batch(frames, deleted, resume,
                                _("{entity}, page {page}", entity=phase, page=page))
                if not read.has_next:
                    break
                page += 1

    def _directory(self) -> tuple[mapping.Directory, list[list[Record]]]:
        """Users, groups, pipelines and currency: names for ids, on every sync."""
        account = Record("/api/v4/account", "<response>",
                         self._get("/api/v4/account", {"with": "users_groups"}))
        currency = account.text("currency")
        directory = mapping.Directory(
            currency=currency.upper() if currency and re.fullmatch(r"[A-Za-z]{3}", currency)
            else None)
        for group in account.embedded("users_groups"):
            directory.teams[group.whole("id")] = group.text("name") or str(group.whole("id"))
        user_pages: list[list[Record]] = []
        page, more = 1, True
        while more:
            users, more = self._page("/api/v4/users", "users", page, {})
            user_pages.append(users)
            directory.users.update(user.whole("id") for user in users)
            page += 1
        # Not paged: amoCRM returns every pipeline (at most 50) with its stages at once.
        path = "/api/v4/leads/pipelines"
        pipelines, _more = page_items(path, self._get(path), "pipelines")
        mapping.read_pipelines(directory, pipelines)
        return directory, user_pages

    def _read(self, phase: str, page: int, since: int | None,
              directory: mapping.Directory, user_pages: list[list[Record]]) -> Page:
        changed = {"filter[updated_at][from]": since} if since else {}
        by_id = {"order[id]": "asc", **changed}  # stable pages while records change
        if phase == "reps":
            users = user_pages[page - 1] if page <= len(user_pages) else []
            return Page({"reps": [mapping.rep_row(u, directory) for u in users]}, {},
                        page < len(user_pages))
        if phase == "accounts":
            companies, more = self._page("/api/v4/companies", "companies", page, by_id)
            return Page({"accounts": [mapping.account_row(c, directory) for c in companies]},
                        {}, more)
        if phase == "deals":
            return self._deals(page, {**by_id, "with": "loss_reason"}, directory)
        if phase == "stage_changes":
            params: dict[str, Any] = {"filter[type]": "lead_status_changed"}
            if since:
                params["filter[created_at][from]"] = since
            events, more = self._page("/api/v4/events", "events", page, params, EVENTS_LIMIT)
            rows = [mapping.stage_change_row(e, directory) for e in events]
            return Page({"stage_changes": [r for r in rows if r is not None]}, {}, more)
        if phase in ("calls", "contact_calls"):
            on = "leads" if phase == "calls" else "contacts"
            types = ["call_in", "call_out", "common"] if on == "leads" else ["call_in",
                                                                             "call_out"]
            notes, more = self._page(f"/api/v4/{on}/notes", "notes", page,
                                     {**by_id, "filter[note_type][]": types})
            rows = [mapping.note_row(n, directory, on=on) for n in notes]
            return Page({"activities": [r for r in rows if r is not None]}, {}, more)
        if phase == "tasks":
            return self._tasks(page, by_id, directory)
        return self._deletions(since)

    def _deals(self, page: int, params: dict[str, Any],
               directory: mapping.Directory) -> Page:
        leads, more = self._page("/api/v4/leads", "leads", page, params)
        deals: list[mapping.Row] = []
        canonical_leads: list[mapping.Row] = []
        gone: list[str] = []
        for lead in leads:
            if lead.flag("is_deleted"):
                gone.append(lead.id())
                continue
            deal, canonical_lead = mapping.deal_and_lead_rows(lead, directory)
            deals.append(deal)
            canonical_leads.append(canonical_lead)
        return Page({"leads": canonical_leads, "deals": deals},
                    {"deals": gone, "leads": gone, "stage_changes": gone}, more)

    def _tasks(self, page: int, params: dict[str, Any],
               directory: mapping.Directory) -> Page:
        tasks, more = self._page("/api/v4/tasks", "tasks", page, params)
        rows: list[mapping.Row] = []
        reopened: list[str] = []
        for task in tasks:
            row = mapping.task_row(task, directory)
            if row is not None:
                rows.append(row)
            elif not task.flag("is_completed"):
                # Completed once, reopened since: it has not happened after all.
                reopened.append(f"task-{task.id()}")
        return Page({"activities": rows}, {"activities": reopened}, more)

    def _deletions(self, since: int | None) -> Page:
        """Deleted leads and companies, from the events list, in one batch.

        All pages are read before anything is deleted: a lead deleted and then
        restored must stay, and the two events may sit on different pages.
        """
        params: dict[str, Any] = {"filter[type]": DELETION_EVENTS}
        if since:
            params["filter[created_at][from]"] = since
        latest: dict[tuple[str, str], tuple[int, str]] = {}
        page, more = 1, True
        while more:
            events, more = self._page("/api/v4/events", "events", page, params, EVENTS_LIMIT)
            for event in events:
                kind = event.required_text("type")
                key = (event.required_text("entity_type"), event.id("entity_id"))
                when = event.time("created_at")
                if key not in latest or latest[key][0] <= when:
                    latest[key] = (when, kind)
            page += 1
        leads = sorted(i for (e, i), (_w, k) in latest.items()
                       if e == "lead" and k == "lead_deleted")
        companies = sorted(i for (e, i), (_w, k) in latest.items()
                           if e == "company" and k == "company_deleted")
        return Page({}, {"deals": leads, "leads": leads, "stage_changes": leads,
                         "accounts": companies}, False)

    # -- webhooks --------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> str:
        return verify_delivery(request, secret=self.webhook_secret,
                               subdomain=subdomain_of(self.base_url))


register(CRM)(AmoCrmConnector)
