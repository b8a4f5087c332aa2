"""Migration 0006 (the drift of the model's outputs) on a database that already holds drift
reports: the rows are kept, their new columns are NULL ("not judged"), and it goes back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from ia_continu.store import migrate
from ia_continu.store.engine import make_engine

NEW = {
    f"{of}_{name}"
    for of in ("prediction", "target")
    for name in ("drift", "drift_score", "drift_method", "rows")
}


def _run(engine, step, revision: str) -> None:
    cfg = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        step(cfg, revision)


def test_an_existing_report_is_kept_and_not_judged(db_url):
    engine = make_engine(db_url)
    _run(engine, command.upgrade, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO drift_reports (family, model_version, dataset_drift, drift_share,"
                " drifted_features, feature_scores, reference_rows, current_rows, created_at)"
                " VALUES ('classification', '1', true, 0.5, '[\"feature1\"]',"
                " '{\"feature1\": 0.01}', 800, 300, '2026-11-23 10:00:00')"
            )
        )
    _run(engine, command.upgrade, "0006")
    columns = {c["name"] for c in inspect(engine).get_columns("drift_reports")}
    assert columns >= NEW
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM drift_reports")).mappings().one()
    assert row["dataset_drift"] and row["current_rows"] == 300
    assert all(row[name] is None for name in NEW)

    _run(engine, command.downgrade, "0005")
    columns = {c["name"] for c in inspect(engine).get_columns("drift_reports")}
    assert not NEW & columns and "feature_scores" in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM drift_reports")).scalar() == 1
    engine.dispose()
