"""drift of the model's outputs: its predictions and the outcomes, beside the input drift

Each drift check also compares the champion's predictions (on its training data, against the
window's logged answers) and the outcomes (the training labels, against the window's known
actuals). ``drift_reports`` gains, for each of the two, whether it drifted, the test's score
and method, and how many current rows it was judged on. All NULL on existing rows and when a
check had too few rows to judge: "not judged", never "no drift".

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:40:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column[Any]]:
    kinds: list[tuple[str, Any]] = [
        ("drift", sa.Boolean()),
        ("drift_score", sa.Float()),
        ("drift_method", sa.String(length=64)),
        ("rows", sa.Integer()),
    ]
    return [
        sa.Column(f"{of}_{name}", kind, nullable=True)
        for of in ("prediction", "target")
        for name, kind in kinds
    ]


def upgrade() -> None:
    with op.batch_alter_table("drift_reports") as batch:
        for column in _columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("drift_reports") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
