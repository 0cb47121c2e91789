"""People: reps matched across sources, users of the product, and API tokens.

Reps are scoped like every figure: a rep sees themselves, a team lead their team,
managers everyone. Users are for managers only; tokens are the caller's own, and
a token's secret is shown once, when it is issued.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from saleskpi.domain.errors import Forbidden, InvalidQuery
from saleskpi.domain.i18n import LANGUAGES, _
from saleskpi.service import auth
from saleskpi.service.auth import ROLES, Principal, add_user, list_users
from saleskpi.service.core import SalesKpiService
from saleskpi.service.tokens import list_tokens
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


class UsersView(ViewModel):
    users: list[UserEntry]
    page: PageInfo


def user_entry(user: Principal) -> UserEntry:
    return UserEntry(id=user.user_id, username=user.username, role=user.role,
                     rep_id=user.rep_id, team=user.team, lang=user.lang)


def users(service: SalesKpiService, caller: Principal, params: UsersParams) -> UsersView:
    """Every user and their role, by username: managers only."""
    require_manager(caller)
    found = list_users(service.settings)
    items, page = paged([user_entry(u) for u in found], params)
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
    created = add_user(service.settings, params.username, params.password, params.role,
                       rep_id=params.rep_id, team=params.team, lang=params.lang)
    view: UserView = UserView(**user_entry(created).model_dump()).with_source(created)
    return view


# -- API tokens -------------------------------------------------------------------------
class TokenEntry(BaseModel):
    id: int
    name: str = Field(description="What the token is for.")
    created: dt.datetime = Field(description="When it was issued (UTC).")


class TokensView(ViewModel):
    tokens: list[TokenEntry] = Field(description="The caller's tokens; never their secrets.")


class TokensParams(BaseModel):
    pass


def tokens(service: SalesKpiService, caller: Principal, params: TokensParams) -> TokensView:
    """The caller's own API tokens (the secrets are stored only as hashes)."""
    found = list_tokens(service.settings, caller.user_id)
    view: TokensView = TokensView(tokens=[TokenEntry(id=t.id, name=t.name, created=t.created_at)
                                          for t in found]).with_source(found)
    return view


class NewToken(BaseModel):
    name: str = Field(default="script", min_length=1, max_length=100,
                      description="What the token is for.")


class IssuedToken(ViewModel):
    name: str
    token: str = Field(description="Shown once: send it as 'Authorization: Bearer <token>'.")


def issue_token(service: SalesKpiService, caller: Principal, params: NewToken) -> IssuedToken:
    """A token for the caller's scripts, with the caller's own rights."""
    return IssuedToken(name=params.name,
                       token=auth.issue_token(service.settings, caller.user_id, params.name))
