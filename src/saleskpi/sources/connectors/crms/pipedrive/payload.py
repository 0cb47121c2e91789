"""Reading Pipedrive's JSON: every field checked, every problem named.

A response that does not have the documented shape is not guessed at: the
batch it belongs to is refused with a message naming the endpoint and the
field, so nothing half-read reaches the store.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.http import ApiClient, ConnectorError

CRM = "pipedrive"
_DURATION = re.compile(r"^(\d{1,3}):([0-5]\d)(?::([0-5]\d))?$")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def malformed(endpoint: str, field: str, problem: str) -> ConnectorError:
    return ConnectorError(_(
        "{crm}: {endpoint} sent a malformed record: {field} {problem}. Nothing from this "
        "batch was stored; run the sync again, and if it keeps failing, report this message.",
        crm=CRM, endpoint=endpoint, field=field, problem=problem))


@dataclass(frozen=True)
class Record:
    """One JSON object of a response, and where it came from (for error messages)."""

    data: dict[str, Any]
    endpoint: str
    where: str  # e.g. "data[2]"

    def fail(self, field: str, problem: str) -> ConnectorError:
        return malformed(self.endpoint, f"{self.where}.{field}", problem)

    def has(self, field: str) -> bool:
        return self.data.get(field) is not None

    def child(self, field: str) -> Record | None:
        value = self.data.get(field)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(field, _("should be an object, got {value}", value=_shown(value)))
        return Record(value, self.endpoint, f"{self.where}.{field}")

    def id(self, field: str = "id") -> str:
        """A required identifier: a positive number, or a non-empty string (lead UUIDs)."""
        value = self.data.get(field)
        if value is None:
            raise self.fail(field, _("is missing"))
        if isinstance(value, bool) or not isinstance(value, int | str) or value in ("", 0):
            raise self.fail(field, _("should be an identifier, got {value}",
                                     value=_shown(value)))
        return str(value)

    def ref(self, field: str) -> str | None:
        """A reference: a number, or an object with ``value``/``id`` (v1 lists embed users)."""
        value = self.data.get(field)
        if isinstance(value, dict):
            value = value.get("value", value.get("id"))
        if value is None or value == "" or value == 0:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.fail(field, _("should be an identifier, got {value}",
                                     value=_shown(value)))
        return str(value)

    def text(self, field: str) -> str | None:
        value = self.data.get(field)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(field, _("should be text, got {value}", value=_shown(value)))
        return str(value)

    def required_text(self, field: str) -> str:
        value = self.text(field)
        if value is None:
            raise self.fail(field, _("is missing"))
        return value

    def number(self, field: str) -> float | None:
        value = self.data.get(field)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise self.fail(field, _("should be a number, got {value}", value=_shown(value)))
        try:
            return float(value)
        except (TypeError, ValueError):
            raise self.fail(field, _("should be a number, got {value}",
                                     value=_shown(value))) from None

    def flag(self, field: str) -> bool | None:
        value = self.data.get(field)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if value in (0, 1, "0", "1"):
            return bool(int(value))
        raise self.fail(field, _("should be true or false, got {value}", value=_shown(value)))

    def time(self, field: str) -> dt.datetime | None:
        """A timestamp as naive UTC: v1 sends "2024-01-10 09:00:00" (UTC), leads ISO 8601."""
        value = self.data.get(field)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(field, _("should be a date and time, got {value}",
                                     value=_shown(value)))
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise self.fail(field, _("should be a date and time, got {value}",
                                     value=_shown(value))) from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed

    def date(self, field: str) -> dt.date | None:
        value = self.data.get(field)
        if value is None or value == "":
            return None
        try:
            if not isinstance(value, str):
                raise ValueError
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise self.fail(field, _("should be a date, got {value}",
                                     value=_shown(value))) from None

    def clock(self, field: str) -> dt.time | None:
        """A time of day, "09:30" (Pipedrive's due_time, in UTC)."""
        value = self.data.get(field)
        if value is None or value == "":
            return None
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None or int(match.group(1)) > 23:
            raise self.fail(field, _("should be a time of day HH:MM, got {value}",
                                     value=_shown(value)))
        return dt.time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))

    def duration_s(self, field: str) -> int | None:
        """A duration "HH:MM" (or "HH:MM:SS") in seconds."""
        value = self.data.get(field)
        if value is None or value == "":
            return None
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise self.fail(field, _("should be a duration HH:MM, got {value}",
                                     value=_shown(value)))
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint."""

    records: list[Record]
    next_start: int | None  # None: the last page
    additional: dict[str, Any]


def read_page(client: ApiClient, endpoint: str, start: int, limit: int,
              **params: Any) -> Page:
    """GET one page; check the envelope ``{success, data: [...], additional_data}``."""
    body = client.get(endpoint, start=start, limit=limit, **params)
    records, additional = _envelope(endpoint, body)
    return Page(records, _next_start(endpoint, additional, start, len(records)), additional)


@dataclass(frozen=True)
class CursorPage:
    """One page of an API v2 list (cursor pagination)."""

    records: list[Record]
    next_cursor: str | None  # None: the last page
    additional: dict[str, Any]


def read_cursor_page(client: ApiClient, endpoint: str, cursor: str, limit: int,
                     **params: Any) -> CursorPage:
    """GET one page of a v2 list; ``additional_data.next_cursor`` names the next one."""
    if cursor:
        params["cursor"] = cursor
    body = client.get(endpoint, limit=limit, **params)
    records, additional = _envelope(endpoint, body)
    following = additional.get("next_cursor")
    if following is not None and (not isinstance(following, str) or not following
                                  or following == cursor):
        # A next page that does not move forward would loop for ever.
        raise malformed(endpoint, "additional_data.next_cursor",
                        _("should be a new cursor, got {value}", value=_shown(following)))
    return CursorPage(records, following, additional)


def read_all_cursor(client: ApiClient, endpoint: str, limit: int,
                    **params: Any) -> Iterator[Record]:
    """Every record of a (small) v2 list, all pages."""
    cursor: str | None = ""
    while cursor is not None:
        page = read_cursor_page(client, endpoint, cursor, limit, **params)
        yield from page.records
        cursor = page.next_cursor


def _envelope(endpoint: str, body: Any) -> tuple[list[Record], dict[str, Any]]:
    if not isinstance(body, dict):
        raise malformed(endpoint, "body", _("should be an object, got {value}",
                                            value=_shown(body)))
    if body.get("success") is False:
        raise ConnectorError(_("{crm}: {endpoint} refused the request: {error}", crm=CRM,
                               endpoint=endpoint, error=_shown(body.get("error"))))
    data = body.get("data")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise malformed(endpoint, "data", _("should be a list, got {value}",
                                            value=_shown(data)))
    records = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise malformed(endpoint, f"data[{index}]",
                            _("should be an object, got {value}", value=_shown(item)))
        records.append(Record(item, endpoint, f"data[{index}]"))
    additional = body.get("additional_data") or {}
    if not isinstance(additional, dict):
        raise malformed(endpoint, "additional_data", _("should be an object, got {value}",
                                                       value=_shown(additional)))
    return records, additional


def _next_start(endpoint: str, additional: dict[str, Any], start: int,
                count: int) -> int | None:
    pagination = additional.get("pagination")
    if pagination is None:
        return None  # an unpaginated list: everything came at once
    if not isinstance(pagination, dict):
        raise malformed(endpoint, "additional_data.pagination",
                        _("should be an object, got {value}", value=_shown(pagination)))
    more = pagination.get("more_items_in_collection")
    if not more:
        return None
    following = pagination.get("next_start", start + count)
    if isinstance(following, bool) or not isinstance(following, int) or following <= start:
        # A next page that does not move forward would loop for ever.
        raise malformed(endpoint, "additional_data.pagination.next_start",
                        _("should be a number after {start}, got {value}", start=start,
                          value=_shown(following)))
    return following


def read_all(client: ApiClient, endpoint: str, limit: int, **params: Any) -> Iterator[Record]:
    """Every record of a (small) list, all pages."""
    start: int | None = 0
    while start is not None:
        page = read_page(client, endpoint, start, limit, **params)
        yield from page.records
        start = page.next_start
