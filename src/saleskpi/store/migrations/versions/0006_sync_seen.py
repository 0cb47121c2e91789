"""Full syncs in progress and the ids they have seen (to remove what the CRM no longer lists)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_full_runs",
        sa.Column("crm", sa.String(50), primary_key=True),
        sa.Column("entities", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "sync_seen",
        sa.Column("crm", sa.String(50), primary_key=True),
        sa.Column("entity", sa.String(50), primary_key=True),
        sa.Column("record_id", sa.String(200), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("sync_seen")
    op.drop_table("sync_full_runs")
