"""Contests: each one's definition and, once closed, its final standings and winners

Revision ID: 0013
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("closed_at", sa.DateTime, nullable=True),
        sa.Column("closed_by", sa.String(200), nullable=True),
        sa.Column("final", sa.JSON, nullable=True),
        sa.Column("winners", sa.JSON, nullable=True),
    )
    op.create_index("ix_contests_closed_at", "contests", ["closed_at"])


def downgrade() -> None:
    op.drop_index("ix_contests_closed_at", "contests")
    op.drop_table("contests")
