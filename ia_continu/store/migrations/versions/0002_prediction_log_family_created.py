"""prediction_log index on (family, created_at)

Every monitoring query reads "one family since t" (summary, window and daily figures, the
anomalies, the rollout stats): a range of this index instead of a scan of the whole table, and
the total count of a family is read from the index alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prediction_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_log_family_created", ["family", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("prediction_log", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_log_family_created")
