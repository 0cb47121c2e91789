"""A CRM's JSON, read field by field: what every connector's records share.

A record that is not what the API documents stops the batch with an error
naming the CRM, the endpoint and the field: a silently skipped or half-read
record would make a KPI quietly wrong, and nothing from a batch that failed is
stored, so the next sync retries it from the same cursor.

``Payload`` holds the checks; a CRM's subclass says how strict its API is
(``LENIENT``: Bitrix24 sends numbers as text and "" for "no value"; amoCRM sends
JSON types) and adds the getters only its API needs (unix times, "Y"/"N", ...).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Self

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.http import ConnectorError

_WHOLE = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def shown(value: object) -> str:
    """A value as an error message quotes it: short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def malformed(crm: str, product: str, endpoint: str, field: str,
              problem: str) -> ConnectorError:
    return ConnectorError(_(
        "{crm}: {endpoint} sent a malformed payload: {field} {problem}. Nothing from this "
        "batch was stored; run the sync again later, and if it keeps failing, check that "
        "record in {product}.", crm=crm, endpoint=endpoint, field=field, problem=problem,
        product=product))


class Payload:
    """One JSON object of an answer, with the path to it for error messages."""

    CRM: ClassVar[str]
    PRODUCT: ClassVar[str]  # the CRM's name as its users know it
    LENIENT: ClassVar[bool] = False  # numbers as text, "" for none

    def __init__(self, endpoint: str, where: str, data: object) -> None:
        if not isinstance(data, dict):
            raise self.malformed(endpoint, where, _("should be an object, got {value}",
                                                    value=shown(data)))
        self.endpoint = endpoint
        self.where = where
        self.data: dict[str, Any] = data

    @classmethod
    def malformed(cls, endpoint: str, field: str, problem: str) -> ConnectorError:
        return malformed(cls.CRM, cls.PRODUCT, endpoint, field, problem)

    def _field(self, name: str) -> str:
        return f"{self.where}.{name}"

    def missing(self, name: str) -> ConnectorError:
        return self.malformed(self.endpoint, self._field(name), _("is missing"))

    def wrong(self, name: str, message: str) -> ConnectorError:
        return self.malformed(self.endpoint, self._field(name), message)

    def blank(self, value: object) -> bool:
        return value is None or (self.LENIENT and isinstance(value, str)
                                 and not value.strip())

    def has(self, name: str) -> bool:
        return not self.blank(self.data.get(name))

    # -- numbers and ids ----------------------------------------------------------

    def whole_or_none(self, name: str) -> int | None:
        value = self.data.get(name)
        if self.blank(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.LENIENT and isinstance(value, str) and _WHOLE.match(value.strip()):
            return int(value)
        raise self.wrong(name, _("should be a whole number, got {value}", value=shown(value)))

    def whole(self, name: str) -> int:
        """A whole number that must be there."""
        value = self.whole_or_none(name)
        if value is None:
            raise self.missing(name)
        return value

    def id_or_none(self, name: str) -> str | None:
        """An optional reference as canonical text; a lenient API's 0 means none."""
        value = self.data.get(name)
        if self.blank(value):
            return None
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif self.LENIENT and isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if number is None or (number <= 0 and not self.LENIENT):
            raise self.wrong(name, _("should be a positive id, got {value}",
                                     value=shown(value)))
        return str(number) if number > 0 else None

    def id(self, name: str = "id") -> str:
        """A required id (a positive whole number)."""
        value = self.id_or_none(name)
        if value is None:
            raise self.missing(name)
        return value

    def number(self, name: str) -> float | None:
        value = self.data.get(name)
        if self.blank(value):
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if self.LENIENT and isinstance(value, str) and _NUMBER.match(value.strip()):
            return float(value)
        raise self.wrong(name, _("should be a number, got {value}", value=shown(value)))

    # -- text, flags, nesting ---------------------------------------------------------

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if self.blank(value):
            return None
        if isinstance(value, str):
            return value.strip() if self.LENIENT else value
        if self.LENIENT and isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # codes such as CATEGORY_ID come either way
        raise self.wrong(name, _("should be text, got {value}", value=shown(value)))

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise self.missing(name)
        return value

    def child(self, name: str) -> Self | None:
        value = self.data.get(name)
        return None if value is None else type(self)(self.endpoint, self._field(name), value)

    def children(self, name: str) -> list[Self]:
        """A list of objects; missing or null counts as empty."""
        value = self.data.get(name)
        if self.blank(value):
            return []
        if not isinstance(value, list):
            raise self.wrong(name, _("should be a list, got {value}", value=shown(value)))
        return [type(self)(self.endpoint, f"{self._field(name)}[{i}]", item)
                for i, item in enumerate(value)]
