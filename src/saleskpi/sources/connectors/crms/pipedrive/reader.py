"""The order of a sync and where it resumes: phases, pages and the cursor.

A first sync reads every list endpoint in dependency order (users before
everything that points to them); each page is one batch whose cursor points at
the next page. Later syncs read the users again (new deals may name a new
owner), the leads, archived leads and archived deals changed since the last
sync (newest first, stopping at the first older one) and ``/v1/recents``:
deals, activities, organizations and notes changed since then, deletions
included. Every time-based cursor keeps an overlap: re-reading a few minutes
twice is harmless, missing one is not.

Since 15 July 2025 ``/v1/deals`` and ``/v1/leads`` list no archived item; only
``/v1/deals/archived`` and ``/v1/leads/archived`` do, so both are read too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.base import Batch
from saleskpi.sources.connectors.crms.pipedrive.mapping import (
    NOTE_PREFIX,
    Lookups,
    Rows,
    add_activity,
    add_deal,
    add_lead,
    add_note,
    add_organization,
    add_stage_history,
    add_user,
    deal_is_deleted,
    stage_moves,
)
from saleskpi.sources.connectors.crms.pipedrive.payload import (
    Page,
    Record,
    malformed,
    read_all,
    read_all_cursor,
    read_cursor_page,
    read_page,
)
from saleskpi.sources.connectors.http import ApiClient

PAGE_SIZE = 500  # Pipedrive's largest page: a list request costs the same at any size
OVERLAP = dt.timedelta(minutes=5)  # recents are eventually consistent; re-read a little
STAMP = "%Y-%m-%d %H:%M:%S"  # since_timestamp, in UTC
FULL = ("users", "accounts", "leads", "archived_leads", "deals", "archived_deals",
        "activities", "notes")
INCREMENTAL = ("users", "leads", "archived_leads", "archived_deals", "recents")
# Newest-first phases: (endpoint, label, the cursor field holding "read again from").
NEWEST_FIRST = {
    "leads": ("/v1/leads", "leads", "leads_since"),
    "archived_leads": ("/v1/leads/archived", "archived leads", "archived_leads_since"),
}
STAMPS = ("since", "floor", "seen", "leads_since", "archived_leads_since",
          "archived_deals_since")
RECENT_ITEMS = "deal,activity,organization,note"


@dataclass(frozen=True)
class Cursor:
    """Where a sync resumes; stored as ``dict[str, str]`` after each batch."""

    mode: str  # "full" or "incremental"
    phase: str
    start: int = 0  # offset within the phase's list
    since: str = ""  # recents: changes after this (our last look, minus the overlap)
    floor: str = ""  # recents: ``since`` when this pass began
    seen: str = ""  # newest change time seen in this pass (recents, or leads)
    leads_since: str = ""  # leads changed at or after this are read again
    archived_leads_since: str = ""  # the same for archived leads
    archived_deals_since: str = ""  # the same for archived deals (``updated_since``)
    page: str = ""  # API v2 lists: the opaque cursor of the next page

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items() if v != ""}

    @classmethod
    def first(cls, now: dt.datetime) -> Cursor:
        since = (now - OVERLAP).strftime(STAMP)
        return cls("full", FULL[0], since=since, leads_since=since,
                   archived_leads_since=since, archived_deals_since=since)

    @classmethod
    def parse(cls, stored: dict[str, str], now: dt.datetime) -> Cursor:
        """The stored cursor; an empty or unreadable one starts a full sync (upserts are safe)."""
        try:
            cursor = cls(mode=stored["mode"], phase=stored["phase"],
                         start=int(stored.get("start", "0")),
                         page=stored.get("page", ""),
                         **{k: stored.get(k, "") for k in STAMPS})
            phases = FULL if cursor.mode == "full" else INCREMENTAL
            if cursor.phase not in phases or cursor.start < 0 or not cursor.since:
                raise ValueError
            for stamp in (getattr(cursor, name) for name in STAMPS):
                if stamp:
                    dt.datetime.strptime(stamp, STAMP)
        except (KeyError, ValueError, TypeError):
            return cls.first(now)
        return cursor

    def phases(self) -> tuple[str, ...]:
        return FULL if self.mode == "full" else INCREMENTAL

    def next_phase(self) -> Cursor:
        """The cursor at the start of the phase after this one (a full sync ends incremental)."""
        phases = self.phases()
        index = phases.index(self.phase) + 1
        if index < len(phases):
            following = phases[index]
            floor = self.since if following == "recents" else ""
            return replace(self, phase=following, start=0, floor=floor, seen="", page="")
        return Cursor("incremental", INCREMENTAL[0], since=self.since,
                      leads_since=self.leads_since,
                      archived_leads_since=self.archived_leads_since,
                      archived_deals_since=self.archived_deals_since)


# A phase yields its batches and returns the cursor of the phase after it.
Phase = Generator[Batch, None, Cursor]


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime(STAMP)


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, STAMP)


def _later(a: str, b: str) -> str:
    return max(a, b) if a and b else a or b  # same fixed format: text order is time order


class Reader:
    """Turns the API into batches, starting from a cursor."""

    def __init__(self, client: ApiClient, now: Callable[[], dt.datetime],
                 page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.now = now
        self.page_size = page_size
        self._lookups: Lookups | None = None

    @property
    def lookups(self) -> Lookups:
        """Pipelines and stages, read once per sync (two requests)."""
        if self._lookups is None:
            lookups = Lookups()
            for record in read_all_cursor(self.client, "/api/v2/pipelines", self.page_size):
                lookups.add_pipeline(record)
            for record in read_all_cursor(self.client, "/api/v2/stages", self.page_size):
                lookups.add_stage(record)
            self._lookups = lookups
        return self._lookups

    def batches(self, stored: dict[str, str]) -> Iterator[Batch]:
        cursor = Cursor.parse(stored, self.now().replace(tzinfo=None))
        readers: dict[str, Callable[[Cursor], Phase]] = {
            "users": self._users, "accounts": self._accounts, "deals": self._deals,
            "activities": self._activities, "notes": self._notes, "recents": self._recents,
            "archived_deals": self._archived_deals,
        }
        for name in NEWEST_FIRST:
            readers[name] = self._newest_first
        phases = cursor.phases()
        for phase in phases[phases.index(cursor.phase):]:
            if cursor.phase != phase:
                cursor = replace(cursor, phase=phase, start=0)
            cursor = yield from readers[phase](cursor)

    # -- plain lists (a first sync, and users every time) --------------------------

    def _pages(self, cursor: Cursor, endpoint: str, what: str,
               add: Callable[[Record, Rows], None],
               **params: str | int) -> Phase:
        """Every page from ``cursor.start`` as one batch; returns the next phase's cursor."""
        while True:
            page = read_page(self.client, endpoint, cursor.start, self.page_size, **params)
            rows = Rows()
            for record in page.records:
                add(record, rows)
            following = (cursor.next_phase() if page.next_start is None
                         else replace(cursor, start=page.next_start))
            yield rows.batch(following.to_dict(), self._label(what, cursor.start, page))
            if page.next_start is None:
                return following
            cursor = following

    @staticmethod
    def _label(what: str, start: int, page: Page) -> str:
        return _("{what} {first}-{last}", what=what, first=start + 1,
                 last=start + len(page.records))

    def _users(self, cursor: Cursor) -> Phase:
        return (yield from self._pages(cursor, "/v1/users", "users", add_user))

    def _accounts(self, cursor: Cursor) -> Phase:
        return (yield from self._cursor_pages(cursor, "/api/v2/organizations", "accounts",
                                              add_organization))

    def _cursor_pages(self, cursor: Cursor, endpoint: str, what: str,
                      add: Callable[[Record, Rows], None], since_field: str = "",
                      **params: str | int) -> Phase:
        """Every page of an API v2 list from ``cursor.page`` as one batch.

        With ``since_field``, an incremental sync asks only for what changed since
        that stamp (``updated_since``) and moves it to the newest change seen,
        minus the overlap.
        """
        stored: str = getattr(cursor, since_field) if since_field else ""
        incremental = bool(since_field) and cursor.mode == "incremental"
        if incremental and stored:
            params["updated_since"] = _parse(stored).strftime("%Y-%m-%dT%H:%M:%SZ")
        while True:
            page = read_cursor_page(self.client, endpoint, cursor.page, self.page_size,
                                    **params)
            rows = Rows()
            seen = cursor.seen
            for record in page.records:
                add(record, rows)
                updated = record.time("update_time")
                if updated is not None:
                    seen = _later(seen, _stamp(updated))
            last = cursor.start + len(page.records)
            if page.next_cursor is None:
                following = cursor
                if incremental and seen:
                    changes: dict[str, Any] = {
                        since_field: _later(stored, _stamp(_parse(seen) - OVERLAP))}
                    following = replace(cursor, **changes)
                following = following.next_phase()
            else:
                following = replace(cursor, page=page.next_cursor, start=last, seen=seen)
            yield rows.batch(following.to_dict(), _("{what} {first}-{last}", what=what,
                                                    first=cursor.start + 1, last=last))
            if page.next_cursor is None:
                return following
            cursor = following

    def _deals(self, cursor: Cursor) -> Phase:
        def add(record: Record, rows: Rows) -> None:
            self._add_deal(record, rows, floor=None)

        # API v2: every deal not deleted and not archived.
        return (yield from self._cursor_pages(cursor, "/api/v2/deals", "deals", add))

    def _archived_deals(self, cursor: Cursor) -> Phase:
        """``/api/v2/deals/archived``: all of them, then only those changed since."""
        floor = (_parse(cursor.archived_deals_since)
                 if cursor.mode == "incremental" and cursor.archived_deals_since else None)

        def add(record: Record, rows: Rows) -> None:
            self._add_deal(record, rows, floor=floor)

        return (yield from self._cursor_pages(cursor, "/api/v2/deals/archived",
                                              "archived deals", add,
                                              since_field="archived_deals_since"))

    def _activities(self, cursor: Cursor) -> Phase:
        # API v2 lists every user's activities the token may see (no owner_id: all).
        return (yield from self._cursor_pages(cursor, "/api/v2/activities", "activities",
                                              add_activity, done="true"))

    def _notes(self, cursor: Cursor) -> Phase:
        return (yield from self._pages(cursor, "/v1/notes", "notes", add_note))

    # -- deals and their stage history ---------------------------------------------

    def _add_deal(self, record: Record, rows: Rows, floor: dt.datetime | None) -> None:
        """The deal, and its stage history when it may have changed since ``floor``.

        A deal never moved (no ``stage_change_time``) entered its stage when it was
        created: only moved deals cost a request for their flow, and in an
        incremental sync only those moved since the last one.
        """
        add_deal(record, rows, self.lookups)
        if deal_is_deleted(record):
            return
        moved = record.time("stage_change_time")
        if moved is None:
            add_stage_history(record, [], rows, self.lookups)
        elif floor is None or moved >= floor:
            flow = read_all(self.client, f"/v1/deals/{record.id()}/flow", self.page_size)
            add_stage_history(record, stage_moves(flow), rows, self.lookups)

    # -- leads and archived leads: newest first, down to the last sync ------------

    def _newest_first(self, cursor: Cursor) -> Phase:
        """A list sorted by change time, newest first.

        A full sync reads it all; an incremental one stops at the first item older
        than the phase's ``*_since`` stamp (the last sync's newest change, minus
        the overlap).
        """
        endpoint, what, since_field = NEWEST_FIRST[cursor.phase]
        incremental = cursor.mode == "incremental"
        stored_since: str = getattr(cursor, since_field)
        since = _parse(stored_since) if incremental and stored_since else None
        while True:
            page = read_page(self.client, endpoint, cursor.start, self.page_size,
                             sort="update_time DESC")
            rows = Rows()
            reached_old = False
            seen = cursor.seen
            for record in page.records:
                updated = record.time("update_time") or record.time("add_time")
                if updated is None:
                    raise record.fail("update_time", _("is missing"))
                if since is not None and updated < since:
                    reached_old = True  # sorted newest first: the rest is older still
                    break
                seen = _later(seen, _stamp(updated))
                add_lead(record, rows)
            if page.next_start is None or reached_old:
                new_since = stored_since
                if incremental and seen:
                    new_since = _later(new_since, _stamp(_parse(seen) - OVERLAP))
                changes: dict[str, Any] = {since_field: new_since}
                following = replace(cursor, **changes).next_phase()
            else:
                following = replace(cursor, start=page.next_start, seen=seen)
            yield rows.batch(following.to_dict(), self._label(what, cursor.start, page))
            if following.phase != cursor.phase:
                return following
            cursor = following

    # -- recents: everything else that changed -------------------------------------

    def _recents(self, cursor: Cursor) -> Phase:
        """Pages of ``/v1/recents``, oldest change first.

        The window moves to the last change time of each page (minus a second, so
        changes in the same second are read again rather than skipped); an offset
        is used only when a whole page shares one second.
        """
        endpoint = "/v1/recents"
        floor = _parse(cursor.floor or cursor.since)
        while True:
            page = read_page(self.client, endpoint, cursor.start, self.page_size,
                             since_timestamp=cursor.since, items=RECENT_ITEMS)
            rows = Rows()
            seen = cursor.seen
            for entry in page.records:
                changed = self._add_recent(entry, rows, floor)
                if changed is not None:
                    seen = _later(seen, _stamp(changed))
            last = Record(page.additional, endpoint, "additional_data").time(
                "last_timestamp_on_page")
            if last is not None:
                seen = _later(seen, _stamp(last))
            if page.next_start is not None:
                window = _stamp(_parse(seen) - dt.timedelta(seconds=1)) if seen else ""
                following = (replace(cursor, since=window, start=0, seen=seen)
                             if window > cursor.since
                             else replace(cursor, start=page.next_start, seen=seen))
            else:
                since = cursor.floor or cursor.since
                if seen:
                    since = _later(since, _stamp(_parse(seen) - OVERLAP))
                following = replace(cursor, since=since).next_phase()
            yield rows.batch(following.to_dict(), _("changes {first}-{last}",
                                                    first=cursor.start + 1,
                                                    last=cursor.start + len(page.records)))
            if page.next_start is None:
                return following
            cursor = following

    def _add_recent(self, entry: Record, rows: Rows, floor: dt.datetime) -> dt.datetime | None:
        """One changed item; returns its change time."""
        item = entry.required_text("item")
        data = entry.data.get("data")
        if item not in ("deal", "activity", "organization", "note"):
            return None  # other item types are not part of the canonical data
        if data is None:
            # Gone without a trace: the item was deleted.
            entity, prefix = {"deal": ("deals", ""), "activity": ("activities", ""),
                              "organization": ("accounts", ""),
                              "note": ("activities", NOTE_PREFIX)}[item]
            rows.delete(entity, prefix + entry.id())
            if item == "deal":
                rows.delete("stage_changes", entry.id())
            return None
        record = entry.child("data")  # an object, or a named error
        if record is None:
            raise malformed(entry.endpoint, f"{entry.where}.data", _("is missing"))
        if item == "deal":
            self._add_deal(record, rows, floor)
        elif item == "activity":
            add_activity(record, rows)
        elif item == "organization":
            add_organization(record, rows)
        else:
            add_note(record, rows)
        return record.time("update_time")
