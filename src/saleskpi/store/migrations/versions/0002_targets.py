"""targets (plans per KPI, rep, team or company and period)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("kpi", sa.String(200), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("custom", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    # NULL rep/team (team-wide, company-wide targets) must be equal for the key.
    op.create_index(
        "uq_targets_key", "targets",
        ["source", "kpi", "period_start", "period_end",
         sa.text("coalesce(rep_id, '')"), sa.text("coalesce(team, '')")],
        unique=True,
    )
    op.create_index("ix_targets_period", "targets", ["period_start", "period_end"])


def downgrade() -> None:
    op.drop_index("ix_targets_period", table_name="targets")
    op.drop_index("uq_targets_key", table_name="targets")
    op.drop_table("targets")
