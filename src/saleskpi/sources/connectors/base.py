"""What every CRM connector provides, and what a sync does with it.

A connector turns one CRM's API into batches of canonical rows (the same
entities a file import has), plus the ids the CRM deleted, plus a cursor: the
state to resume from once the batch is stored. The sync stores each batch in
one transaction and only then saves its cursor, so a sync killed midway
resumes from the last stored batch and re-reading a batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from saleskpi.domain.errors import Unauthenticated
from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.http import ApiClient


@dataclass
class Batch:
    """Rows to upsert, ids to delete, and where to resume after this batch."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    cursor: dict[str, str] = field(default_factory=dict)
    label: str = ""  # for progress: "deals, page 3"

    def rows(self) -> int:
        return sum(len(f) for f in self.frames.values())


@dataclass(frozen=True)
class Field:
    """A credential or setting the user gives to ``saleskpi connect``."""

    name: str
    help: str
    secret: bool = False
    # Optional fields (webhook secrets, a default API address) are not asked for;
    # ``default`` is stored when the user gives nothing.
    required: bool = True
    default: str = ""


class Connector(Protocol):
    """One CRM. ``batches`` yields in dependency order: users before deals before activities."""

    name: str
    fields: tuple[Field, ...]

    def check(self) -> str:
        """Call the API once; a description of the account, or raise ConnectorError."""

    def batches(self, cursor: dict[str, str]) -> Iterator[Batch]:
        """Everything changed since ``cursor`` (empty: a full load)."""

    def verify_webhook(self, request: WebhookRequest) -> str:
        """Check the CRM's signature or shared secret; return an id unique to this delivery.

        Raise WebhookRejected for anything unsigned, forged or too old.
        """


class WebhookRejected(Unauthenticated):
    """Unsigned, forged, replayed or malformed: nothing is stored."""
    default_code = "not_verified"


@dataclass(frozen=True)
class ClientOptions:
    """How hard to push an API; tests shrink the waits."""

    rate_limit: float = 5.0  # requests per second
    retries: int = 5
    backoff: float = 0.5  # seconds before the first retry, doubled each time

    def client(self, crm: str, base_url: str, **kwargs: object) -> ApiClient:
        return ApiClient(crm, base_url, rate_limit=self.rate_limit, retries=self.retries,
                         backoff=self.backoff, **kwargs)  # type: ignore[arg-type]


ConnectorFactory = Callable[[dict[str, str], ClientOptions], Connector]
REGISTRY: dict[str, ConnectorFactory] = {}


def register(name: str) -> Callable[[ConnectorFactory], ConnectorFactory]:
    def add(factory: ConnectorFactory) -> ConnectorFactory:
        REGISTRY[name] = factory
        return factory
    return add
