"""Users, roles and scopes: who may see whose numbers.

Roles: admin and head see everything; a team lead sees their team; a rep sees
their own figures (team averages only as aggregates, which the service computes
over the team without handing out the other reps' rows). The scope is applied
inside the service for every query, so no surface can skip it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings
from saleskpi.service.principal import Principal as Principal  # callers import it here too
from saleskpi.store.state import engine_for
from saleskpi.store.state.users import ApiToken, User

ROLES = ("admin", "head", "team_lead", "rep")
_hasher = PasswordHasher()


class AuthError(SalesKpiError):
    """A user that cannot be created or changed (unknown role, taken name)."""

    default_code = "bad_user"


def _principal(user: User) -> Principal:
    return Principal(user.id, user.username, user.role, user.rep_id, user.team, user.lang)


def add_user(settings: Settings, username: str, password: str, role: str, *,
             rep_id: str | None = None, team: str | None = None, lang: str = "en") -> Principal:
    if role not in ROLES:
        raise AuthError(_("unknown role {role!r}; use one of {roles}", role=role,
                          roles=", ".join(ROLES)))
    if role == "rep" and not rep_id:
        raise AuthError(_("a rep user needs --rep (the rep's id)"))
    if role == "team_lead" and not team:
        raise AuthError(_("a team lead user needs --team"))
    if len(password) < 8:
        raise AuthError(_("the password must have at least 8 characters"))
    with Session(engine_for(settings.state_url)) as session, session.begin():
        if session.scalar(select(User).where(User.username == username)):
            raise AuthError(_("user {name!r} already exists", name=username))
        user = User(username=username, password_hash=_hasher.hash(password), role=role,
                    rep_id=rep_id, team=team, lang=lang,
                    created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
        session.add(user)
        session.flush()
        return _principal(user)


def authenticate(settings: Settings, username: str, password: str) -> Principal | None:
    with Session(engine_for(settings.state_url)) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            # Spend the same time as a real check, so timing does not reveal usernames.
            _hasher.hash(password)
            return None
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return _principal(user)


def user_by_id(settings: Settings, user_id: int) -> Principal | None:
    with Session(engine_for(settings.state_url)) as session:
        user = session.get(User, user_id)
        return _principal(user) if user else None


def list_users(settings: Settings) -> list[Principal]:
    with Session(engine_for(settings.state_url)) as session:
        return [_principal(u) for u in session.scalars(select(User).order_by(User.username))]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(settings: Settings, user_id: int, name: str) -> str:
    """A new API token for scripts; returned once, stored only as a hash."""
    token = "skpi_" + secrets.token_urlsafe(32)
    with Session(engine_for(settings.state_url)) as session, session.begin():
        session.add(ApiToken(user_id=user_id, token_hash=_token_hash(token), name=name,
                             created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    return token


def principal_for_token(settings: Settings, token: str) -> Principal | None:
    with Session(engine_for(settings.state_url)) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
        if row is None:
            return None
        user = session.get(User, row.user_id)
        return _principal(user) if user else None


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies: derived from the workspace secret, never in code."""
    from saleskpi.sources.connectors.credentials import workspace_key

    return hashlib.sha256(b"session:" + workspace_key(settings)).hexdigest()
