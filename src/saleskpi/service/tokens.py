"""A user's API tokens as they may see them: names and dates, never the secret."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from saleskpi.domain.errors import NotFound
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings
from saleskpi.service.principal import Principal
from saleskpi.store.state import engine_for
from saleskpi.store.state.users import ApiToken


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: dt.datetime  # UTC
    expires_at: dt.datetime | None = None  # UTC; None: never
    revoked_at: dt.datetime | None = None  # UTC; None: not revoked


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None else None


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.created_at.replace(tzinfo=dt.UTC),
                     _utc(row.expires_at), _utc(row.revoked_at))


def list_tokens(settings: Settings, user_id: int) -> list[TokenInfo]:
    """``user_id``'s tokens, oldest first (only their hashes are stored)."""
    with Session(engine_for(settings.state_url)) as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                               .order_by(ApiToken.id))
        return [_info(r) for r in rows]


def revoke_token(settings: Settings, caller: Principal, token_id: int, *,
                 owner_id: int | None = None) -> TokenInfo:
    """Revoke a token at once: its owner or a manager may (``owner_id``: must be theirs).

    Anyone else is told there is no such token, as for a token that does not exist.
    Revoking a revoked token again changes nothing.
    """
    with Session(engine_for(settings.state_url)) as session, session.begin():
        row = session.get(ApiToken, token_id)
        if row is None or (owner_id is not None and row.user_id != owner_id) or (
                row.user_id != caller.user_id and not caller.can_manage):
            raise NotFound(_("no API token {id}", id=token_id), code="unknown_token")
        if row.revoked_at is None:
            row.revoked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return _info(row)
