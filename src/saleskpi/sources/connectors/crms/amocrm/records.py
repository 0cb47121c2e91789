"""amoCRM API records, read field by field: a record that is not what the API documents
stops the batch with an error that names the endpoint and the field.

A silently skipped or half-read record would make a KPI quietly wrong; an error
stops the sync before anything from that page is stored, and the next sync
retries it from the same cursor.
"""

from __future__ import annotations

from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.http import ConnectorError

CRM = "amocrm"


def malformed(endpoint: str, field: str, problem: str) -> ConnectorError:
    return ConnectorError(_(
        "{crm}: {endpoint} sent a malformed payload: {field} {problem}. Nothing from this "
        "batch was stored; run the sync again later, and if it keeps failing, check that "
        "record in amoCRM.", crm=CRM, endpoint=endpoint, field=field, problem=problem))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Record:
    """One JSON object from an API answer, with the path to it for error messages."""

    def __init__(self, endpoint: str, where: str, data: object) -> None:
        if not isinstance(data, dict):
            raise malformed(endpoint, where, _("should be an object, got {value}",
                                               value=_shown(data)))
        self.endpoint = endpoint
        self.where = where
        self.data: dict[str, Any] = data

    def _field(self, name: str) -> str:
        return f"{self.where}.{name}"

    def _missing(self, name: str) -> ConnectorError:
        return malformed(self.endpoint, self._field(name), _("is missing"))

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def whole(self, name: str) -> int:
        """A whole number that must be there (ids, unix times)."""
        value = self.whole_or_none(name)
        if value is None:
            raise self._missing(name)
        return value

    def whole_or_none(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise malformed(self.endpoint, self._field(name), _(
                "should be a whole number, got {value}", value=_shown(value)))
        return value

    def id(self, name: str = "id") -> str:
        """An amoCRM id (a positive whole number) as the canonical text id."""
        value = self.whole(name)
        if value <= 0:
            raise malformed(self.endpoint, self._field(name), _(
                "should be a positive id, got {value}", value=_shown(value)))
        return str(value)

    def time(self, name: str) -> int:
        """A unix timestamp in seconds that must be there."""
        value = self.whole(name)
        if value <= 0:
            raise self._missing(name)
        return value

    def time_or_none(self, name: str) -> int | None:
        value = self.whole_or_none(name)
        return value if value is not None and value > 0 else None

    def number(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise malformed(self.endpoint, self._field(name), _(
                "should be a number, got {value}", value=_shown(value)))
        return float(value)

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise malformed(self.endpoint, self._field(name), _(
                "should be text, got {value}", value=_shown(value)))
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise self._missing(name)
        return value

    def flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise malformed(self.endpoint, self._field(name), _(
                "should be true or false, got {value}", value=_shown(value)))
        return value

    def child(self, name: str) -> Record | None:
        value = self.data.get(name)
        return None if value is None else Record(self.endpoint, self._field(name), value)

    def children(self, name: str) -> list[Record]:
        """A list of objects; missing or null counts as empty."""
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise malformed(self.endpoint, self._field(name), _(
                "should be a list, got {value}", value=_shown(value)))
        return [Record(self.endpoint, f"{self._field(name)}[{i}]", item)
                for i, item in enumerate(value)]

    def embedded(self, name: str) -> list[Record]:
        """``_embedded.<name>``: the HAL list amoCRM puts linked objects in."""
        embedded = self.child("_embedded")
        return embedded.children(name) if embedded is not None else []


def page_items(endpoint: str, body: object, key: str) -> tuple[list[Record], bool]:
    """The records of one list page and whether ``_links.next`` says there is another.

    amoCRM answers 204 with no body for an empty page (``body`` is None then).
    """
    if body is None:
        return [], False
    page = Record(endpoint, "<response>", body)
    embedded = page.child("_embedded")
    if embedded is None:
        raise malformed(endpoint, "_embedded", _("is missing"))
    items = embedded.children(key)
    links = page.child("_links")
    has_next = links is not None and links.has("next")
    return items, has_next
