"""The Bitrix24 connector: REST through an inbound webhook, resumable page by page.

A sync reads the portal's directory first (users, departments, deal categories
and the status lists), then walks the phases below in order, one batch per API
page, each batch carrying the cursor to resume from once it is stored. The first
sync reads everything; later ones ask only for records modified since the
previous sync started (by the portal's clock), minus five minutes of overlap.

Lists are read in id order and anchored on the last id read (``filter[>ID]``),
with the answer's ``next`` telling whether more follow. The first page of a list
is asked alone; the pages after it come up to 50 in one ``batch`` request (stepping
by ``start`` from the same anchor), and a page whose ``total`` dropped (a record
deleted while the batch ran) is asked again from the last id read, so no record is
skipped.

Bitrix24 lists no deleted records. The ids of open deals and of leads in work
travel in the cursor; the last phase asks which of them still exist (50 ids a
call, 50 calls a batch) and deletes the rest (docs/connectors/bitrix24.md lists
what is and is not detected).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from saleskpi.domain.i18n import _
from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import Batch, ClientOptions, Field, register
from saleskpi.sources.connectors.crms.bitrix24 import mapping
from saleskpi.sources.connectors.crms.bitrix24.api import BATCH_SIZE, Bitrix24Api, parse_webhook_url
from saleskpi.sources.connectors.crms.bitrix24.payload import CRM, Item, Page, parse_time, read_page
from saleskpi.sources.connectors.crms.bitrix24.webhook import deleted_ids, verify_delivery
from saleskpi.sources.connectors.http import AuthError, ConnectorError

OVERLAP = dt.timedelta(minutes=5)
CHECK_CHUNK = 50  # ids asked for at once when looking for deleted records

PHASES = ("reps", "accounts", "leads", "deals", "stage_changes", "activities", "deletions")


@dataclass(frozen=True)
class Lister:
    """How one entity is listed: the method, the field it changes by, what to select."""

    method: str
    modified: str
    select: tuple[str, ...]
    key: str | None = None  # crm.stagehistory.list wraps its list: result.items
    extra: dict[str, Any] = field(default_factory=dict)


LISTERS = {
    "accounts": Lister("crm.company.list", "DATE_MODIFY", (
        "ID", "TITLE", "COMPANY_TYPE", "INDUSTRY", "ASSIGNED_BY_ID", "DATE_CREATE",
        "DATE_MODIFY")),
    "leads": Lister("crm.lead.list", "DATE_MODIFY", (
        "ID", "TITLE", "STATUS_ID", "STATUS_SEMANTIC_ID", "SOURCE_ID", "ASSIGNED_BY_ID",
        "COMPANY_ID", "DATE_CREATE", "DATE_MODIFY", "DATE_CLOSED", "MOVED_TIME")),
    "deals": Lister("crm.deal.list", "DATE_MODIFY", (
        "ID", "TITLE", "STAGE_ID", "STAGE_SEMANTIC_ID", "CATEGORY_ID", "OPPORTUNITY",
        "CURRENCY_ID", "PROBABILITY", "ASSIGNED_BY_ID", "DATE_CREATE", "CLOSEDATE", "CLOSED",
        "LEAD_ID", "COMPANY_ID", "DATE_MODIFY", "MOVED_TIME")),
    "stage_changes": Lister("crm.stagehistory.list", "CREATED_TIME", (
        "ID", "TYPE_ID", "OWNER_ID", "CREATED_TIME", "CATEGORY_ID", "STAGE_ID",
        "STAGE_SEMANTIC_ID"), key="items", extra={"entityTypeId": 2}),
    "activities": Lister("crm.activity.list", "LAST_UPDATED", (
        "ID", "OWNER_TYPE_ID", "OWNER_ID", "TYPE_ID", "PROVIDER_ID", "DIRECTION",
        "START_TIME", "END_TIME", "RESPONSIBLE_ID", "COMPLETED", "SUBJECT", "CREATED",
        "LAST_UPDATED")),
}

FIELDS = (
    Field("webhook_url", _("Bitrix24 inbound webhook address, e.g. "
                           "https://yourportal.bitrix24.ru/rest/1/abc123xyz/ (it contains "
                           "the key: keep it secret)"), secret=True),
    Field("outgoing_token", _("Bitrix24 outgoing webhook application token (application_token"
                              "), for webhooks to /webhooks/bitrix24"), secret=True),
)


def encode_ids(ids: Iterable[int]) -> str:
    """Sorted ids as ranges, "3-7,9,12-13": Bitrix24's ids are sequential, so this is short."""
    ranges: list[list[int]] = []
    for number in sorted(set(ids)):
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def decode_ids(text: str | None) -> set[int]:
    ids: set[int] = set()
    for part in (text or "").split(","):
        first, _sep, last = part.strip().partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            ids.update(range(int(first), int(last or first) + 1))
    return ids


