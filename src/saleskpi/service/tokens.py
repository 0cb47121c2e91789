"""A user's API tokens as they may see them: names and dates, never the secret."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from saleskpi.domain.settings import Settings
from saleskpi.store.state import engine_for
from saleskpi.store.state.users import ApiToken


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: dt.datetime  # UTC


def list_tokens(settings: Settings, user_id: int) -> list[TokenInfo]:
    """``user_id``'s tokens, oldest first (only their hashes are stored)."""
    with Session(engine_for(settings.state_url)) as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                               .order_by(ApiToken.id))
        return [TokenInfo(r.id, r.name, r.created_at.replace(tzinfo=dt.UTC)) for r in rows]
