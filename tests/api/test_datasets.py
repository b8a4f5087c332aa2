"""POST/GET /models/{model}/datasets and /datasets through the real app (SQLite and
PostgreSQL): import then train, 422 naming the row with nothing stored, 409, 415, 413."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import Dataset, DatasetSample
from tests.conftest import ADMIN
from tests.learn.test_imports import bike_frame, csv_bytes

CSV = {**ADMIN, "Content-Type": "text/csv"}


def counts(client) -> tuple[int, int]:
    with session_scope(client.app.state.runtime.engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Dataset)),
            s.scalar(select(func.count()).select_from(DatasetSample)),
        )


def test_imported_csv_trains_the_model(client):
    r = client.post(
        "/models/bike_traffic/datasets?name=counts.csv",
        content=csv_bytes(bike_frame(400)),
        headers=CSV,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rows"] == 400 and body["model"] == "bike_traffic"
    assert body["source_name"] == "counts.csv" and "weather" in body["feature_names"]

    listed = client.get("/models/bike_traffic/datasets", headers=ADMIN).json()
    assert [(d["generation_id"], d["source"], d["rows"]) for d in listed] == [
        (body["generation_id"], "import", 400)
    ]

    r = client.post("/models/bike_traffic/retrain", headers=ADMIN)
    assert r.status_code == 200, r.text
    trained = r.json()
    assert trained["generation_id"] == body["generation_id"]
    assert trained["training_samples"] + trained["holdout_samples"] == 400
    r = client.post(
        "/models/bike_traffic/predict",
        json={"features": {"hour": 8, "weekday": 1, "weather": "rain", "counter": "station"}},
    )
    assert r.status_code == 200, r.text


def test_a_body_beyond_a_mib_is_spooled_under_data_dir_and_leaves_nothing(client):
    body = csv_bytes(bike_frame(40_000, seed=5))
    assert len(body) > 1024 * 1024  # past the in-memory spool: written under data_dir
    r = client.post("/models/bike_traffic/datasets", content=body, headers=CSV)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 40_000
    uploads = client.app.state.runtime.settings.data_dir / "uploads"
    assert uploads.is_dir() and list(uploads.iterdir()) == []


def test_a_bad_cell_is_a_422_naming_row_and_column_and_nothing_is_stored(client):
    frame = bike_frame(10).astype({"weather": object})
    frame.loc[2, "weather"] = "hail"
    before = counts(client)
    r = client.post("/models/bike_traffic/datasets", content=csv_bytes(frame), headers=CSV)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("row 3: weather: 'hail' is not one of")
    assert counts(client) == before


def test_parquet_and_json_lines_by_content_type(client):
    frame = bike_frame(50, seed=4).drop(columns=["comment"])
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    for media, body in (
        ("application/vnd.apache.parquet", parquet.getvalue()),
        ("application/x-ndjson; charset=utf-8", frame.to_json(orient="records", lines=True)),
    ):
        r = client.post(
            "/models/bike_traffic/datasets",
            content=body,
            headers={**ADMIN, "Content-Type": media},
        )
        assert r.status_code == 201, r.text
        assert r.json()["rows"] == 50


def test_duplicate_is_409_unless_allowed(client):
    body = csv_bytes(bike_frame(20))
    first = client.post("/models/bike_traffic/datasets", content=body, headers=CSV).json()
    r = client.post("/models/bike_traffic/datasets", content=body, headers=CSV)
    assert r.status_code == 409
    assert f"as dataset {first['generation_id']} " in r.json()["detail"]
    r = client.post("/models/bike_traffic/datasets?allow_duplicate=true", content=body, headers=CSV)
    assert r.status_code == 201, r.text


def test_default_model_path_and_unsupported_media_type(client):
    # The default model of the test settings is the classification family (target "target").
    r = client.post(
        "/datasets", content=b"feature1,feature2,target\n0.5,1.5,1\n-1,2,0\n", headers=CSV
    )
    assert r.status_code == 201, r.text
    assert r.json()["model"] == "classification"

    r = client.post(
        "/models/bike_traffic/datasets",
        content=b"a,b\n",
        headers={**ADMIN, "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    assert "text/csv" in r.json()["detail"] and "application/x-ndjson" in r.json()["detail"]


def test_admin_key_is_checked_before_the_body(client):
    r = client.post("/models/bike_traffic/datasets", content=b"x", headers={"X-API-Key": "no"})
    assert r.status_code in (401, 403)
    r = client.post("/models/nope/datasets", content=b"x", headers=CSV)
    assert r.status_code in (404, 422)


@pytest.fixture
def small_limits(make_client):
    return make_client(max_body_bytes=2048, max_dataset_bytes=4096)


def test_dataset_uploads_have_their_own_limit(small_limits):
    client = small_limits
    body = csv_bytes(bike_frame(150))  # ~4.7 kB: above both limits
    assert len(body) > 4096
    small = csv_bytes(bike_frame(80))  # above the body limit, within the dataset limit
    assert 2048 < len(small) <= 4096

    r = client.post("/models/bike_traffic/datasets", content=small, headers=CSV)
    assert r.status_code == 201, r.text
    r = client.post("/models/bike_traffic/datasets", content=body, headers=CSV)
    assert r.status_code == 413
    assert "IA_CONTINU_MAX_DATASET_BYTES" in r.json()["detail"]

    # Without a Content-Length (chunked), the streamed bytes are counted.
    r = client.post("/models/bike_traffic/datasets", content=iter([body]), headers=CSV)
    assert r.status_code == 413
    # Every other route keeps the small limit.
    r = client.post("/models/bike_traffic/predict/batch", content=small, headers=CSV)
    assert r.status_code == 413
    assert "IA_CONTINU_MAX_BODY_BYTES" in r.json()["detail"]
