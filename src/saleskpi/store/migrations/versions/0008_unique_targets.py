"""targets unique per KPI, period and rep, team or company (whatever their source), and a log
of who changed which target

Duplicates (the same target set by hand and imported, or imported from two sources)
are resolved by keeping the one changed last, which is the one plan vs actual used;
each removed one is written to the log.

Revision ID: 0008
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None

# Who a target is for: a rep (a team beside it is information only), else a team, else
# the company. NULLs are '' so that they compare equal.
WHO: list[str | sa.TextClause] = [
    "kpi", "period_start", "period_end", sa.text("coalesce(rep_id, '')"),
    sa.text("CASE WHEN rep_id IS NULL THEN coalesce(team, '') ELSE '' END")]
RANKED = """SELECT id, row_number() OVER (
    PARTITION BY kpi, period_start, period_end, coalesce(rep_id, ''),
                 CASE WHEN rep_id IS NULL THEN coalesce(team, '') ELSE '' END
    ORDER BY updated_at DESC, id DESC) AS n FROM targets"""


def upgrade() -> None:
    op.create_table(
        "target_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("changed_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("kpi", sa.String(200), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("old_value", sa.Float, nullable=True),
        sa.Column("new_value", sa.Float, nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
    )
    op.create_index("ix_target_changes_at", "target_changes", ["changed_at"])
    op.execute(f"""INSERT INTO target_changes (changed_at, actor, action, kpi, period_start,
        period_end, rep_id, team, old_value, new_value, source)
        SELECT CURRENT_TIMESTAMP, 'migration 0008', 'deduplicated', kpi, period_start,
               period_end, rep_id, team, value, NULL, source
        FROM targets WHERE id IN (SELECT id FROM ({RANKED}) WHERE n > 1)""")
    op.execute(f"DELETE FROM targets WHERE id IN (SELECT id FROM ({RANKED}) WHERE n > 1)")
    op.drop_index("uq_targets_key", table_name="targets")
    op.create_index("uq_targets_who", "targets", WHO, unique=True)


def downgrade() -> None:
    op.drop_index("uq_targets_who", table_name="targets")
    op.create_index(
        "uq_targets_key", "targets",
        ["source", "kpi", "period_start", "period_end",
         sa.text("coalesce(rep_id, '')"), sa.text("coalesce(team, '')")],
        unique=True,
    )
    op.drop_index("ix_target_changes_at", table_name="target_changes")
    op.drop_table("target_changes")
