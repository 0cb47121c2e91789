"""The HubSpot connector: owners, companies, contacts, deals and engagements, resumable.

A run reads the account's owners and deal pipelines first (always: they are few,
and every record's owner and stage are resolved against them), then one object
type after another, page by page, then the archived (deleted) objects of each.
The first run lists everything; later runs search for what was modified since
the previous run began (minus an overlap: re-reading a record changes nothing).
Each page becomes one batch whose cursor says where to go on, so a run that
stops midway resumes at the page after the last stored one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

from saleskpi.domain.i18n import _
from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import Batch, ClientOptions, Field, register
from saleskpi.sources.connectors.crms.hubspot import webhook
from saleskpi.sources.connectors.crms.hubspot.api import HubSpotApi, Page, Record
from saleskpi.sources.connectors.crms.hubspot.mapping import (
    BY_NAME,
    OBJECTS,
    Context,
    Mapper,
    ObjectType,
    Row,
    frame,
    merged_ids,
    parse_time,
    rep_row,
    stages_from,
    unassigned_rep,
)
from saleskpi.sources.connectors.http import ConnectorError

DEFAULT_BASE_URL = "https://api.hubapi.com"
# Later runs re-read what changed shortly before the previous run began: HubSpot's
# search index lags behind writes by seconds, and clocks drift.
OVERLAP_MS = 5 * 60 * 1000
DELETED = "deleted:"
PHASES: tuple[str, ...] = (*(o.name for o in OBJECTS), *(DELETED + o.name for o in OBJECTS))
DONE = "done"
MODES = ("full", "incremental")


def now_ms() -> int:
    return int(time.time() * 1000)


def to_ms(stamp: dt.datetime) -> int:
    return int(stamp.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.lstrip("-").isdigit() else None


@dataclass
class RunState:
    """Where a run is: the cursor saved after each batch, as an object."""

    mode: str  # full: list everything; incremental: search by modification time
    since: int | None  # incremental: changes at or after this (ms since the epoch)
    next_since: int  # where the next run will start (this run's start minus the overlap)
    phase: str  # an object type, "deleted:<type>", or "done"
    after: str = ""  # HubSpot's paging cursor within the phase
    floor: int | None = None  # search: the modification time searched from
    page: int = 0  # pages done in this phase (for progress)

    @classmethod
    def start(cls, cursor: dict[str, str], now: int) -> RunState:
        since = _int(cursor.get("since"))
        phase = cursor.get("phase", "")
        if phase == DONE and since is not None:
            return cls("incremental", since, now - OVERLAP_MS, PHASES[0], floor=since)
        mode, next_since = cursor.get("mode", ""), _int(cursor.get("next_since"))
        if (phase in PHASES and mode in MODES and next_since is not None
                and (mode == "full" or since is not None)):
            return cls(mode, since, next_since, phase, cursor.get("after", ""),
                       _int(cursor.get("floor")), _int(cursor.get("page")) or 0)
        return cls("full", None, now - OVERLAP_MS, PHASES[0])  # first run, or unreadable

    def cursor(self) -> dict[str, str]:
        if self.phase == DONE:
            return {"phase": DONE, "since": str(self.next_since)}
        return {"mode": self.mode, "phase": self.phase, "page": str(self.page),
                "after": self.after, "since": "" if self.since is None else str(self.since),
                "floor": "" if self.floor is None else str(self.floor),
                "next_since": str(self.next_since)}

    def next_page(self, after: str, floor: int | None = None) -> None:
        self.after = after
        if floor is not None:
            self.floor = floor
        self.page += 1

    def next_phase(self) -> None:
        index = PHASES.index(self.phase) + 1
        self.phase = PHASES[index] if index < len(PHASES) else DONE
        self.after, self.floor, self.page = "", self.since, 0


@register("hubspot")
class HubSpotConnector:
    """HubSpot CRM v3 with a private app's access token."""

    name: str = "hubspot"
    fields: tuple[Field, ...] = (
        Field("base_url", _("HubSpot API address (normally https://api.hubapi.com)")),
        Field("access_token", _("Private app access token (Settings > Integrations > "
                                "Private apps)"), secret=True),
        Field("client_secret", _("The app's client secret (signs webhooks)"), secret=True),
        Field("webhook_url", _("Public URL HubSpot sends webhooks to, e.g. "
                               "https://kpi.example.com/webhooks/hubspot")),
    )

    def __init__(self, credentials: dict[str, str], options: ClientOptions) -> None:
        self.credentials = credentials
        self.options = options
        self.base_url = (credentials.get("base_url") or "").strip() or DEFAULT_BASE_URL

    def _api(self) -> HubSpotApi:
        token = (self.credentials.get("access_token") or "").strip()
        if not token:
            raise ConnectorError(_("HubSpot: no access token is stored; run 'saleskpi connect "
                                   "hubspot' with a private app's token"))
        return HubSpotApi(self.base_url, token, self.options,
                          secrets=(self.credentials.get("client_secret") or "",))

    def check(self) -> str:
        api = self._api()
        try:
            account = api.account()
            api.get("/crm/v3/owners", limit="1")  # the token can read the CRM, too
        finally:
            api.close()
        return _("HubSpot portal {portal} ({domain}, currency {currency})",
                 portal=account.get("portalId", "?"), domain=account.get("uiDomain", "?"),
                 currency=account.get("companyCurrency", "?"))

    def verify_webhook(self, request: WebhookRequest) -> str:
        return webhook.verify(request, self.credentials.get("client_secret"),
                              self.credentials.get("webhook_url"))

    # -- sync --------------------------------------------------------------------------
    def batches(self, cursor: dict[str, str]) -> Iterator[Batch]:
        state = RunState.start(cursor, now_ms())
        api = self._api()
        try:
            context, reps = self._account(api)
            yield Batch(frames={"reps": frame("reps", reps)}, cursor=state.cursor(),
                        label=_("owners"))
            last = state.cursor()
            while state.phase != DONE:
                if state.phase.startswith(DELETED):
                    batch = self._deleted_page(api, state)
                else:
                    batch = self._changed_page(api, state, context)
                if batch is not None:
                    last = batch.cursor
                    yield batch
            if last != state.cursor():
                yield Batch(cursor=state.cursor(), label=_("up to date"))
        finally:
            api.close()

    def _account(self, api: HubSpotApi) -> tuple[Context, list[Row]]:
        currency = api.account().get("companyCurrency")
        reps: dict[str, Row] = {}
        for i, owner in enumerate(api.owners()):
            row = rep_row(owner, "/crm/v3/owners", i)
            reps.setdefault(row["id"], row)
        context = stages_from(api.deal_pipelines(), "/crm/v3/pipelines/deals")
        context.owners = set(reps)
        context.currency = currency if isinstance(currency, str) and currency else None
        return context, list(reps.values())

    def _changed_page(self, api: HubSpotApi, state: RunState, context: Context) -> Batch | None:
        kind = BY_NAME[state.phase]
        label = _("{objects}, page {page}", objects=kind.name, page=state.page + 1)
        if state.mode == "full":
            page = api.list_page(kind.name, state.after, kind.properties, kind.associations,
                                 kind.history)
            batch = self._map(kind, page, context)
            if page.after:
                state.next_page(page.after)
            else:
                state.next_phase()
        else:
            floor = state.floor if state.floor is not None else state.since or 0
            page = api.search_page(kind.name, kind.modified, floor, state.after,
                                   kind.properties)
            # From the search itself: a record read again below may have changed since.
            newest = max((to_ms(t) for t in (
                parse_time(r.properties.get(kind.modified), page.endpoint,
                           f"{r.id}.properties.{kind.modified}") for r in page.records) if t),
                default=floor)
            self._complete(api, kind, page)
            batch = self._map(kind, page, context)
            if not page.after:
                state.next_phase()
            elif newest > floor:
                # Search from the newest change seen rather than page on: HubSpot stops
                # paging a search at 10,000 results, and records modified meanwhile
                # move to the end and would shift the pages.
                state.next_page("", floor=newest)
            else:
                state.next_page(page.after)
        batch.cursor, batch.label = state.cursor(), label
        return batch if batch.frames or batch.deleted else None

    def _complete(self, api: HubSpotApi, kind: ObjectType, page: Page) -> None:
        """Search answers carry no history and no associations: fetch them for the page."""
        ids = [r.id for r in page.records]
        if not ids:
            return
        if kind.history:
            fresh = api.batch_read(kind.name, ids, kind.properties, kind.history)
            page.records = [fresh.get(r.id, r) for r in page.records]
        for target in kind.associations:
            links = api.associations(kind.name, target, ids)
            for record in page.records:
                record.associations[target] = links.get(record.id, [])

    def _map(self, kind: ObjectType, page: Page, context: Context) -> Batch:
        mapper = Mapper(context, page.endpoint)
        records: list[Record] = page.records
        batch = Batch()
        if kind.entity == "accounts":
            rows = [mapper.account(r) for r in records]
        elif kind.entity == "leads":
            rows = [mapper.lead(r) for r in records]
        elif kind.entity == "deals":
            rows, changes = [], []
            for record in records:
                row, history = mapper.deal(record)
                rows.append(row)
                changes += history
            if changes:
                batch.frames["stage_changes"] = frame("stage_changes", changes)
        else:
            rows = [mapper.activity(r, kind.activity or kind.name) for r in records]
        if rows:
            batch.frames[kind.entity] = frame(kind.entity, rows)
        if mapper.unassigned_used:
            batch.frames["reps"] = frame("reps", [unassigned_rep()])
        merged = [m for r in records for m in merged_ids(r, page.endpoint)]
        if merged:
            self._delete(batch, kind, merged)
        return batch

    def _deleted_page(self, api: HubSpotApi, state: RunState) -> Batch | None:
        kind = BY_NAME[state.phase.removeprefix(DELETED)]
        label = _("deleted {objects}, page {page}", objects=kind.name, page=state.page + 1)
        page = api.list_page(kind.name, state.after, ("hs_object_id",), archived=True)
        gone = []
        for record in page.records:
            archived = parse_time(record.archived_at, page.endpoint, f"{record.id}.archivedAt")
            if state.since is None or archived is None or to_ms(archived) >= state.since:
                gone.append(record.id)
        if page.after:
            state.next_page(page.after)
        else:
            state.next_phase()
        batch = Batch(cursor=state.cursor(), label=label)
        if gone:
            self._delete(batch, kind, gone)
        return batch if batch.deleted else None

    @staticmethod
    def _delete(batch: Batch, kind: ObjectType, ids: list[str]) -> None:
        batch.deleted.setdefault(kind.entity, []).extend(ids)
        if kind.entity == "deals":  # a deal's stage history goes with it
            batch.deleted.setdefault("stage_changes", []).extend(ids)
