"""The order of a sync and where it resumes: phases, pages and the cursor.

A first sync reads every list endpoint in dependency order (users before
everything that points to them); each page is one batch whose cursor points at
the next page. Later syncs read the same lists, but only what changed since the
last sync: API v2's ``updated_since`` for deals (deleted ones included, for 30
days), archived deals, organizations and activities, v1's ``updated_since`` for
notes (v2 has no notes), leads newest first down to the last sync (v1 leads
have no such filter), users whole (a short list). Last, ``/v1/recents`` says
which activities, organizations and notes were deleted: v2 lists do not show
deleted ones. Every time-based cursor keeps an overlap: re-reading a few
minutes twice is harmless, missing one is not.

Since 15 July 2025 ``/v1/deals`` and ``/v1/leads`` list no archived item; only
``/api/v2/deals/archived`` and ``/v1/leads/archived`` do, so both are read too.
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
OVERLAP = dt.timedelta(minutes=5)  # lists are eventually consistent; re-read a little
STAMP = "%Y-%m-%d %H:%M:%S"  # since_timestamp, in UTC
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"  # updated_since
FULL = ("users", "accounts", "leads", "archived_leads", "deals", "archived_deals",
        "activities", "notes")
# The same lists, each asked only for what changed, then the deletions v2 cannot show.
INCREMENTAL = (*FULL, "recents")
# Phases asked with ``updated_since``, and the cursor field holding it.
CHANGED_SINCE = {"accounts": "accounts_since", "deals": "deals_since",
                 "archived_deals": "archived_deals_since",
                 "activities": "activities_since", "notes": "notes_since"}
# Only the flow's stage changes: other entries (activities, e-mails) only add pages.
FLOW_ITEMS = "dealChange"
# Newest-first phases: (endpoint, label, the cursor field holding "read again from").
NEWEST_FIRST = {
    "leads": ("/v1/leads", "leads", "leads_since"),
    "archived_leads": ("/v1/leads/archived", "archived leads", "archived_leads_since"),
}
STAMPS = ("since", "floor", "seen", "leads_since", "archived_leads_since",
          *CHANGED_SINCE.values())
# Deleted deals are listed by v2 (``status=deleted``); these three are not.
RECENT_ITEMS = "activity,organization,note"


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
    # Lists asked with ``updated_since``: what changed at or after these is read again.
    accounts_since: str = ""
    deals_since: str = ""
    archived_deals_since: str = ""
    activities_since: str = ""
    notes_since: str = ""
    page: str = ""  # API v2 lists: the opaque cursor of the next page

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items() if v != ""}

    @classmethod
    def first(cls, now: dt.datetime) -> Cursor:
        since = (now - OVERLAP).strftime(STAMP)
        stamps: dict[str, Any] = {name: since for name in STAMPS
                                  if name not in ("floor", "seen")}
        return cls("full", FULL[0], **stamps)

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
        return replace(self, mode="incremental", phase=INCREMENTAL[0], start=0, floor="",
                       seen="", page="")


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
                 page_size: int = PAGE_SIZE,
                 known_moves: dict[str, dt.datetime] | None = None) -> None:
        self.client = client
        self.now = now
        self.page_size = page_size
        # Deal id -> when its stored stage history last changed stage (``sync`` gives it).
        self.known_moves = known_moves or {}
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
               add: Callable[[Record, Rows], None], since_field: str = "",
               **params: str | int) -> Phase:
        """Every page of a v1 list from ``cursor.start`` as one batch.

        With ``since_field``, an incremental sync asks only for what changed since
        that stamp (v1's ``updated_since``, where the list has it).
        """
        updated_since = self._updated_since(cursor, since_field)
        if updated_since:
            params["updated_since"] = updated_since
        while True:
            page = read_page(self.client, endpoint, cursor.start, self.page_size, **params)
            rows = Rows()
            seen = cursor.seen
            for record in page.records:
                add(record, rows)
                seen = _later(seen, _updated(record))
            if page.next_start is None:
                following = self._moved_on(cursor, since_field, seen)
            else:
                following = replace(cursor, start=page.next_start, seen=seen)
            yield rows.batch(following.to_dict(), self._label(what, cursor.start, page))
            if page.next_start is None:
                return following
            cursor = following

    @staticmethod
    def _updated_since(cursor: Cursor, since_field: str) -> str:
        """``updated_since`` for this phase: only in an incremental sync, RFC 3339."""
        stored: str = getattr(cursor, since_field) if since_field else ""
        if cursor.mode != "incremental" or not stored:
            return ""
        return _parse(stored).strftime(RFC3339)

    @staticmethod
    def _moved_on(cursor: Cursor, since_field: str, seen: str) -> Cursor:
        """The next phase's cursor; an incremental phase's stamp moves to the newest change
        it saw, minus the overlap (never back)."""
        following = cursor
        if since_field and cursor.mode == "incremental" and seen:
            stored: str = getattr(cursor, since_field)
            changes: dict[str, Any] = {
                since_field: _later(stored, _stamp(_parse(seen) - OVERLAP))}
            following = replace(cursor, **changes)
        return following.next_phase()

    @staticmethod
    def _label(what: str, start: int, page: Page) -> str:
        return _("{what} {first}-{last}", what=what, first=start + 1,
                 last=start + len(page.records))

    def _users(self, cursor: Cursor) -> Phase:
        return (yield from self._pages(cursor, "/v1/users", "users", add_user))

    def _accounts(self, cursor: Cursor) -> Phase:
        # API v2 lists no deleted organization: those come from recents.
        return (yield from self._cursor_pages(cursor, "/api/v2/organizations", "accounts",
                                              add_organization, since_field="accounts_since"))

    def _cursor_pages(self, cursor: Cursor, endpoint: str, what: str,
                      add: Callable[[Record, Rows], None], since_field: str = "",
                      **params: str | int) -> Phase:
        """Every page of an API v2 list from ``cursor.page`` as one batch.

        With ``since_field``, an incremental sync asks only for what changed since
        that stamp (``updated_since``) and moves it to the newest change seen,
        minus the overlap.
        """
        updated_since = self._updated_since(cursor, since_field)
        if updated_since:
            params["updated_since"] = updated_since
        while True:
            page = read_cursor_page(self.client, endpoint, cursor.page, self.page_size,
                                    **params)
            rows = Rows()
            seen = cursor.seen
            for record in page.records:
                add(record, rows)
                seen = _later(seen, _updated(record))
            last = cursor.start + len(page.records)
            if page.next_cursor is None:
                following = self._moved_on(cursor, since_field, seen)
            else:
                following = replace(cursor, page=page.next_cursor, start=last, seen=seen)
            yield rows.batch(following.to_dict(), _("{what} {first}-{last}", what=what,
                                                    first=cursor.start + 1, last=last))
            if page.next_cursor is None:
                return following
            cursor = following

    def _deals(self, cursor: Cursor) -> Phase:
        """``/api/v2/deals``: every deal not archived; then those changed since, deleted
        ones included (v2 lists a deal deleted in the last 30 days with ``status=deleted``)."""
        floor = self._floor(cursor, "deals_since")

        def add(record: Record, rows: Rows) -> None:
            self._add_deal(record, rows, floor=floor)

        params = {"status": "open,won,lost,deleted"} if floor is not None else {}
        return (yield from self._cursor_pages(cursor, "/api/v2/deals", "deals", add,
                                              since_field="deals_since", **params))

    def _archived_deals(self, cursor: Cursor) -> Phase:
        """``/api/v2/deals/archived``: all of them, then only those changed since."""
        floor = self._floor(cursor, "archived_deals_since")

        def add(record: Record, rows: Rows) -> None:
            self._add_deal(record, rows, floor=floor)

        return (yield from self._cursor_pages(cursor, "/api/v2/deals/archived",
                                              "archived deals", add,
                                              since_field="archived_deals_since"))

    @staticmethod
    def _floor(cursor: Cursor, since_field: str) -> dt.datetime | None:
        stored: str = getattr(cursor, since_field)
        return _parse(stored) if cursor.mode == "incremental" and stored else None

    def _activities(self, cursor: Cursor) -> Phase:
        # API v2 lists every user's activities the token may see (no owner_id: all).
        # A full sync needs the done ones; an incremental one every change, so that an
        # activity marked undone again is removed. Deleted ones: from recents.
        params = {} if cursor.mode == "incremental" else {"done": "true"}
        return (yield from self._cursor_pages(cursor, "/api/v2/activities", "activities",
                                              add_activity, since_field="activities_since",
                                              **params))

    def _notes(self, cursor: Cursor) -> Phase:
        # v1: Pipedrive has no v2 notes; v1 notes have ``updated_since`` (RFC 3339).
        return (yield from self._pages(cursor, "/v1/notes", "notes", add_note,
                                       since_field="notes_since"))

    # -- deals and their stage history ---------------------------------------------

    def _add_deal(self, record: Record, rows: Rows, floor: dt.datetime | None) -> None:
        """The deal, and its stage history when it may have changed since it was read.

        A deal's flow costs a request, so it is read only for a deal that moved
        (``stage_change_time`` is set: one never moved entered its stage when it was
        created), whose last move is since ``floor`` (an incremental sync), and
        whose stored history does not already end with that move (``known_moves``:
        a ``sync --full`` of a company synced before reads almost no flow).
        """
        add_deal(record, rows, self.lookups)
        if deal_is_deleted(record):
            return
        moved = record.time("stage_change_time")
        if moved is None:
            add_stage_history(record, [], rows, self.lookups)
        elif (floor is None or moved >= floor) and self.known_moves.get(record.id()) != moved:
            flow = read_all(self.client, f"/v1/deals/{record.id()}/flow", self.page_size,
                            items=FLOW_ITEMS)
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

    # -- recents: the deletions v2 lists do not show --------------------------------

    def _recents(self, cursor: Cursor) -> Phase:
        """Pages of ``/v1/recents`` for activities, organizations and notes, oldest first.

        Only deletions are taken from it: the v2 lists (and v1 notes) read every
        other change already. The window moves to the last change time of each page
        (minus a second, so changes in the same second are read again rather than
        skipped); an offset is used only when a whole page shares one second.
        """
        endpoint = "/v1/recents"
        while True:
            page = read_page(self.client, endpoint, cursor.start, self.page_size,
                             since_timestamp=cursor.since, items=RECENT_ITEMS)
            rows = Rows()
            seen = cursor.seen
            for entry in page.records:
                seen = _later(seen, self._add_deletion(entry, rows))
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
            yield rows.batch(following.to_dict(), _("deletions {first}-{last}",
                                                    first=cursor.start + 1,
                                                    last=cursor.start + len(page.records)))
            if page.next_start is None:
                return following
            cursor = following

    @staticmethod
    def _add_deletion(entry: Record, rows: Rows) -> str:
        """Delete the item if recents says it is gone; its change time (or "")."""
        item = entry.required_text("item")
        if item not in ("activity", "organization", "note"):
            return ""  # other item types are not part of the canonical data
        entity, prefix = {"activity": ("activities", ""), "organization": ("accounts", ""),
                          "note": ("activities", NOTE_PREFIX)}[item]
        if entry.data.get("data") is None:
            rows.delete(entity, prefix + entry.id())  # gone without a trace: deleted
            return ""
        record = entry.child("data")
        if record is None:
            raise malformed(entry.endpoint, f"{entry.where}.data", _("is missing"))
        if record.flag("active_flag") is False or record.flag("is_deleted") is True:
            rows.delete(entity, prefix + record.id())
        return _updated(record)


def _updated(record: Record) -> str:
    """A record's ``update_time`` as a stamp ("" if it has none)."""
    updated = record.time("update_time")
    return "" if updated is None else _stamp(updated)
