"""A declared model keeps working when its declaration changes: rows logged and datasets drawn
under the old feature list are read back by name, the version trained on it still serves
(also after a rollback), and a feature the old rows cannot provide is said, not misread.

Each test trains under one declaration, stops the API, rewrites the file (as an operator
would) and starts the API again on the same database and registry.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from ia_continu.catalog import model_settings, reload_catalog
from ia_continu.declared.family import DeclaredFamily
from ia_continu.declared.load import load_declarations
from ia_continu.learn.datasets import load_dataset
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import Dataset, FeatureSchema, PredictionLog
from ia_continu.watch.drift import RecentInputs, run_drift_check
from tests.conftest import ADMIN

MODEL = "bikes_t"
HEAD = f"""
name = "{MODEL}"
task = "regression"
tolerance = 20.0

[target]
name = "count"
min = 0
max = 100000

[estimator]
class = "sklearn.linear_model.Ridge"

[gate]
metric = "rmse"

[fallback]
strategy = "mean"

[simulator]
name = "bike_traffic"
"""
FEATURES = {
    "hour": 'type = "integer"\nmin = 0\nmax = 23',
    "weekday": 'type = "integer"\nmin = 0\nmax = 6',
    "weather": 'type = "category"\nvalues = ["clear", "cloudy", "rain", "snow"]',
    "holiday": 'type = "boolean"\noptional = true\ndefault = false',
    "holiday!": 'type = "boolean"',  # the same feature, required
    "counter": (
        'type = "category"\nvalues = ["north_bridge", "river_path", "station", "university", '
        '"park"]'
    ),
}
V1 = ("hour", "weekday", "weather", "counter")
ROWS = [
    {"hour": h, "weekday": d, "weather": w, "counter": c}
    for h, d, w, c in [
        (8, 1, "rain", "station"),
        (17, 4, "clear", "university"),
        (23, 6, "snow", "park"),
        (0, 0, "cloudy", "north_bridge"),
        (12, 2, "clear", "river_path"),
        (7, 5, "rain", "park"),
    ]
]


@pytest.fixture(autouse=True)
def _fresh_catalog() -> Iterator[None]:
    reload_catalog()
    yield
    reload_catalog()


def declare(folder: Path, features: tuple[str, ...], **changed: str) -> DeclaredFamily:
    """Write the model's declaration with these features (a trailing "!": required), some
    declared otherwise (``changed``: name -> TOML lines)."""
    folder.mkdir(exist_ok=True)
    spec = FEATURES | changed
    body = "".join(
        f'\n[[features]]\nname = "{name.rstrip("!")}"\n{spec[name]}\n' for name in features
    )
    (folder / f"{MODEL}.toml").write_text(textwrap.dedent(HEAD + body), encoding="utf-8")
    reload_catalog()
    return DeclaredFamily(load_declarations(folder)[MODEL])


@contextmanager
def api(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, path: str, body: dict | None = None, status: int = 200) -> dict:
    r = client.post(f"/models/{MODEL}{path}", json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    return r.json()


def predict_all(client: TestClient, rows: list[dict] = ROWS) -> list[tuple[float, str]]:
    out = []
    for row in rows:
        answer = post(client, "/predict", {"features": row})
        out.append((answer["prediction"], answer["model_version"]))
    return out


def train_v1(settings, folder: Path) -> tuple[int, np.ndarray, list[tuple[float, str]]]:
    """Declare V1, draw 300 rows (no drift), train version 1, answer ROWS; the API stops."""
    v1 = declare(folder, V1)
    with api(settings) as client:
        gid = post(client, "/generate", {"samples": 300, "seed": 1, "drift": False})
        assert post(client, "/retrain", {"force": True})["model_version"] == "1"
        served = predict_all(client)
    assert {version for _, version in served} == {"1"}
    # What /generate stored: the simulator's rows, encoded in V1's order.
    X1, _ = v1.sample(300, rng=np.random.default_rng(1), drift=0.0)
    return gid["generation_id"], X1.round(6), served


def logged(client: TestClient, engine, family: DeclaredFamily) -> np.ndarray:
    """The recent prediction inputs as the drift check reads them, oldest first."""
    assert client.app.state.runtime.writer.flush()  # type: ignore[attr-defined]
    return RecentInputs(min_rows=1).rows(engine, family, None).X[::-1]


def test_a_new_optional_feature(settings_factory, engine, tmp_path):
    folder = tmp_path / "models"
    settings = settings_factory(models_dir=folder)
    gid, X1, before = train_v1(settings, folder)
    v2 = declare(folder, ("hour", "weekday", "weather", "holiday", "counter"))

    with api(settings) as client:
        listed = client.get(f"/models/{MODEL}").json()
        assert listed["served_version"] == "1"
        (version,) = listed["versions"]
        assert re.fullmatch(r"[0-9a-f]{64}", version["declaration_sha256"])
        # Version 1 was fitted on V1: it reads hour, weekday, weather, counter by name.
        assert predict_all(client) == before

        # The logged rows, old and new, read in V2's order; the old ones take holiday's
        # default (false, 0.0).
        expected = v2.encode_rows(ROWS)
        assert expected[:, 3].tolist() == [0.0] * len(ROWS)
        np.testing.assert_array_equal(logged(client, engine, v2), np.vstack([expected] * 2))
        with session_scope(engine) as session:
            stored = session.execute(
                select(FeatureSchema.names)
                .join(PredictionLog, PredictionLog.schema_id == FeatureSchema.id)
                .where(PredictionLog.family == MODEL)
                .order_by(PredictionLog.id)
            ).scalars()
            assert [tuple(names) for names in stored] == [V1] * len(ROWS) + [
                v2.feature_names
            ] * len(ROWS)
            source = session.execute(
                select(Dataset.source, FeatureSchema.names).join(
                    FeatureSchema, Dataset.schema_id == FeatureSchema.id
                )
            ).one()
            assert (source[0], tuple(source[1])) == ("simulator", V1)

        # The old dataset trains the new declaration: the same rows, holiday false.
        with session_scope(engine) as session:
            data = load_dataset(session, v2, gid)
        np.testing.assert_array_equal(data.X, np.insert(X1, 3, 0.0, axis=1))
        retrained = post(client, "/retrain", {"generation_id": gid, "force": True})
        assert retrained["model_version"] == "2" and retrained["generation_id"] == gid
        assert retrained["training_samples"] + retrained["holdout_samples"] == 300
        versions = client.get(f"/models/{MODEL}").json()["versions"]
        assert versions[0]["declaration_sha256"] != versions[1]["declaration_sha256"]

        # Back to version 1, trained under the old declaration: it answers as it did.
        assert post(client, "/rollback")["served_version"] == "1"
        assert predict_all(client) == before

    drift = run_drift_check(
        model_settings(settings, MODEL), engine, RecentInputs(min_rows=len(ROWS))
    )
    assert drift.status == "checked", drift.reason
    assert (drift.reference_rows, drift.current_rows) == (300, 3 * len(ROWS))
    assert set(drift.feature_scores) == set(v2.feature_names)


def test_two_features_swapped(settings_factory, engine, tmp_path):
    folder = tmp_path / "models"
    settings = settings_factory(models_dir=folder)
    gid, X1, before = train_v1(settings, folder)
    v3 = declare(folder, ("weekday", "hour", "weather", "counter"))

    with api(settings) as client:
        assert predict_all(client) == before  # version 1 picks its columns by name
        np.testing.assert_array_equal(
            logged(client, engine, v3), np.vstack([v3.encode_rows(ROWS)] * 2)
        )
        with session_scope(engine) as session:
            data = load_dataset(session, v3, gid)
        np.testing.assert_array_equal(data.X, X1[:, [1, 0, 2, 3]])
        assert post(client, "/retrain", {"generation_id": gid, "force": True})["model_version"]
        # Fitted on the same rows in another order: a linear model answers (nearly) the same.
        again = predict_all(client)
        assert {v for _, v in again} == {"2"}
        np.testing.assert_allclose([p for p, _ in again], [p for p, _ in before], atol=1e-6)


def test_a_new_required_feature_or_a_lost_one_is_said_not_misread(
    settings_factory, engine, tmp_path
):
    folder = tmp_path / "models"
    settings = settings_factory(models_dir=folder)
    gid, _, before = train_v1(settings, folder)
    v4 = declare(folder, ("hour", "weekday", "weather", "holiday!", "counter"))

    with api(settings) as client:
        # The rows of V1 have no holiday, which V4 requires: unusable, and said so.
        answer = post(client, "/retrain", {"generation_id": gid, "force": True}, status=422)
        assert "holiday" in answer["detail"] and str(gid) in answer["detail"]
        assert len(logged(client, engine, v4)) == 0  # the old rows are left out
        # Version 1 needs no holiday: it still serves, given today's required inputs.
        rows = [{**row, "holiday": False} for row in ROWS]
        assert predict_all(client, rows) == before
        assert len(logged(client, engine, v4)) == len(ROWS)
        # New data drawn under V4 trains it.
        post(client, "/generate", {"samples": 300, "seed": 2, "drift": False})
        assert post(client, "/retrain", {"force": True})["model_version"] == "2"
        assert post(client, "/rollback")["served_version"] == "1"

    # A declaration without "weather": version 1 cannot be served any more. It is not fed
    # a shifted matrix: the holder keeps the fallback and says why.
    declare(folder, ("hour", "weekday", "counter"))
    with api(settings) as client:
        listed = client.get(f"/models/{MODEL}").json()
        assert listed["champion_version"] == "1" and listed["served_version"] is None
        assert "VersionNeedsFeature" in _load_error(client)
        assert "['weather']" in _load_error(client)
        answer = post(
            client, "/predict", {"features": {"hour": 8, "weekday": 1, "counter": "park"}}
        )
        assert answer["served_by"] == "fallback"


def test_category_values_reordered_keep_the_old_version_off_added_ones_do_not(
    settings_factory, tmp_path
):
    folder = tmp_path / "models"
    settings = settings_factory(models_dir=folder)
    _, _, before = train_v1(settings, folder)
    # "rain" is code 2 for version 1: moved first, it would be read as "clear".
    declare(folder, V1, weather='type = "category"\nvalues = ["rain", "clear", "cloudy", "snow"]')
    with api(settings) as client:
        assert client.get(f"/models/{MODEL}").json()["served_version"] is None
        assert "['weather']" in _load_error(client) and "misread" in _load_error(client)
        answer = post(client, "/predict", {"features": ROWS[0]})
        assert answer["served_by"] == "fallback"
    # A value added at the end leaves every old code as it was: version 1 serves.
    declare(
        folder, V1, weather='type = "category"\nvalues = ["clear", "cloudy", "rain", "snow", "fog"]'
    )
    with api(settings) as client:
        assert predict_all(client) == before


def _load_error(client: TestClient) -> str:
    service = client.app.state.runtime.model(MODEL)  # type: ignore[attr-defined]
    return service.holder.load_error or ""
