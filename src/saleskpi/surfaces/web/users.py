"""Users and API tokens (managers): disable, enable and delete users; issue and revoke tokens.

The same views as ``saleskpi user ...`` and ``/api/v1/users`` and ``/api/v1/tokens``
(``saleskpi.views.people``), so the same rules hold: nobody disables or deletes
themselves, only an admin touches admins, the last admin stays. A new token is shown
once, in the answer to the form that made it, and is never stored in the session.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.errors import HTTP_STATUS, SalesKpiError
from saleskpi.domain.query import MAX_ID
from saleskpi.service.auth import MAX_TOKEN_DAYS
from saleskpi.surfaces.web.deps import ManagerPageDep, Page
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _, role_names
from saleskpi.surfaces.web.tables import Cell, Column, DataTable, Row, number_cell, text_cell
from saleskpi.views.people import (
    IssuedToken,
    NewToken,
    RevokeToken,
    TokenEntry,
    TokensParams,
    UserChange,
    UserEntry,
    UsersParams,
    UserTarget,
    change_user,
    delete_user,
    issue_token,
    revoke_token,
    tokens,
    users,
)

router = APIRouter(route_class=WebRoute)
SESSION_FLASH = "web_flash"
MAX_FIELD = 200
Csrf = Annotated[str, Form(max_length=MAX_FIELD)]
# A row id from a form: past 64 bits it could not reach SQLite (422, not a 500).
FormId = Annotated[int, Form(alias="id", ge=1, le=MAX_ID)]


def _when(page: Page, moment: dt.datetime | None) -> Cell:
    return Cell(moment.isoformat() if moment else None,
                page.fmt.date(moment.date()) if moment else _("never"))


def users_table(page: Page, entries: list[UserEntry]) -> DataTable:
    columns = [Column("id", _("Id"), numeric=True), Column("username", _("User")),
               Column("role", _("Role")), Column("scope", _("Sees")),
               Column("status", _("Status"))]
    roles = role_names()
    rows = []
    for user in entries:
        if user.role == "rep":
            sees = _("rep {rep}", rep=user.rep_id)
        elif user.role == "team_lead":
            sees = _("team {team}", team=user.team)
        else:
            sees = _("everything")
        status = Cell("disabled" if user.disabled else "enabled",
                      _("disabled") if user.disabled else _("enabled"))
        rows.append(Row([number_cell(user.id, "count", page.fmt), text_cell(user.username),
                         Cell(user.role, roles.get(user.role, user.role)), Cell(sees, sees),
                         status], kind="disabled" if user.disabled else "item"))
    return DataTable("users", _("Users"), columns, rows)


def token_state(token: TokenEntry, now: dt.datetime) -> str:
    if token.revoked is not None:
        return "revoked"
    if token.expires is not None and token.expires <= now:
        return "expired"
    return "active"


def tokens_table(page: Page, owner: str, entries: list[TokenEntry]) -> DataTable:
    columns = [Column("id", _("Id"), numeric=True), Column("name", _("Name")),
               Column("created", _("Created")), Column("expires", _("Expires")),
               Column("status", _("Status"))]
    states = {"active": _("active"), "expired": _("expired"), "revoked": _("revoked")}
    now = dt.datetime.now(dt.UTC)
    rows = []
    for token in entries:
        state = token_state(token, now)
        rows.append(Row([number_cell(token.id, "count", page.fmt), text_cell(token.name),
                         _when(page, token.created), _when(page, token.expires),
                         Cell(state, states[state])], kind=state))
    return DataTable("tokens", _("API tokens of {name}", name=owner), columns, rows)


def _owner(page: Page, known: list[UserEntry]) -> str:
    """Whose tokens the page shows: ``?tokens_of=NAME`` (a known user), else the caller's."""
    wanted = page.request.query_params.get("tokens_of", "")
    return wanted if wanted in {u.username for u in known} else page.user.username


def _page(page: Page, *, error: str = "", status: int = 200, owner: str | None = None,
          issued: IssuedToken | None = None) -> Response:
    known = users(page.service, page.user, UsersParams()).users
    owner = owner if owner in {u.username for u in known} else _owner(page, known)
    shown = tokens(page.service, page.user, TokensParams(username=owner)).tokens
    flash = page.request.session.pop(SESSION_FLASH, "")
    user_rows, token_rows = users_table(page, known), tokens_table(page, owner, shown)
    return page.render("users.html", status=status, tables=[user_rows, token_rows],
                       users=user_rows, tokens=token_rows, entries={u.id: u for u in known},
                       owner=owner, own=owner == page.user.username, issued=issued,
                       error=error, flash=flash if isinstance(flash, str) else "",
                       max_days=MAX_TOKEN_DAYS, title=_("Users and API tokens"))


def _back(flash: str, page: Page, owner: str | None = None) -> Response:
    page.request.session[SESSION_FLASH] = flash
    query = f"?{urlencode({'tokens_of': owner})}" if owner else ""
    return RedirectResponse("/users" + query, status_code=303)


def _refused(page: Page, exc: SalesKpiError, owner: str | None = None) -> Response:
    return _page(page, status=HTTP_STATUS[exc.kind], error=exc.message, owner=owner)


@router.get("/users")
def users_page(page: ManagerPageDep) -> Response:
    return _page(page)


@router.post("/users/state")
def set_state(page: ManagerPageDep, user_id: FormId,
              csrf: Csrf = "", disabled: Annotated[str, Form(max_length=1)] = "1") -> Response:
    page.check_csrf(csrf)
    try:
        changed = change_user(page.service, page.user,
                              UserChange(id=user_id, disabled=disabled == "1"))
    except SalesKpiError as exc:
        return _refused(page, exc)
    if changed.disabled:
        return _back(_("User {name} disabled: their sessions and tokens stop working now.",
                       name=changed.username), page)
    return _back(_("User {name} enabled.", name=changed.username), page)


@router.post("/users/delete")
def remove_user(page: ManagerPageDep, user_id: FormId,
                csrf: Csrf = "") -> Response:
    page.check_csrf(csrf)
    try:
        gone = delete_user(page.service, page.user, UserTarget(id=user_id))
    except SalesKpiError as exc:
        return _refused(page, exc)
    return _back(_("User {name} deleted, with their API tokens.", name=gone.deleted.username),
                 page)


@router.post("/users/tokens")
def new_token(page: ManagerPageDep, csrf: Csrf = "",
              name: Annotated[str, Form(max_length=MAX_FIELD)] = "",
              days: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    page.check_csrf(csrf)
    lifetime = days.strip()
    try:
        wanted = NewToken(name=name.strip() or "web",
                          days=int(lifetime) if lifetime.isdigit() else None)
    except ValidationError:
        wanted = None
    if wanted is None or (lifetime and not lifetime.isdigit()):
        return _page(page, status=400, error=_(
            "a token's lifetime must be 1 to {most} days", most=MAX_TOKEN_DAYS))
    issued = issue_token(page.service, page.user, wanted)
    return _page(page, status=201, owner=page.user.username, issued=issued)


@router.post("/users/tokens/revoke")
def revoke(page: ManagerPageDep, token_id: FormId,
           csrf: Csrf = "", owner: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    page.check_csrf(csrf)
    whose = owner or page.user.username
    try:
        revoke_token(page.service, page.user, RevokeToken(id=token_id, username=whose))
    except SalesKpiError as exc:
        return _refused(page, exc, owner=whose)
    return _back(_("Token {id} revoked: it stops working now.", id=token_id), page,
                 None if whose == page.user.username else whose)
