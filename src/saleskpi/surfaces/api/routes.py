"""The REST API (v1): the same numbers as the CLI, scoped to the caller."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel

from saleskpi.catalog.load import CatalogError, load_catalog
from saleskpi.domain.query import PERIODS, KpiQuery, Period
from saleskpi.engine.scorecard import QueryError
from saleskpi.service.auth import ROLES, AuthError, add_user, authenticate, issue_token, list_users
from saleskpi.sources.ingest.mapping import MappingError, load_mapping
from saleskpi.surfaces.api.deps import (
    SESSION_CSRF,
    SESSION_USER,
    LoginThrottle,
    ManagerDep,
    ServiceDep,
    UserDep,
    csrf_header,
    csrf_token,
)
from saleskpi.surfaces.api.errors import problem
from saleskpi.surfaces.cli.output import scorecard_json

MAX_ROWS = 10_000
MAX_UPLOAD = 50 * 1024 * 1024

router = APIRouter(prefix="/api/v1")
throttle = LoginThrottle()


class Login(BaseModel):
    username: str
    password: str


class NewUser(BaseModel):
    username: str
    password: str
    role: str
    rep_id: str | None = None
    team: str | None = None
    lang: str = "en"


class NewToken(BaseModel):
    name: str = "script"


def parse_query(kpi: list[str], by: list[str], period: str, start: dt.date | None,
                end: dt.date | None, where: list[str]) -> KpiQuery:
    """Query parameters to a KpiQuery; 400 with a sentence for anything malformed."""
    if not kpi:
        raise problem(400, "no_kpi", "ask for at least one kpi=...")
    if period not in PERIODS:
        raise problem(400, "bad_period", f"period must be one of {', '.join(PERIODS)}")
    filters = []
    for item in where:
        dim, sep, values = item.partition("=")
        if not sep or not dim or not values:
            raise problem(400, "bad_where", f"where expects DIM=VALUE[,VALUE], got {item!r}")
        filters.append((dim.strip(), tuple(v.strip() for v in values.split(","))))
    if start and end and start > end:
        raise problem(400, "bad_range", "from is after to")
    chosen: Period = next(p for p in PERIODS if p == period)
    return KpiQuery(tuple(kpi), tuple(by), chosen, start, end, tuple(filters))


def scorecard_params(
    kpi: Annotated[list[str], Query()] = [],  # noqa: B006  (FastAPI reads the default)
    by: Annotated[list[str], Query()] = [],  # noqa: B006
    period: str = "all",
    start: Annotated[dt.date | None, Query(alias="from")] = None,
    end: Annotated[dt.date | None, Query(alias="to")] = None,
    where: Annotated[list[str], Query()] = [],  # noqa: B006
) -> KpiQuery:
    return parse_query(kpi, by, period, start, end, where)


QueryDep = Annotated[KpiQuery, Depends(scorecard_params)]


# -- session ------------------------------------------------------------------------------
@router.post("/session")
def login(body: Login, request: Request, svc: ServiceDep) -> dict[str, Any]:
    key = f"{request.client.host if request.client else '?'}:{body.username.lower()}"
    if throttle.blocked(key):
        raise problem(429, "too_many_attempts", "too many failed sign-ins; wait 5 minutes")
    principal = authenticate(svc.settings, body.username, body.password)
    if principal is None:
        throttle.failed(key)
        raise problem(401, "bad_credentials", "wrong username or password")
    throttle.succeeded(key)
    request.session.clear()
    request.session[SESSION_USER] = principal.user_id
    return {"user": _user_dict(principal), "csrf": csrf_token(request)}


@router.delete("/session", dependencies=[Depends(csrf_header)])
def logout(request: Request) -> dict[str, bool]:
    request.session.pop(SESSION_USER, None)
    request.session.pop(SESSION_CSRF, None)
    return {"ok": True}


@router.get("/me")
def me(user: UserDep, request: Request) -> dict[str, Any]:
    return {"user": _user_dict(user), "csrf": csrf_token(request)}


def _user_dict(user: Any) -> dict[str, Any]:
    return {"id": user.user_id, "username": user.username, "role": user.role,
            "rep_id": user.rep_id, "team": user.team, "lang": user.lang}


# -- numbers --------------------------------------------------------------------------------
@router.get("/scorecard")
def scorecard(query: QueryDep, user: UserDep, svc: ServiceDep,
              limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000,
              offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """The same JSON as `saleskpi kpi --format json`, within the caller's scope, paginated."""
    try:
        card = svc.scorecard(query, user.scope)
        team = None
        if user.role == "rep" and user.rep_id and "rep" in query.by:
            # A rep's rows are their own: the average they compare with is their team's.
            team = svc.team_average(query, user.rep_id)
    except (QueryError, CatalogError) as exc:
        raise problem(400, "bad_query", str(exc)) from None
    data = scorecard_json(card, timezone=svc.settings.timezone, currency=svc.settings.currency,
                          team_averages=team)
    total = len(data["rows"])
    data["rows"] = data["rows"][offset:offset + limit]
    data["page"] = {"total_rows": total, "limit": limit, "offset": offset}
    return data


