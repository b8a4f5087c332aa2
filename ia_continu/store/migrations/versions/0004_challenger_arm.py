"""the challenger arm: a version judged live against the champion

- ``challenger_arms``: one row per live comparison (shadow or canary), its step, share and
  last verdict; at most one ``active`` arm per model (a partial unique index, which SQLite
  and PostgreSQL both support). Ended arms stay, with how they ended.
- ``prediction_log.arm``, ``challenger_version``, ``challenger_prediction``: which arm an
  ML-routed row was assigned to, the challenger's version, and the challenger's answer on the
  champion's rows it scored in shadow. NULL on existing rows (no challenger was live).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "challenger_arms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("champion_version", sa.String(length=50), nullable=True),
        sa.Column("policy", sa.String(length=24), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("percentage", sa.Float(), nullable=False),
        sa.Column("shadow_rate", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("last_verdict", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenger_arms")),
    )
    op.create_index("ix_challenger_arms_family_id", "challenger_arms", ["family", "id"])
    op.create_index(
        "ux_challenger_arms_active",
        "challenger_arms",
        ["family"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.add_column("prediction_log", sa.Column("arm", sa.String(length=16), nullable=True))
    op.add_column(
        "prediction_log", sa.Column("challenger_version", sa.String(length=50), nullable=True)
    )
    op.add_column("prediction_log", sa.Column("challenger_prediction", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch_op:
        for column in ("challenger_prediction", "challenger_version", "arm"):
            batch_op.drop_column(column)
    op.drop_index("ux_challenger_arms_active", table_name="challenger_arms")
    op.drop_index("ix_challenger_arms_family_id", table_name="challenger_arms")
    op.drop_table("challenger_arms")
