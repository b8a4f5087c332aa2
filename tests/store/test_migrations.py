from __future__ import annotations

from sqlalchemy import inspect

from ia_continu.store import migrate
from ia_continu.store.engine import make_engine

TABLES = {
    "datasets",
    "dataset_samples",
    "prediction_log",
    "model_events",
    "champion_history",
    "rollout_config",
    "drift_reports",
    "synthetic_outcomes",
    "alembic_version",
}


def test_upgrade_creates_the_schema_and_is_idempotent(db_url):
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    migrate.upgrade(engine)  # second run is a no-op
    insp = inspect(engine)
    assert set(insp.get_table_names()) >= TABLES
    indexes = {i["name"] for i in insp.get_indexes("prediction_log")}
    assert {
        "ix_prediction_log_created_actual",
        "ix_prediction_log_request_id",
        "ix_prediction_log_booking_id",
    } <= indexes
    # Covered by the leading column of (created_at, actual): dropped in 0007.
    assert "ix_prediction_log_created_at" not in indexes
    engine.dispose()


def test_models_match_the_migrations(db_url):
    """Autogenerate finds nothing to do: the ORM and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ia_continu.store.engine import Base

    engine = make_engine(db_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_cli_migrate(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "IA_CONTINU_DATA_DIR": str(tmp_path)}
    cli = Path(sys.executable).parent / "ia-continu"
    out = subprocess.run(
        [str(cli), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "schema at head" in out.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'ia_continu.db'}")
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()
