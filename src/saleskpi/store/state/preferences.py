"""What a user chose on the dashboard and wants kept: one JSON value per name.

The language stays on the user (``users.lang``, which every surface reads); the
rest (the KPIs of the overview and the comparison, the comparison's threshold)
is here, so a new preference needs no migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base
from saleskpi.store.state.users import User


class UserPreference(Base):
    __tablename__ = "user_preferences"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


def load_preferences(state_url: str, user_id: int) -> dict[str, Any]:
    with Session(engine_for(state_url)) as session:
        rows = session.scalars(select(UserPreference).where(UserPreference.user_id == user_id))
        return {row.name: row.value for row in rows}


def save_preference(state_url: str, user_id: int, name: str, value: Any) -> None:
    """Keep ``value`` under ``name`` for the user; None forgets it."""
    with Session(engine_for(state_url)) as session, session.begin():
        row = session.get(UserPreference, (user_id, name))
        if value is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(UserPreference(user_id=user_id, name=name, value=value))
        else:
            row.value = value


def save_language(state_url: str, user_id: int, lang: str) -> None:
    with Session(engine_for(state_url)) as session, session.begin():
        session.execute(update(User).where(User.id == user_id).values(lang=lang))
