"""People: reps matched across sources, users of the product, and API tokens.

Reps are scoped like every figure: a rep sees themselves, a team lead their team,
managers everyone. Users are for managers only; tokens are the caller's own, and
a token's secret is shown once, when it is issued.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from saleskpi.domain.errors import Forbidden, InvalidQuery, NotFound
from saleskpi.domain.i18n import LANGUAGES, _
from saleskpi.domain.suggest import did_you_mean
from saleskpi.service import auth
from saleskpi.service.auth import ROLES, Principal, add_user, disabled_ids, list_users
from saleskpi.service.core import SalesKpiService
from saleskpi.service.tokens import TokenInfo, list_tokens
from saleskpi.service.tokens import revoke_token as revoke
from saleskpi.views.base import PageInfo, Paging, ViewModel, paged, require_manager


# -- reps -------------------------------------------------------------------------------
class RepsParams(Paging):
    pass


class RepMember(BaseModel):
    """One rep record of one source."""

    source: str
    id: str
    name: str | None
    email: str | None


class PersonEntry(BaseModel):
    person: str = Field(description="The person key KPI rows and filters use (rep=...).")
    name: str
    members: list[RepMember] = Field(description="The person's reps in each source.")
    matched_by: str = Field(description="id (one rep), email or link (a manual link).")


class RepsView(ViewModel):
    people: list[PersonEntry]
    possible_duplicates: list[list[str]] = Field(
        description="Groups of people with the same name that no rule merged.")
    page: PageInfo


def reps(service: SalesKpiService, caller: Principal, params: RepsParams) -> RepsView:
    """The people the caller may see, with the likely duplicates among them."""
    report = service.people()
    visible = {r.rep for r in service.visible_reps(caller.scope)}
    people = [p for p in report.people if p.person in visible]
    duplicates = [group for g in report.possible_duplicates
                  if len(group := [p for p in g if p in visible]) > 1]
    entries = [PersonEntry(person=p.person, name=p.name, matched_by=p.matched_by,
                           members=[RepMember(source=str(m["source"]), id=str(m["id"]),
                                              name=m["name"], email=m["email"])
                                    for m in p.members])
               for p in people]
    items, page = paged(entries, params)
    view: RepsView = RepsView(people=items, possible_duplicates=duplicates,
                              page=page).with_source(report)
    return view


# -- users ------------------------------------------------------------------------------
class UsersParams(Paging):
    pass


class UserEntry(BaseModel):
    id: int
    username: str
    role: str = Field(description="admin, head, team_lead or rep.")
    rep_id: str | None = Field(description="A rep's own person key.")
    team: str | None = Field(description="A team lead's team.")
    lang: str
    disabled: bool = Field(default=False, description="A disabled user cannot sign in; "
                           "their sessions and tokens are refused.")


class UsersView(ViewModel):
    users: list[UserEntry]
    page: PageInfo


def user_entry(user: Principal, *, disabled: bool = False) -> UserEntry:
    return UserEntry(id=user.user_id, username=user.username, role=user.role,
                     rep_id=user.rep_id, team=user.team, lang=user.lang, disabled=disabled)


def users(service: SalesKpiService, caller: Principal, params: UsersParams) -> UsersView:
    """Every user and their role, by username: managers only."""
    require_manager(caller)
    found = list_users(service.settings)
    off = disabled_ids(service.settings)
    items, page = paged([user_entry(u, disabled=u.user_id in off) for u in found], params)
    view: UsersView = UsersView(users=items, page=page).with_source(found)
    return view


class NewUser(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(description="At least 8 characters.")
    role: str = Field(description="admin, head, team_lead or rep.")
    rep_id: str | None = Field(default=None, description="Needed for a rep.")
    team: str | None = Field(default=None, description="Needed for a team lead.")
    lang: str = "en"


class UserView(ViewModel, UserEntry):
    pass


def create_user(service: SalesKpiService, caller: Principal, params: NewUser) -> UserView:
    """Add a user: managers only, and only an admin makes admins."""
    require_manager(caller)
    if params.role not in ROLES:
        raise InvalidQuery(_("unknown role {role!r}; use one of {roles}", role=params.role,
                             roles=", ".join(ROLES)), code="bad_role")
    if params.role == "admin" and caller.role != "admin":
        raise Forbidden(_("only an admin may create admins"))
    if params.lang not in LANGUAGES:
        raise InvalidQuery(_("unknown language {lang!r}; use one of {known}",
                             lang=params.lang, known=", ".join(LANGUAGES)), code="bad_lang")
    rep_id, team = _known_person(service, params)
    created = add_user(service.settings, params.username, params.password, params.role,
                       rep_id=rep_id, team=team, lang=params.lang)
    view: UserView = UserView(**user_entry(created).model_dump()).with_source(created)
    return view


def _known_person(service: SalesKpiService, params: NewUser) -> tuple[str | None, str | None]:
    """The new user's rep (as the person every KPI counts) and team, checked against the
    data: a misspelt one would make a user who sees nothing. Before any data is
    imported there is nothing to check against, and they are kept as given."""
    people = service.visible_reps()
    rep_id, team = params.rep_id, params.team
    if not people:
        return rep_id, team
    if params.role == "rep" and rep_id:
        person = service.person_key(rep_id)
        if person is None and len(called := service.people_called(rep_id)) > 1:
            # Giving one of them the other's figures would be a leak: ask which.
            raise service.ambiguous_rep(rep_id, called)
        if person is None:
            raise InvalidQuery(_("unknown rep {rep!r}: give a rep id or name from the "
                                 "imported reps", rep=rep_id)
                               + did_you_mean(rep_id, [*(r.rep for r in people),
                                                       *(r.name for r in people)]),
                               code="unknown_rep")
        rep_id = person
    if params.role == "team_lead" and team and team not in service.teams():
        raise InvalidQuery(_("unknown team {team!r}: no rep of the data is in it", team=team)
                           + did_you_mean(team, sorted(service.teams()), list_up_to=20),
                           code="unknown_team")
    return rep_id, team


class UserTarget(BaseModel):
    """A user by id (REST) or by name (CLI)."""

    id: int | None = None
    username: str | None = None


class UserChange(UserTarget):
    disabled: bool = Field(description="True: refuse the user's sign-ins, sessions and "
                           "tokens at once; false: let them sign in again.")


class DeletedUser(ViewModel):
    deleted: UserEntry


def _username(service: SalesKpiService, target: UserTarget) -> str:
    if target.username is not None:
        return target.username
    if target.id is None:
        raise InvalidQuery(_("name the user"), code="bad_user")
    return auth.username_for(service.settings, target.id)


def change_user(service: SalesKpiService, caller: Principal, params: UserChange) -> UserView:
    """Disable or enable a user: managers only; not oneself, not the last admin."""
    require_manager(caller)
    changed = auth.set_disabled(service.settings, caller, _username(service, params),
                                params.disabled)
    entry = user_entry(changed, disabled=params.disabled)
    view: UserView = UserView(**entry.model_dump()).with_source(changed)
    return view


def delete_user(service: SalesKpiService, caller: Principal, params: UserTarget) -> DeletedUser:
    """Delete a user and their tokens: managers only; not oneself, not the last admin."""
    require_manager(caller)
    gone = auth.delete_user(service.settings, caller, _username(service, params))
    view: DeletedUser = DeletedUser(deleted=user_entry(gone)).with_source(gone)
    return view


# -- API tokens -------------------------------------------------------------------------
class TokenEntry(BaseModel):
    id: int
    name: str = Field(description="What the token is for.")
    created: dt.datetime = Field(description="When it was issued (UTC).")
    expires: dt.datetime | None = Field(default=None,
                                        description="When it stops working (UTC); null: never.")
    revoked: dt.datetime | None = Field(default=None,
                                        description="When it was revoked (UTC); null: it was not.")


def token_entry(token: TokenInfo) -> TokenEntry:
    return TokenEntry(id=token.id, name=token.name, created=token.created_at,
                      expires=token.expires_at, revoked=token.revoked_at)


class TokensView(ViewModel):
    tokens: list[TokenEntry] = Field(description="The caller's tokens; never their secrets.")


class TokensParams(BaseModel):
    username: str | None = Field(default=None, description="Whose tokens (managers); "
                                 "the caller's own by default.")


def tokens(service: SalesKpiService, caller: Principal, params: TokensParams) -> TokensView:
    """The caller's own API tokens (the secrets are stored only as hashes)."""
    user_id = caller.user_id
    if params.username is not None and params.username != caller.username:
        require_manager(caller)
        user_id = _user_id(params.username, service)
    found = list_tokens(service.settings, user_id)
    view: TokensView = TokensView(tokens=[token_entry(t) for t in found]).with_source(found)
    return view


