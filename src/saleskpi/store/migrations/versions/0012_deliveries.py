"""Where each user receives notices (contacts), and the log of every delivery

A delivery is one notice (its key) to one recipient on one channel: unique, so a
notice already sent on a channel is never sent there again.

Revision ID: 0012
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("telegram_chat_id", sa.String(64), nullable=True),
        # The channels chosen; empty: every channel the user has an address for.
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("notice_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime, nullable=True),
    )
    op.create_index("uq_deliveries_once", "deliveries", ["notice_key", "recipient", "channel"],
                    unique=True)
    op.create_index("ix_deliveries_updated", "deliveries", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_updated", "deliveries")
    op.drop_index("uq_deliveries_once", "deliveries")
    op.drop_table("deliveries")
    op.drop_table("contacts")
