"""drop prediction_log's index on created_at alone

``ix_prediction_log_created_actual`` (created_at, actual) starts with the same column, so
every range on created_at it served is served as well by that one; keeping both only made
each logged prediction update one more B-tree (the writer's largest cost after the insert
itself: bench/log_indexes.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 17:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_prediction_log_created_at", table_name="prediction_log")


def downgrade() -> None:
    op.create_index("ix_prediction_log_created_at", "prediction_log", ["created_at"])
