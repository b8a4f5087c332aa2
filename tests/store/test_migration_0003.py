"""Migration 0003 (feature schemas, dataset sources, schema_id columns) on a database that
already holds rows: every row is kept, the new columns are NULL on them."""

from __future__ import annotations

import json
from datetime import datetime

from alembic import command
from sqlalchemy import func, inspect, select, text

from ia_continu.store import migrate
from ia_continu.store.engine import make_engine


def _at_revision(engine, revision: str) -> None:
    cfg = migrate.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def test_a_database_at_0002_with_rows_upgrades_keeping_every_row(db_url):
    engine = make_engine(db_url)
    _at_revision(engine, "0002")
    at = datetime(2026, 1, 1, 12, 0, 0)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (generation_id, family, samples_count, drift, seed,"
                " hour_generated, created_at) VALUES (1, 'delay', 2, false, 3, 12, :at)"
            ),
            {"at": at},
        )
        conn.execute(
            text(
                "INSERT INTO dataset_samples (generation_id, features, target)"
                " VALUES (1, :a, 1.0), (1, :b, 0.0)"
            ),
            {"a": json.dumps([1.0, 2.0]), "b": json.dumps([3.0, 4.0])},
        )
        for i in range(3):
            conn.execute(
                text(
                    "INSERT INTO prediction_log (request_id, family, features, prediction,"
                    " confidence, model_version, latency_ms, decision, served_by, actual,"
                    " created_at, updated_at) VALUES (:rid, 'classification', :f, 1.0, 0.9,"
                    " '1', 0.1, 'ml', 'ml', :actual, :at, :at)"
                ),
                {"rid": f"r{i}", "f": json.dumps([float(i), 0.5]), "actual": 1.0, "at": at},
            )
        conn.execute(
            text(
                "INSERT INTO champion_history (family, action, version, reason, created_at)"
                " VALUES ('classification', 'promote', '1', 'first', :at)"
            ),
            {"at": at},
        )

    migrate.upgrade(engine)

    with engine.connect() as conn:
        # Upgraded to the newest revision, 0003 and whatever came after it.
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == _head()
        counts = {
            table: conn.scalar(select(func.count()).select_from(text(table)))
            for table in ("datasets", "dataset_samples", "prediction_log", "champion_history")
        }
        samples = conn.execute(
            text("SELECT generation_id, features, target FROM dataset_samples ORDER BY id")
        ).all()
        logged = conn.execute(
            text("SELECT request_id, features, actual, schema_id FROM prediction_log ORDER BY id")
        ).all()
        dataset = conn.execute(text("SELECT family, seed, source, schema_id FROM datasets")).one()
    assert counts == {
        "datasets": 1,
        "dataset_samples": 2,
        "prediction_log": 3,
        "champion_history": 1,
    }
    assert [(g, _json(f), t) for g, f, t in samples] == [(1, [1.0, 2.0], 1.0), (1, [3.0, 4.0], 0.0)]
    assert [(r, _json(f), a, s) for r, f, a, s in logged] == [
        (f"r{i}", [float(i), 0.5], 1.0, None) for i in range(3)
    ]
    assert tuple(dataset) == ("delay", 3, None, None)
    assert "feature_schemas" in inspect(engine).get_table_names()
    engine.dispose()


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert head is not None and head >= "0003"
    return head
