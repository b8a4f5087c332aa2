"""performance estimates: each version's estimator, and each window's estimate

- ``performance_estimators``: one row per (model, version), fitted on the version's holdout
  at training: CBPE's isotonic map as JSON, or DLE's error model as skops bytes (no pickle).
  Versions trained before this migration have none: their estimates say "unavailable".
- ``performance_estimates``: what the performance monitor estimated for each window and
  version, with the realised metric and the estimation error once outcomes are known.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 16:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "performance_estimators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("holdout", sa.JSON(), nullable=True),
        sa.Column("model", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_estimators")),
        sa.UniqueConstraint("family", "version", name="uq_performance_estimators_family_version"),
    )
    op.create_table(
        "performance_estimates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=False), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("pending_rows", sa.Integer(), nullable=False),
        sa.Column("labelled_rows", sa.Integer(), nullable=False),
        sa.Column("estimated", sa.Float(), nullable=True),
        sa.Column("estimated_pending", sa.Float(), nullable=True),
        sa.Column("realised", sa.Float(), nullable=True),
        sa.Column("estimation_error", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_estimates")),
    )
    op.create_index(
        "ix_performance_estimates_family_created",
        "performance_estimates",
        ["family", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_performance_estimates_family_created", table_name="performance_estimates")
    op.drop_table("performance_estimates")
    op.drop_table("performance_estimators")
