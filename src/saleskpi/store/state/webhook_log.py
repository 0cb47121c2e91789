"""Webhook deliveries already seen: a replayed delivery is refused."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.domain.settings import Settings
from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    crm: Mapped[str] = mapped_column(String(50))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)


def remember_delivery(settings: Settings, crm: str, digest: str) -> bool:
    """True the first time a delivery is seen, False for a replay."""
    try:
        with Session(engine_for(settings.state_url)) as session, session.begin():
            session.add(WebhookDelivery(digest=digest, crm=crm,
                                        received_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    except IntegrityError:
        return False
    return True
