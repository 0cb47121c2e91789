"""The forecasts saleskpi made: one row per rep, team or company, period and day made

Revision ID: 0009
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecast_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("made_at", sa.DateTime, nullable=False),
        sa.Column("made_on", sa.Date, nullable=False),
        sa.Column("grain", sa.String(20), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("rep", sa.String(200), nullable=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("won_to_date", sa.Float, nullable=False),
        sa.Column("p10", sa.Float, nullable=False),
        sa.Column("p50", sa.Float, nullable=False),
        sa.Column("p90", sa.Float, nullable=False),
        sa.Column("mean", sa.Float, nullable=False),
        sa.Column("currency", sa.String(10), nullable=False),
    )
    op.create_index(
        "uq_forecast_log_key", "forecast_log",
        ["made_on", "period_start", "period_end", "level", sa.text("coalesce(rep, '')"),
         sa.text("coalesce(team, '')")], unique=True)
    op.create_index("ix_forecast_log_period", "forecast_log", ["period_start", "period_end"])


def downgrade() -> None:
    op.drop_index("ix_forecast_log_period", "forecast_log")
    op.drop_index("uq_forecast_log_key", "forecast_log")
    op.drop_table("forecast_log")