def _user_id(username: str, service: SalesKpiService) -> int:
    match = [u for u in list_users(service.settings) if u.username == username]
    if not match:
        raise NotFound(_("no user {name!r}", name=username), code="unknown_user")
    return match[0].user_id


class NewToken(BaseModel):
    name: str = Field(default="script", min_length=1, max_length=100,
                      description="What the token is for.")
    days: int | None = Field(default=None, ge=1, le=auth.MAX_TOKEN_DAYS,
                             description="The token stops working after this many days "
                             "(default: never).")


class IssuedToken(ViewModel):
    id: int = Field(description="For revoking it: DELETE /api/v1/tokens/{id}.")
    name: str
    token: str = Field(description="Shown once: send it as 'Authorization: Bearer <token>'.")
    expires: dt.datetime | None = Field(default=None,
                                        description="When it stops working (UTC); null: never.")


def issue_token(service: SalesKpiService, caller: Principal, params: NewToken) -> IssuedToken:
    """A token for the caller's scripts, with the caller's own rights."""
    token_id, token, expires = auth.new_token(service.settings, caller.user_id, params.name,
                                              days=params.days)
    return IssuedToken(id=token_id, name=params.name, token=token, expires=expires)


class RevokeToken(BaseModel):
    id: int
    username: str | None = Field(default=None, description="The token must be this user's.")


class RevokedToken(ViewModel):
    revoked: TokenEntry


def revoke_token(service: SalesKpiService, caller: Principal,
                 params: RevokeToken) -> RevokedToken:
    """Revoke a token at once: its owner's, or any user's for a manager."""
    owner = None if params.username is None else _user_id(params.username, service)
    if owner is not None and owner != caller.user_id:
        require_manager(caller)
    info = revoke(service.settings, caller, params.id, owner_id=owner)
    view: RevokedToken = RevokedToken(revoked=token_entry(info)).with_source(info)
    return view
