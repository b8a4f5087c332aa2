"""serving forms: each version as an API process serves it, without MLflow or scikit-learn

- ``serving_forms``: one row per (model, version): the arrays the family's numpy scorer
  uses (an ``.npz``, read with ``allow_pickle=False``) and a little JSON. Versions registered
  before this migration have none: the API loads them from MLflow once and writes their form
  then. See ``ia_continu.serve.forms``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("arrays", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_forms")),
        sa.UniqueConstraint("family", "version", name="uq_serving_forms_family_version"),
    )


def downgrade() -> None:
    op.drop_table("serving_forms")
