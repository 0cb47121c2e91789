"""The write journal: one entry per write that spans both stores (import, sync batch)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "write_journal",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("changes", sa.JSON, nullable=True),
    )
    op.create_index("ix_write_journal_status", "write_journal", ["status"])


def downgrade() -> None:
    op.drop_index("ix_write_journal_status", "write_journal")
    op.drop_table("write_journal")
