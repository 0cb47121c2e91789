"""HubSpot's CRM v3 API as pages of checked records.

Every response is checked before anything is mapped: a missing id, a value of
the wrong type or a body that is not the documented shape raises a
``ConnectorError`` that names the endpoint and the field, so nothing from that
page reaches the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.sources.connectors.base import ClientOptions
from saleskpi.sources.connectors.http import ApiClient, AuthError, ConnectorError
from saleskpi.sources.connectors.pacing import LeakyBucket

CRM = "hubspot"
LIST_LIMIT = 100  # the most a list page returns
HISTORY_LIMIT = 50  # ... when property history is asked for
SEARCH_LIMIT = 100  # the most a search page returns
BATCH_READ_LIMIT = 50  # inputs per batch read with property history
ASSOCIATION_INPUTS = 1000  # inputs per v4 associations batch read (since 2025)
# Scopes the private app needs; named in the message when HubSpot refuses the token.
SCOPES = ("crm.objects.owners.read", "crm.objects.deals.read", "crm.objects.contacts.read",
          "crm.objects.companies.read", "crm.schemas.deals.read")


def malformed(endpoint: str, field: str, problem: str) -> ConnectorError:
    return ConnectorError(_(
        "HubSpot: {endpoint} sent a malformed payload: {field} {problem}. Nothing from this "
        "batch was stored; run the sync again, and if it persists, check the record in "
        "HubSpot.", endpoint=endpoint, field=field, problem=problem))


def expected(kind: str, value: object) -> str:
    text = repr(value)
    return _("should be {kind}, got {value}", kind=kind,
             value=text if len(text) <= 60 else text[:57] + "...")


@dataclass
class Record:
    """One CRM object as HubSpot returns it, checked."""

    id: str
    properties: dict[str, str | None]
    # property -> [(value, timestamp)], newest first as HubSpot sends it
    history: dict[str, list[tuple[str | None, str]]] = field(default_factory=dict)
    # object type ("companies") -> ids, the primary one first
    associations: dict[str, list[str]] = field(default_factory=dict)
    archived_at: str | None = None


@dataclass
class Page:
    records: list[Record]
    after: str | None  # paging.next.after: None on the last page
    endpoint: str


def _dict(value: object, endpoint: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(endpoint, name, expected(_("an object"), value))
    return value


def _list(value: object, endpoint: str, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise malformed(endpoint, name, expected(_("a list"), value))
    return value


def object_id(value: object, endpoint: str, name: str) -> str:
    """HubSpot ids are strings of digits in v3 and integers in v4 associations."""
    if value is None or value == "":
        raise malformed(endpoint, name, _("is missing"))
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise malformed(endpoint, name, expected(_("an id"), value))
    return str(value)


def next_after(payload: dict[str, Any], endpoint: str) -> str | None:
    paging = payload.get("paging")
    if paging is None:
        return None
    nxt = _dict(paging, endpoint, "paging").get("next")
    if nxt is None:
        return None
    after = _dict(nxt, endpoint, "paging.next").get("after")
    if not isinstance(after, str | int) or isinstance(after, bool) or after == "":
        raise malformed(endpoint, "paging.next.after", expected(_("a cursor"), after))
    return str(after)


def results(payload: object, endpoint: str) -> list[dict[str, Any]]:
    body = _dict(payload, endpoint, _("the response"))
    items = _list(body.get("results"), endpoint, "results")
    return [_dict(item, endpoint, f"results[{i}]") for i, item in enumerate(items)]


def parse_record(item: dict[str, Any], endpoint: str, index: int) -> Record:
    where = f"results[{index}]"
    record_id = object_id(item.get("id"), endpoint, f"{where}.id")
    where = f"{where} (id {record_id})"
    raw = item.get("properties") or {}
    props: dict[str, str | None] = {}
    for name, value in _dict(raw, endpoint, f"{where}.properties").items():
        if value is None or isinstance(value, str):
            props[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            props[name] = str(value)
        else:
            raise malformed(endpoint, f"{where}.properties.{name}", expected(_("text"), value))
    history: dict[str, list[tuple[str | None, str]]] = {}
    raw_history = item.get("propertiesWithHistory") or {}
    for name, versions in _dict(raw_history, endpoint, f"{where}.propertiesWithHistory").items():
        entries = []
        for i, version in enumerate(_list(versions, endpoint,
                                          f"{where}.propertiesWithHistory.{name}")):
            label = f"{where}.propertiesWithHistory.{name}[{i}]"
            version = _dict(version, endpoint, label)
            value, stamp = version.get("value"), version.get("timestamp")
            if value is not None and not isinstance(value, str):
                raise malformed(endpoint, f"{label}.value", expected(_("text"), value))
            if not isinstance(stamp, str) or not stamp:
                raise malformed(endpoint, f"{label}.timestamp", expected(_("a timestamp"), stamp))
            entries.append((value, stamp))
        history[name] = entries
    associations: dict[str, list[str]] = {}
    raw_assoc = item.get("associations") or {}
    for kind, block in _dict(raw_assoc, endpoint, f"{where}.associations").items():
        label = f"{where}.associations.{kind}"
        linked = _list(_dict(block, endpoint, label).get("results"), endpoint,
                       f"{label}.results")
        ids = [object_id(_dict(x, endpoint, label).get("id"), endpoint, f"{label}.id")
               for x in linked]
        associations[kind] = list(dict.fromkeys(ids))
    archived_at = item.get("archivedAt")
    if archived_at is not None and not isinstance(archived_at, str):
        raise malformed(endpoint, f"{where}.archivedAt", expected(_("a timestamp"), archived_at))
    return Record(record_id, props, history, associations, archived_at)


class HubSpotApi:
    """The calls the connector makes, with HubSpot's limits and error messages."""

    def __init__(self, base_url: str, token: str, options: ClientOptions,
                 secrets: tuple[str, ...] = ()) -> None:
        self.client: ApiClient = options.client(
            CRM, base_url, headers={"Authorization": f"Bearer {token}",
                                    "Accept": "application/json"},
            secrets=(token, *secrets))
        # HubSpot allows search half the rate of other calls (5/s against 100 per 10 s).
        self.search_rate = LeakyBucket(max(options.rate_limit / 2, 0.1))

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.client.request(method, path, **kwargs)
        except AuthError:
            raise AuthError(_(
                "HubSpot refused the access token at {path}: it has expired, was revoked, or "
                "the private app lacks a scope ({scopes}). Copy a valid token from Settings > "
                "Integrations > Private apps and reconnect with 'saleskpi connect hubspot'.",
                path=path, scopes=", ".join(SCOPES))) from None

    def get(self, path: str, **params: str) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, json=body)

    # -- account and settings -------------------------------------------------------
    def account(self) -> dict[str, Any]:
        path = "/account-info/v3/details"
        return _dict(self.get(path), path, _("the response"))

    def owners(self) -> list[dict[str, Any]]:
        """Every owner, active and deactivated (records may still point at the latter)."""
        path = "/crm/v3/owners"
        found: list[dict[str, Any]] = []
        for archived in ("false", "true"):
            after: str | None = None
            while True:
                params = {"limit": str(LIST_LIMIT), "archived": archived}
                if after:
                    params["after"] = after
                payload = self.get(path, **params)
                found += results(payload, path)
                after = next_after(payload, path)
                if after is None:
                    break
        return found

    def deal_pipelines(self) -> list[dict[str, Any]]:
        path = "/crm/v3/pipelines/deals"
        return results(self.get(path), path)

    # -- objects ---------------------------------------------------------------------
    def list_page(self, object_type: str, after: str, properties: tuple[str, ...],
                  associations: tuple[str, ...] = (), history: tuple[str, ...] = (),
                  archived: bool = False) -> Page:
        path = f"/crm/v3/objects/{object_type}"
        params = {"limit": str(HISTORY_LIMIT if history else LIST_LIMIT),
                  "archived": "true" if archived else "false",
                  "properties": ",".join(properties)}
        if associations:
            params["associations"] = ",".join(associations)
        if history:
            params["propertiesWithHistory"] = ",".join(history)
        if after:
            params["after"] = after
        payload = self.get(path, **params)
        records = [parse_record(item, path, i) for i, item in enumerate(results(payload, path))]
        return Page(records, next_after(payload, path), path)

    def search_page(self, object_type: str, modified: str, floor_ms: int, after: str,
                    properties: tuple[str, ...]) -> Page:
        """Objects modified at or after ``floor_ms``, oldest change first."""
        path = f"/crm/v3/objects/{object_type}/search"
        body: dict[str, Any] = {
            "filterGroups": [{"filters": [
                {"propertyName": modified, "operator": "GTE", "value": str(floor_ms)}]}],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": SEARCH_LIMIT,
        }
        if after:
            body["after"] = after
        self.search_rate.wait(self.client.sleep)
        payload = self.post(path, body)
        records = [parse_record(item, path, i) for i, item in enumerate(results(payload, path))]
        return Page(records, next_after(payload, path), path)

    def batch_read(self, object_type: str, ids: list[str], properties: tuple[str, ...],
                   history: tuple[str, ...]) -> dict[str, Record]:
        path = f"/crm/v3/objects/{object_type}/batch/read"
        found: dict[str, Record] = {}
        for start in range(0, len(ids), BATCH_READ_LIMIT):
            chunk = ids[start:start + BATCH_READ_LIMIT]
            payload = self.post(path, {"properties": list(properties),
                                       "propertiesWithHistory": list(history),
                                       "inputs": [{"id": i} for i in chunk]})
            for i, item in enumerate(results(payload, path)):
                record = parse_record(item, path, i)
                found[record.id] = record
        return found

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """v4 batch read: object id -> associated ids, the primary one first.

        Each result pages on its own: an object with more links than one page holds
        carries ``paging.next.after``, sent back with its id (``{"id", "after"}``) until
        a result comes without ``paging``. At most 1,000 inputs a request.
        """
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
        primary: dict[str, list[str]] = {}
        others: dict[str, list[str]] = {}
        pending: list[dict[str, str]] = [{"id": i} for i in dict.fromkeys(ids)]
        while pending:
            inputs, pending = pending[:ASSOCIATION_INPUTS], pending[ASSOCIATION_INPUTS:]
            payload = self.post(path, {"inputs": inputs})
            for i, item in enumerate(results(payload, path)):
                where = f"results[{i}]"
                source = object_id(_dict(item.get("from"), path, f"{where}.from").get("id"),
                                   path, f"{where}.from.id")
                for j, target in enumerate(_list(item.get("to"), path, f"{where}.to")):
                    target = _dict(target, path, f"{where}.to[{j}]")
                    linked = object_id(target.get("toObjectId"), path,
                                       f"{where}.to[{j}].toObjectId")
                    kinds = target.get("associationTypes") or []
                    labels = [k.get("label") for k in _list(kinds, path, f"{where}.to[{j}]")
                              if isinstance(k, dict)]
                    chosen = primary if "Primary" in labels else others
                    chosen.setdefault(source, []).append(linked)
                after = next_after(item, f"{path} {where}")
                if after is not None:
                    pending.append({"id": source, "after": after})
        return {source: list(dict.fromkeys(primary.get(source, []) + others.get(source, [])))
                for source in {*primary, *others}}
