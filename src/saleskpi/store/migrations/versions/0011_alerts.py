"""Alerts: each alert's state, the audit log of state changes, silences, when each rule
last ran, the evaluation lease; and every CRM sync's outcome (for "the sync fails")

Revision ID: 0011
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(300), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("since", sa.DateTime, nullable=False),
        sa.Column("fired_at", sa.DateTime, nullable=True),
        sa.Column("resolved_at", sa.DateTime, nullable=True),
        sa.Column("notified_at", sa.DateTime, nullable=True),
        sa.Column("notices", sa.Integer, nullable=False),
        sa.Column("resolved_notified", sa.Boolean, nullable=False),
        sa.Column("finding", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_alert_states_status", "alert_states", ["status"])
    op.create_table(
        "alert_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("trigger", sa.String(50), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("before", sa.String(10), nullable=True),
        sa.Column("after", sa.String(10), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_alert_log_at", "alert_log", ["at"])
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("rep", sa.String(200), nullable=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("starts_at", sa.DateTime, nullable=False),
        sa.Column("ends_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("removed_at", sa.DateTime, nullable=True),
        sa.Column("removed_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_alert_silences_ends", "alert_silences", ["ends_at"])
    op.create_table(
        "alert_rule_runs",
        sa.Column("rule", sa.String(64), primary_key=True),
        sa.Column("last_run_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "alert_leases",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("until", sa.DateTime, nullable=False),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("crm", sa.String(50), nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("batches", sa.Integer, nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
    )
    op.create_index("ix_sync_runs_crm_at", "sync_runs", ["crm", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_sync_runs_crm_at", "sync_runs")
    op.drop_table("sync_runs")
    op.drop_table("alert_leases")
    op.drop_table("alert_rule_runs")
    op.drop_index("ix_alert_silences_ends", "alert_silences")
    op.drop_table("alert_silences")
    op.drop_index("ix_alert_log_at", "alert_log")
    op.drop_table("alert_log")
    op.drop_index("ix_alert_states_status", "alert_states")
    op.drop_table("alert_states")
