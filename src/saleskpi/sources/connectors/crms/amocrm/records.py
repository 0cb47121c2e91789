"""amoCRM API records, read field by field: a record that is not what the API documents
stops the batch with an error that names the endpoint and the field.

A silently skipped or half-read record would make a KPI quietly wrong; an error
stops the sync before anything from that page is stored, and the next sync
retries it from the same cursor.
"""

from __future__ import annotations

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.http import ConnectorError
from saleskpi.sources.connectors.payload import Payload, shown

CRM = "amocrm"


def malformed(endpoint: str, field: str, problem: str) -> ConnectorError:
    return Record.malformed(endpoint, field, problem)


class Record(Payload):
    """One JSON object from an amoCRM answer: JSON types as documented, times in unix s."""

    CRM = CRM
    PRODUCT = "amoCRM"

    def time(self, name: str) -> int:
        """A unix timestamp in seconds that must be there."""
        value = self.whole(name)
        if value <= 0:
            raise self.missing(name)
        return value

    def time_or_none(self, name: str) -> int | None:
        value = self.whole_or_none(name)
        return value if value is not None and value > 0 else None

    def flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.wrong(name, _("should be true or false, got {value}",
                                     value=shown(value)))
        return value

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