def iso(moment: dt.datetime) -> str:
    """Naive UTC as ISO 8601 with its offset, as Bitrix24 filters take it."""
    return moment.replace(microsecond=0, tzinfo=dt.UTC).isoformat()


@dataclass
class Position:
    """Where a sync is and what it knows: the cursor, read and written."""

    phase: str | None  # None: no sync under way, start at the first phase
    after: int  # the last id read in this phase
    page: int
    since: str | None  # lower bound of this sync (None: a full load)
    started: str | None  # when this sync started, by the portal's clock
    open_deals: set[int]
    open_leads: set[int]

    @classmethod
    def read(cls, cursor: dict[str, str]) -> Position:
        phase = cursor.get("phase")
        after, page = cursor.get("after", ""), cursor.get("page", "")
        since, started = cursor.get("since") or "", cursor.get("started") or ""
        return cls(
            phase if phase in PHASES else None,
            int(after) if after.isdigit() and phase in PHASES else 0,
            max(int(page), 1) if page.isdigit() and phase in PHASES else 1,
            since if parse_time(since) else None,  # unreadable: a full load is safe
            started if phase in PHASES and parse_time(started) else None,
            decode_ids(cursor.get("open_deals")), decode_ids(cursor.get("open_leads")))

    def _known(self) -> dict[str, str]:
        return {"open_deals": encode_ids(self.open_deals),
                "open_leads": encode_ids(self.open_leads)}

    def at(self, phase: str, after: int = 0, page: int = 1) -> dict[str, str]:
        return {"phase": phase, "after": str(after), "page": str(page),
                "since": self.since or "", "started": self.started or "", **self._known()}

    def done(self) -> dict[str, str]:
        started = parse_time(self.started or "") or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return {"since": iso(started - OVERLAP), **self._known()}


