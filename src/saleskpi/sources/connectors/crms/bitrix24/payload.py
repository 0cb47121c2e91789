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
import re
from dataclasses import dataclass
from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.http import ConnectorError

CRM = "bitrix24"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def malformed(endpoint: str, field: str, problem: str) -> ConnectorError:
    return ConnectorError(_(
        "{crm}: {endpoint} sent a malformed payload: {field} {problem}. Nothing from this "
        "batch was stored; run the sync again later, and if it keeps failing, check that "
        "record in Bitrix24.", crm=CRM, endpoint=endpoint, field=field, problem=problem))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _id(item: Item, name: str, value: object) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        raise malformed(item.endpoint, f"{item.where}.{name}", _(
            "should be a positive id, got {value}", value=_shown(value)))
    return str(number) if number > 0 else None


def parse_time(value: str) -> dt.datetime | None:
    """ISO 8601 as naive UTC (no offset: already UTC); None if it is not a time."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


class Item:
    """One JSON object of an answer, with the path to it for error messages."""

    def __init__(self, endpoint: str, where: str, data: object) -> None:
        if not isinstance(data, dict):
            raise malformed(endpoint, where, _("should be an object, got {value}",
                                               value=_shown(data)))
        self.endpoint = endpoint
        self.where = where
        self.data: dict[str, Any] = data

    def _field(self, name: str) -> str:
        return f"{self.where}.{name}"

    def missing(self, name: str) -> ConnectorError:
        return malformed(self.endpoint, self._field(name), _("is missing"))

    def _wrong(self, name: str, message: str) -> ConnectorError:
        return malformed(self.endpoint, self._field(name), message)

    def id(self, name: str = "ID") -> str:
        """A Bitrix24 id (a positive whole number, often sent as text) as canonical text."""
        value = self.id_or_none(name)
        if value is None:
            raise self.missing(name)
        return value

    def id_or_none(self, name: str) -> str | None:
        """An optional reference: Bitrix24 sends "0", "" or null for none."""
        return _id(self, name, self.data.get(name))

    def whole_or_none(self, name: str) -> int | None:
        value = self.data.get(name)
        if _blank(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise self._wrong(name, _("should be a whole number, got {value}",
                                  value=_shown(value)))

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if _blank(value):
            return None
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # codes such as CATEGORY_ID come either way
        raise self._wrong(name, _("should be text, got {value}", value=_shown(value)))

    def time(self, name: str) -> dt.datetime:
        value = self.time_or_none(name)
        if value is None:
            raise self.missing(name)
        return value

    def time_or_none(self, name: str) -> dt.datetime | None:
        value = self.data.get(name)
        if _blank(value):
            return None
        parsed = parse_time(value) if isinstance(value, str) else None
        if parsed is None:
            raise self._wrong(name, _("should be an ISO 8601 date and time, got {value}",
                                      value=_shown(value)))
        return parsed

    def money(self, name: str) -> float | None:
        value = self.data.get(name)
        if _blank(value):
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            return float(value)
        raise self._wrong(name, _("should be a number, got {value}", value=_shown(value)))

    def flag(self, name: str) -> bool | None:
        """Bitrix24's "Y"/"N" (or true/false in newer methods)."""
        value = self.data.get(name)
        if _blank(value):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("Y", "N"):
            return value == "Y"
        raise self._wrong(name, _("should be Y or N, got {value}", value=_shown(value)))

    def ids(self, name: str) -> list[str]:
        """A list of ids (UF_DEPARTMENT); missing or null counts as empty."""
        value = self.data.get(name)
        if _blank(value):
            return []
        if not isinstance(value, list):
            raise self._wrong(name, _("should be a list, got {value}", value=_shown(value)))
        found = (_id(self, f"{name}[{i}]", v) for i, v in enumerate(value))
        return [i for i in found if i is not None]

    def child(self, name: str) -> Item | None:
        value = self.data.get(name)
        return None if value is None else Item(self.endpoint, self._field(name), value)


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
                                           value=_shown(result)))
    items = [Item(endpoint, f"{where}[{i}]", item) for i, item in enumerate(result)]
    following = answer.whole_or_none("next")
    return Page(items, following if following and following > 0 else None,
                server_time(answer), answer.whole_or_none("total"))


def server_time(answer: Item) -> dt.datetime | None:
    """When the portal started to answer (``time.date_start``), as naive UTC."""
    timing = answer.data.get("time")
    start = timing.get("date_start") if isinstance(timing, dict) else None
    return parse_time(start) if isinstance(start, str) else None
