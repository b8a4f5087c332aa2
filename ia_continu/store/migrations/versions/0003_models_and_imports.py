"""storage for any declared model: longer model names, feature schemas, imported datasets

- ``family`` columns (the model's name) widen from 32 to 64 characters: a declared model's
  name is up to 48. On SQLite this rebuilds the tables once (a copy of every row); dropping
  the old ``datasets`` table there (foreign keys on) would delete every ``dataset_samples``
  row through its ON DELETE CASCADE, so those rows are set aside and put back.
- ``feature_schemas``: each distinct ordered list of feature names a model has stored rows
  under. Datasets and prediction rows keep their features as a list of encoded numbers; the
  schema says which feature each position is, so a declaration that gains, drops or reorders
  a feature never misreads older rows (readers realign them by name).
- ``datasets``: where rows came from (``source``: simulator, import, ingest; ``source_name``:
  the file or query) and a ``fingerprint`` (SHA-256 of the content) that lets the ingestion
  flow load each file once, enforced by a unique index per model.
- ``prediction_log.schema_id`` and ``datasets.schema_id``: NULL on existing rows, which were
  all written under the built-in families' original feature order.

Existing rows are kept as they are; every new column is nullable.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FAMILY_TABLES = (
    "datasets",
    "prediction_log",
    "model_events",
    "champion_history",
    "rollout_config",
    "drift_reports",
)


def _widen(length: int) -> None:
    # On SQLite a batch alter rebuilds each table (copying its rows): done once, at upgrade.
    # PRAGMA foreign_keys cannot be turned off inside the migration's transaction, and the
    # rebuild drops ``datasets``: its samples would go with it (cascade). Keep a copy.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMP TABLE kept_dataset_samples AS SELECT * FROM dataset_samples")
    for table in FAMILY_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("family", type_=sa.String(length), existing_nullable=False)
    if sqlite:
        op.execute("DELETE FROM dataset_samples")  # none left, unless foreign keys were off
        op.execute("INSERT INTO dataset_samples SELECT * FROM kept_dataset_samples")
        op.execute("DROP TABLE kept_dataset_samples")


def upgrade() -> None:
    _widen(64)
    op.create_table(
        "feature_schemas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_schemas")),
        sa.UniqueConstraint("family", "fingerprint", name="uq_feature_schemas_family_fingerprint"),
    )
    op.add_column("datasets", sa.Column("source", sa.String(length=16), nullable=True))
    op.add_column("datasets", sa.Column("source_name", sa.Text(), nullable=True))
    op.add_column("datasets", sa.Column("fingerprint", sa.String(length=64), nullable=True))
    op.add_column("datasets", sa.Column("schema_id", sa.Integer(), nullable=True))
    op.create_index(
        "ux_datasets_family_fingerprint", "datasets", ["family", "fingerprint"], unique=True
    )
    op.add_column("prediction_log", sa.Column("schema_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch_op:
        batch_op.drop_column("schema_id")
    op.drop_index("ux_datasets_family_fingerprint", table_name="datasets")
    with op.batch_alter_table("datasets") as batch_op:
        for column in ("schema_id", "fingerprint", "source_name", "source"):
            batch_op.drop_column(column)
    op.drop_table("feature_schemas")
    _widen(32)