@router.get("/catalog")
def catalog(user: UserDep, svc: ServiceDep) -> list[dict[str, Any]]:
    return [
        {"key": s.key, "kind": s.kind, "unit": s.unit, "group": s.group, "name": s.name,
         "description": s.description, "higher_is_better": s.higher_is_better,
         "user_defined": s.origin != "builtin" and not s.origin.endswith("builtin.yaml")}
        for s in svc.catalog.kpis.values()
    ]


@router.put("/catalog/{key}", dependencies=[Depends(csrf_header)])
def put_kpi(key: str, definition: dict[str, Any], user: ManagerDep,
            svc: ServiceDep) -> dict[str, Any]:
    """Add or replace a user KPI in the workspace's kpis.yaml (validated before saving)."""
    path = svc.settings.user_kpis_path
    items = _user_kpis(path)
    items = [i for i in items if i.get("key") != key] + [{**definition, "key": key}]
    _save_kpis(path, items)
    svc.reload_catalog()
    return {"ok": True, "key": key}


@router.delete("/catalog/{key}", dependencies=[Depends(csrf_header)])
def delete_kpi(key: str, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    path = svc.settings.user_kpis_path
    items = _user_kpis(path)
    if not any(i.get("key") == key for i in items):
        raise problem(404, "not_found", f"{key!r} is not a user KPI")
    _save_kpis(path, [i for i in items if i.get("key") != key])
    svc.reload_catalog()
    return {"ok": True}


def _user_kpis(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = data.get("kpis", []) if isinstance(data, dict) else []
    return [i for i in items if isinstance(i, dict)]


def _save_kpis(path: Path, items: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump({"kpis": items}, allow_unicode=True, sort_keys=False)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(text)
        candidate = Path(handle.name)
    try:
        load_catalog(candidate)  # refuse a definition that would break the catalogue
    except CatalogError as exc:
        raise problem(400, "bad_kpi", str(exc).replace(str(candidate), "kpis.yaml")) from None
    finally:
        candidate.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# -- imports ----------------------------------------------------------------------------------
UPLOAD_CHUNK = 1024 * 1024


def save_upload(upload: UploadFile, path: Path, room: int) -> int | None:
    """Copy an uploaded file to ``path``, in chunks; its size, or None past ``room`` bytes.

    FastAPI has received the whole file (in memory or a temporary file) before the
    handler runs, so reading ``upload.file`` only copies it: fit for a sync handler.
    """
    upload.file.seek(0)
    size = 0
    with path.open("wb") as out:
        while chunk := upload.file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > room:
                return None
            out.write(chunk)
    return size


# A sync handler, so FastAPI runs it in a worker thread: an import (dry run or real)
# takes seconds to minutes, and on the event loop it stopped every other request.
@router.post("/imports", dependencies=[Depends(csrf_header)])
def upload_import(user: ManagerDep, svc: ServiceDep,
                  files: Annotated[list[UploadFile], File()],
                  dry_run: bool = True, mapping: str | None = None,
                  source: str | None = None) -> dict[str, Any]:
    """Upload CSV files or one workbook; dry run by default, so the report comes first."""
    chosen = None
    if mapping:
        if not mapping.replace("-", "").replace("_", "").isalnum():
            # A name, never a path: the server must not read files a client names.
            raise problem(400, "bad_mapping", "give the name of a mapping, not a path")
        try:
            chosen = load_mapping(mapping, svc.settings.mappings_dir)
        except MappingError as exc:
            raise problem(400, "bad_mapping", str(exc)) from None
    with tempfile.TemporaryDirectory() as folder:
        room = MAX_UPLOAD
        for upload in files:
            name = Path(upload.filename or "upload.csv").name
            if not name.lower().endswith((".csv", ".xlsx", ".txt", ".tsv")):
                raise problem(400, "bad_file", f"{name}: upload .csv or .xlsx files")
            size = save_upload(upload, Path(folder) / name, room)
            if size is None:
                raise problem(413, "too_large", "uploads are limited to 50 MB")
            room -= size
        report = svc.import_path(Path(folder), mapping=chosen, source=source, dry_run=dry_run)
    return report.to_dict()


# -- users ------------------------------------------------------------------------------------
@router.get("/users")
def users(user: ManagerDep, svc: ServiceDep) -> list[dict[str, Any]]:
    return [_user_dict(u) for u in list_users(svc.settings)]


@router.post("/users", status_code=201, dependencies=[Depends(csrf_header)])
def create_user(body: NewUser, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    if body.role not in ROLES:
        raise problem(400, "bad_role", f"role must be one of {', '.join(ROLES)}")
    if body.role == "admin" and user.role != "admin":
        raise problem(403, "forbidden", "only an admin may create admins")
    try:
        created = add_user(svc.settings, body.username, body.password, body.role,
                           rep_id=body.rep_id, team=body.team, lang=body.lang)
    except AuthError as exc:
        raise problem(400, "bad_user", str(exc)) from None
    return _user_dict(created)


@router.post("/tokens", status_code=201, dependencies=[Depends(csrf_header)])
def create_token(body: NewToken, user: UserDep, svc: ServiceDep) -> dict[str, str]:
    """A token for scripts, shown once: 'Authorization: Bearer <token>'."""
    return {"token": issue_token(svc.settings, user.user_id, body.name)}
