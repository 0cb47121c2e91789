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

from saleskpi.domain.errors import Conflict, Forbidden, NotFound, SalesKpiError
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings
from saleskpi.service.principal import Principal as Principal  # callers import it here too
from saleskpi.store.state import engine_for
from saleskpi.store.state.contacts import forget_contact
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


def _now() -> dt.datetime:
    """Now in UTC, naive: how the state database stores times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def authenticate(settings: Settings, username: str, password: str) -> Principal | None:
    """The user with this name and password, unless disabled; None otherwise."""
    with Session(engine_for(settings.state_url)) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or user.disabled:
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


# -- sessions ---------------------------------------------------------------------------
def session_generation(settings: Settings, user_id: int) -> int:
    """The generation a session signed in now carries (see ``session_user``)."""
    with Session(engine_for(settings.state_url)) as session:
        user = session.get(User, user_id)
        return user.session_generation if user else -1


def session_user(settings: Settings, user_id: int, generation: object) -> Principal | None:
    """The user of a session cookie, checked on every request.

    None when the user is gone or disabled, or signed out since the cookie was made
    (signing out bumps the user's generation, so a copied cookie dies with it).
    """
    with Session(engine_for(settings.state_url)) as session:
        user = session.get(User, user_id)
        if user is None or user.disabled or not isinstance(generation, int) \
                or isinstance(generation, bool) or generation != user.session_generation:
            return None
        return _principal(user)


def _bump(user: User) -> None:
    user.session_generation = (user.session_generation or 0) + 1


def sign_out_everywhere(settings: Settings, user_id: int) -> None:
    """End every session of the user at once (each browser must sign in again)."""
    with Session(engine_for(settings.state_url)) as session, session.begin():
        user = session.get(User, user_id)
        if user is not None:
            _bump(user)


# -- disabling and deleting users -------------------------------------------------------
def _target(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(_("no user {name!r}", name=username), code="unknown_user")
    return user


def _check_change(session: Session, actor: Principal, user: User) -> None:
    """Nobody disables or deletes themselves or the last admin; only admins touch admins."""
    if user.id == actor.user_id:
        raise Forbidden(_("you cannot disable or delete your own account"), code="own_account")
    if user.role == "admin":
        if actor.role != "admin":
            raise Forbidden(_("only an admin may disable or delete admins"))
        admins = session.scalars(select(User).where(User.role == "admin",
                                                    User.disabled.is_(False))).all()
        if [a.id for a in admins] == [user.id]:
            raise Conflict(_("{name!r} is the last admin; add another admin first",
                             name=user.username), code="last_admin")


def set_disabled(settings: Settings, actor: Principal, username: str,
                 disabled: bool) -> Principal:
    """Disable (or enable again) a user: a disabled user's sessions and tokens stop at once.

    Their sessions stay ended when they are enabled again; their tokens work again.
    """
    with Session(engine_for(settings.state_url)) as session, session.begin():
        user = _target(session, username)
        if disabled and not user.disabled:
            _check_change(session, actor, user)
        if disabled != user.disabled:
            user.disabled = disabled
            _bump(user)
        return _principal(user)


def disabled_ids(settings: Settings) -> set[int]:
    """The ids of the disabled users."""
    with Session(engine_for(settings.state_url)) as session:
        return set(session.scalars(select(User.id).where(User.disabled.is_(True))))


def delete_user(settings: Settings, actor: Principal, username: str) -> Principal:
    """Delete a user and their API tokens; their sessions stop at once."""
    with Session(engine_for(settings.state_url)) as session, session.begin():
        user = _target(session, username)
        _check_change(session, actor, user)
        gone = _principal(user)
        for token in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)):
            session.delete(token)
        forget_contact(session, user.id)
        session.delete(user)
        return gone


def username_for(settings: Settings, user_id: int) -> str:
    with Session(engine_for(settings.state_url)) as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(_("no user with id {id}", id=user_id), code="unknown_user")
        return user.username


def list_users(settings: Settings) -> list[Principal]:
    with Session(engine_for(settings.state_url)) as session:
        return [_principal(u) for u in session.scalars(select(User).order_by(User.username))]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MAX_TOKEN_DAYS = 3650


def issue_token(settings: Settings, user_id: int, name: str, *,
                days: int | None = None) -> str:
    """A new API token for scripts; returned once, stored only as a hash.

    ``days``: the token stops working that many days from now (None: never).
    """
    return new_token(settings, user_id, name, days=days)[1]


def new_token(settings: Settings, user_id: int, name: str, *,
              days: int | None = None) -> tuple[int, str, dt.datetime | None]:
    """``issue_token`` with the new token's id and expiry (UTC, None: never)."""
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise AuthError(_("a token's lifetime must be 1 to {most} days", most=MAX_TOKEN_DAYS),
                        code="bad_days")
    token = "skpi_" + secrets.token_urlsafe(32)
    now = _now()
    expires = now + dt.timedelta(days=days) if days else None
    with Session(engine_for(settings.state_url)) as session, session.begin():
        row = ApiToken(user_id=user_id, token_hash=_token_hash(token), name=name,
                       created_at=now, expires_at=expires)
        session.add(row)
        session.flush()
        token_id = row.id
    return token_id, token, expires.replace(tzinfo=dt.UTC) if expires else None


def principal_for_token(settings: Settings, token: str) -> Principal | None:
    """The token's user; None for an unknown, expired or revoked token or a disabled user."""
    with Session(engine_for(settings.state_url)) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
        if row is None or row.revoked_at is not None or (
                row.expires_at is not None and row.expires_at <= _now()):
            return None
        user = session.get(User, row.user_id)
        return _principal(user) if user and not user.disabled else None


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies: derived from the workspace secret, never in code."""
    from saleskpi.sources.connectors.credentials import workspace_key

    return hashlib.sha256(b"session:" + workspace_key(settings)).hexdigest()
