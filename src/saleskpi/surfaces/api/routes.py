"""The REST API (v1): the same numbers as the CLI, scoped to the caller."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel

from saleskpi.domain.errors import SalesKpiError
from saleskpi.service.auth import ROLES, AuthError, add_user, authenticate, issue_token, list_users
from saleskpi.surfaces.http.deps import (
    SESSION_CSRF,
    SESSION_USER,
    ManagerDep,
    ServiceDep,
    UserDep,
    csrf_header,
    csrf_token,
    login_throttle,
)
from saleskpi.surfaces.http.errors import problem
from saleskpi.surfaces.http.uploads import MAX_UPLOAD, save_upload
from saleskpi.views.base import DEFAULT_LIMIT, MAX_LIMIT
from saleskpi.views.scorecard import ScorecardParams, ScorecardView
from saleskpi.views.scorecard import scorecard as scorecard_view

router = APIRouter(prefix="/api/v1")


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


# -- session ------------------------------------------------------------------------------
@router.post("/session")
def login(body: Login, request: Request, svc: ServiceDep) -> dict[str, Any]:
    key = f"{request.client.host if request.client else '?'}:{body.username.lower()}"
    if login_throttle.blocked(key):
        raise problem(429, "too_many_attempts", "too many failed sign-ins; wait 5 minutes")
    principal = authenticate(svc.settings, body.username, body.password)
    if principal is None:
        login_throttle.failed(key)
        raise problem(401, "bad_credentials", "wrong username or password")
    login_throttle.succeeded(key)
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
@router.get("/scorecard", response_model=ScorecardView, response_model_by_alias=True)
def scorecard(user: UserDep, svc: ServiceDep,
              kpi: Annotated[list[str], Query(description="KPI keys; repeat.")] = [],  # noqa: B006
              by: Annotated[list[str], Query(description="Slices; repeat.")] = [],  # noqa: B006
              period: str = "all",
              start: Annotated[dt.date | None, Query(alias="from")] = None,
              end: Annotated[dt.date | None, Query(alias="to")] = None,
              where: Annotated[list[str], Query(description="DIM=VALUE[,VALUE]")] = [],  # noqa: B006
              limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
              offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """The same JSON as `saleskpi kpi --format json`, within the caller's scope, paginated."""
    params = ScorecardParams(kpis=kpi, by=by, period=period, start=start, end=end, where=where,
                             limit=limit, offset=offset)
    return scorecard_view(svc, user, params).to_json()


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
    svc.put_kpi(key, definition)
    return {"ok": True, "key": key}


@router.delete("/catalog/{key}", dependencies=[Depends(csrf_header)])
def delete_kpi(key: str, user: ManagerDep, svc: ServiceDep) -> dict[str, Any]:
    svc.delete_kpi(key)
    return {"ok": True}


# -- imports ----------------------------------------------------------------------------------
# A sync handler, so FastAPI runs it in a worker thread: an import (dry run or real)
# takes seconds to minutes, and on the event loop it stopped every other request.
@router.post("/imports", dependencies=[Depends(csrf_header)])
def upload_import(user: ManagerDep, svc: ServiceDep,
                  files: Annotated[list[UploadFile], File()],
                  dry_run: bool = True, mapping: str | None = None,
                  source: str | None = None) -> dict[str, Any]:
    """Upload CSV files or one workbook; dry run by default, so the report comes first."""
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
        try:
            report = svc.import_path(Path(folder), mapping=mapping, source=source,
                                     dry_run=dry_run, mapping_by_name_only=True)
        except SalesKpiError as exc:
            raise problem(400, "bad_mapping", str(exc)) from None
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
