"""Bitrix24 REST answers, read field by field.

Bitrix24 sends most numbers as text (``"ID": "12"``, ``"OPPORTUNITY": "120000.00"``),
dates as ISO 8601 with the portal's offset (``"2024-03-01T12:00:00+03:00"``) and an
empty string for "no value". A record that is not what the API documents stops
the batch with an error naming the method and the field: a silently skipped or
half-read record would make a KPI quietly wrong, and nothing from a batch that
failed is stored, so the next sync retries it from the same cursor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.http import ConnectorError
from saleskpi.sources.connectors.payload import Payload, shown

CRM = "bitrix24"


def malformed(endpoint: str, field: str, problem: str) -> ConnectorError:
    return Item.malformed(endpoint, field, problem)


def parse_time(value: str) -> dt.datetime | None:
    """ISO 8601 as naive UTC (no offset: already UTC); None if it is not a time."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


class Item(Payload):
    """One JSON object of a Bitrix24 answer: numbers as text, "" for none, "Y"/"N"."""

    CRM = CRM
    PRODUCT = "Bitrix24"
    LENIENT = True

    def id(self, name: str = "ID") -> str:
        """A Bitrix24 id (a positive whole number, often sent as text) as canonical text."""
        return super().id(name)

    def time(self, name: str) -> dt.datetime:
        value = self.time_or_none(name)
        if value is None:
            raise self.missing(name)
        return value

    def time_or_none(self, name: str) -> dt.datetime | None:
        value = self.data.get(name)
        if self.blank(value):
            return None
        parsed = parse_time(value) if isinstance(value, str) else None
        if parsed is None:
            raise self.wrong(name, _("should be an ISO 8601 date and time, got {value}",
                                     value=shown(value)))
        return parsed

    def money(self, name: str) -> float | None:
        return self.number(name)

    def flag(self, name: str) -> bool | None:
        """Bitrix24's "Y"/"N" (or true/false in newer methods)."""
        value = self.data.get(name)
        if self.blank(value):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("Y", "N"):
            return value == "Y"
        raise self.wrong(name, _("should be Y or N, got {value}", value=shown(value)))

    def ids(self, name: str) -> list[str]:
        """A list of ids (UF_DEPARTMENT); missing or null counts as empty."""
        value = self.data.get(name)
        if self.blank(value):
            return []
        if not isinstance(value, list):
            raise self.wrong(name, _("should be a list, got {value}", value=shown(value)))
        # Each element checked as a field of its own: errors name UF_DEPARTMENT[2].
        listed = Item(self.endpoint, self.where,
                      {f"{name}[{i}]": v for i, v in enumerate(value)})
        found = (listed.id_or_none(f"{name}[{i}]") for i in range(len(value)))
        return [i for i in found if i is not None]


@dataclass
class Page:
    """One answer of a list method: its records, and where the next page starts."""

    items: list[Item]
    next: int | None
    server_time: dt.datetime | None
    total: int | None = None  # how many match the filter (only when start >= 0)


def read_page(endpoint: str, body: object, key: str | None = None) -> Page:
    """``{"result": [...], "next": 50, "total": N, "time": {...}}``.

    Some methods wrap the list: ``{"result": {"items": [...]}}`` (``key``).
    """
    answer = Item(endpoint, "<response>", body)
    if "result" not in answer.data:
        raise malformed(endpoint, "result", _("is missing"))
    result: object = answer.data["result"]
    where = "result"
    if key is not None:
        wrapper = Item(endpoint, where, result)
        result, where = wrapper.data.get(key), f"result.{key}"
        if result is None:
            raise malformed(endpoint, where, _("is missing"))
    if not isinstance(result, list):
        raise malformed(endpoint, where, _("should be a list, got {value}",
                                           value=shown(result)))
    items = [Item(endpoint, f"{where}[{i}]", item) for i, item in enumerate(result)]
    following = answer.whole_or_none("next")
    return Page(items, following if following and following > 0 else None,
                server_time(answer), answer.whole_or_none("total"))


def server_time(answer: Item) -> dt.datetime | None:
    """When the portal started to answer (``time.date_start``), as naive UTC."""
    timing = answer.data.get("time")
    start = timing.get("date_start") if isinstance(timing, dict) else None
    return parse_time(start) if isinstance(start, str) else None