class Bitrix24Connector:
    """One Bitrix24 portal (cloud or on-premise), reached through an inbound webhook."""

    name: str = CRM
    fields: tuple[Field, ...] = FIELDS
    # Bitrix24 deletes a deal's activities with the deal and lists them nowhere after:
    # the sync removes the stored ones when it sees the deal go (webhook or check).
    deleted_with_deal = frozenset({"activities"})

    def __init__(self, credentials: dict[str, str], options: ClientOptions,
                 clock: Callable[[], float] = time.time) -> None:
        raw = (credentials.get("webhook_url") or "").strip()
        self.token = (credentials.get("outgoing_token") or "").strip()
        if not raw:
            raise ConnectorError(_("{crm}: webhook_url is needed; run 'saleskpi connect {crm}'",
                                   crm=CRM))
        address = parse_webhook_url(raw)
        self.host = urlsplit(address.origin).netloc
        self.secrets = [s for s in (address.url, raw, address.key, self.token) if s]
        self.api = Bitrix24Api(address, options, self.secrets)
        self.clock = clock

    def check(self) -> str:
        """The portal's address and whose webhook this is, from one cheap call."""
        answer = self.api.call("profile", {})
        profile = Item("profile", "result", answer.get("result"))
        name = " ".join(p for p in (profile.text("NAME"), profile.text("LAST_NAME")) if p)
        return f"{self.host} ({name or profile.id()})"

    # -- a sync ----------------------------------------------------------------------
    def batches(self, cursor: dict[str, str]) -> Iterator[Batch]:
        position = Position.read(cursor)
        directory, portal_now = self._directory()
        if position.phase is None and position.since is None:
            # A full load learns the open records afresh.
            position.open_deals.clear()
            position.open_leads.clear()
        if position.phase is None or not position.started:
            # A new sync starts now, by the portal's clock (ours if it does not say).
            now = portal_now or dt.datetime.fromtimestamp(self.clock(), dt.UTC).replace(
                tzinfo=None)
            position.started = iso(now)
        emitted: set[str] = set()
        first = PHASES.index(position.phase) if position.phase else 0
        for index in range(first, len(PHASES)):
            phase = PHASES[index]
            following = PHASES[index + 1] if index + 1 < len(PHASES) else None
            if phase == "reps":
                rows = [mapping.rep_row(user, directory) for user in directory.users.values()]
                yield Batch({"reps": mapping.frame("reps", rows)}, {},
                            position.at(following or ""), _("reps ({count})", count=len(rows)))
            elif phase == "deletions":
                yield self._deletions(position)
            else:
                resume = position.phase == phase
                yield from self._phase(phase, position, directory, emitted,
                                       position.after if resume else 0,
                                       position.page if resume else 1, following or "")

    def _directory(self) -> tuple[mapping.Directory, dt.datetime | None]:
        directory = mapping.Directory()
        users, portal_now = self.api.every("user.get", {"sort": "ID", "order": "ASC"})
        directory.users = {user.id(): user for user in users}
        try:
            departments, _time = self.api.every("department.get", {"sort": "ID", "order": "ASC"})
        except AuthError:
            departments = []  # a webhook without the department scope: no teams
        for department in departments:
            directory.departments[department.id()] = (
                department.text("NAME") or department.id(), department.id_or_none("UF_HEAD"),
                department.id_or_none("PARENT"))
        categories, _time = self.api.every("crm.category.list", {"entityTypeId": 2},
                                           key="categories")
        for category in categories:
            category_id = category.whole_or_none("id")
            if category_id is None:
                raise category.missing("id")
            directory.pipelines[str(category_id)] = category.text("name") or str(category_id)
        statuses, _time = self.api.every("crm.status.list", {"order": {"SORT": "ASC"}})
        for status in statuses:
            directory.read_status(status)
        return directory, portal_now

    def _phase(self, phase: str, position: Position, directory: mapping.Directory,
               emitted: set[str], after: int, page_no: int, following: str) -> Iterator[Batch]:
        for items, last, more in self._pages(LISTERS[phase], position.since, after):
            frames, deleted = self._rows(phase, items, position, directory)
            strangers = sorted(directory.strangers - emitted)
            if strangers:
                emitted.update(strangers)
                frames["reps"] = mapping.frame(
                    "reps", [mapping.placeholder_rep_row(s) for s in strangers])
            resume = position.at(phase, last, page_no + 1) if more else position.at(following)
            if frames or deleted or not more:
                yield Batch(frames, deleted, resume,
                            _("{entity}, page {page}", entity=phase, page=page_no))
            if not more:
                return
            page_no += 1

    def _pages(self, lister: Lister, since: str | None,
               after: int) -> Iterator[tuple[list[Item], int, bool]]:
        """Every page of records after id ``after``: (records, the last id, more follow?).

        The first page is asked alone; its ``total`` tells how many pages follow, and
        those come up to 50 in one ``batch`` request, all anchored on the same last id
        and stepping by ``start``. A record deleted while a batch runs would shift the
        pages after it: when a page's ``total`` is below the one before it, the pages
        from there on are dropped and asked again, anchored on the last id read.
        """

        def params(anchor: int, start: int) -> dict[str, Any]:
            filters: dict[str, Any] = {">ID": anchor}
            if since:
                filters[f">{lister.modified}"] = since
            return {**lister.extra, "order": {"ID": "ASC"}, "filter": filters,
                    "select": list(lister.select), "start": start}

        first = self.api.page(lister.method, params(after, 0), lister.key)
        size = first.next or 0  # the portal's page (50); the first page starts at 0
        queue: deque[Page] = deque([first])
        failure: ConnectorError | None = None
        while queue:
            page = queue.popleft()
            if any(int(item.id()) <= after for item in page.items):
                # A record appeared among those read (modified during the sync): the
                # pages after it moved on; ask again from the last id read.
                queue, failure = deque([self.api.page(lister.method, params(after, 0),
                                                      lister.key)]), None
                continue
            last = max((int(item.id()) for item in page.items), default=after)
            more = page.next is not None and bool(page.items) and last > after
            yield page.items, last, more
            if not more:
                return
            after = last
            if queue:
                continue
            if failure is not None:
                raise failure
            left = None if page.total is None else page.total - (page.next or 0)
            wanted = BATCH_SIZE if left is None else max(1, min(BATCH_SIZE, -(-left // size)))
            answers, failure = self.api.batch(
                [(lister.method, params(after, index * size)) for index in range(wanted)])
            total: int | None = None
            for answer in answers:
                read = read_page(lister.method, answer, lister.key)
                if total is not None and read.total is not None and read.total < total:
                    failure = None  # a record went away during the batch: the pages from
                    break  # here on may have skipped one; they are asked again
                total = read.total if read.total is not None else total
                queue.append(read)
            if not queue:
                if failure is not None:
                    raise failure
                queue.append(self.api.page(lister.method, params(after, 0), lister.key))

    def _rows(self, phase: str, items: list[Item], position: Position,
              directory: mapping.Directory) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """One page as frames (and deletions), keeping the open-record sets up to date."""
        deleted: dict[str, list[str]] = {}
        if phase == "accounts":
            rows = [mapping.account_row(item, directory) for item in items]
        elif phase == "leads":
            rows = [mapping.lead_row(item, directory) for item in items]
            for row in rows:
                _track(position.open_leads, row["id"], row["status"] == "open")
        elif phase == "deals":
            rows = [mapping.deal_row(item, directory) for item in items]
            for row in rows:
                _track(position.open_deals, row["id"], row["status"] == "open")
        elif phase == "stage_changes":
            rows = [mapping.stage_change_row(item, directory) for item in items]
        else:
            rows = []
            not_done: list[str] = []
            for item in items:
                activity = mapping.activity_row(item, directory)
                if activity is None:  # planned, or reopened: not (or no longer) an activity
                    not_done.append(item.id())
                else:
                    rows.append(activity)
            if not_done:
                deleted["activities"] = not_done
        frames = {phase: mapping.frame(phase, rows)} if rows else {}
        return frames, deleted

    def _deletions(self, position: Position) -> Batch:
        """Open deals and leads in work that no longer exist: deleted, or merged away.

        A full load has just read every record that exists: nothing to ask.
        """
        full = position.since is None
        gone = {} if full else self._missing({"crm.deal.list": position.open_deals,
                                              "crm.lead.list": position.open_leads})
        gone_deals, gone_leads = gone.get("crm.deal.list", []), gone.get("crm.lead.list", [])
        position.open_deals.difference_update(int(i) for i in gone_deals)
        position.open_leads.difference_update(int(i) for i in gone_leads)
        deleted = {"deals": gone_deals, "stage_changes": gone_deals, "leads": gone_leads}
        return Batch({}, {k: v for k, v in deleted.items() if v}, position.done(),
                     _("deleted records"))

    def _missing(self, known: dict[str, set[int]]) -> dict[str, list[str]]:
        """Which of these ids each list method no longer lists: 50 ids a call, up to 50
        calls (deals and leads together) in one batch request.

        A call answers with the ids it found, lowest first; if it has a next page, the
        ids above the last one found are asked again in the next round.
        """
        wanted: deque[tuple[str, list[int]]] = deque()
        for method, ids in known.items():
            ordered = sorted(ids)
            wanted.extend((method, ordered[offset:offset + CHECK_CHUNK])
                          for offset in range(0, len(ordered), CHECK_CHUNK))
        gone: dict[str, list[str]] = {}
        while wanted:
            chunks = [wanted.popleft() for _n in range(min(BATCH_SIZE, len(wanted)))]
            answers, failure = self.api.batch([
                (method, {"filter": {"ID": chunk}, "select": ["ID"], "order": {"ID": "ASC"},
                          "start": 0}) for method, chunk in chunks])
            for (method, chunk), answer in zip(chunks, answers, strict=False):
                page = read_page(method, answer)
                present = {int(item.id()) for item in page.items}
                seen = max(present, default=0)
                unknown = [i for i in chunk if i > seen] if page.next and present else []
                gone.setdefault(method, []).extend(
                    str(i) for i in chunk if i not in present and i not in unknown)
                if unknown:
                    wanted.append((method, unknown))
            if failure is not None:
                raise failure
            wanted.extendleft(reversed(chunks[len(answers):]))  # not run: asked again
        return {method: sorted(ids, key=int) for method, ids in gone.items()}

    # -- webhooks ------------------------------------------------------------------------
    def verify_webhook(self, request: WebhookRequest) -> str:
        return verify_delivery(request, token=self.token)

    def webhook_deletions(self, request: WebhookRequest) -> dict[str, list[str]]:
        """The ids a verified ``...DELETE`` delivery names that the portal no longer lists.

        Asked of the portal (one call): stored data is removed only on the CRM's word.
        """
        named = deleted_ids(request)
        if not named:
            return {}
        method = {"deals": "crm.deal.list", "leads": "crm.lead.list",
                  "accounts": "crm.company.list", "activities": "crm.activity.list"}
        entity = next(e for e in named if e in method)
        gone = set(self._missing({method[entity]: {int(i) for i in named[entity]}})
                   .get(method[entity], []))
        return {e: [i for i in ids if i in gone] for e, ids in named.items()
                if any(i in gone for i in ids)}


def _track(known: set[int], record_id: str, is_open: bool) -> None:
    if is_open:
        known.add(int(record_id))
    else:
        known.discard(int(record_id))


register(CRM)(Bitrix24Connector)
