"""The series read from the database at scrape time: lifecycle events counted wherever they
were written, every kind at 0 before it happens, quality of the last 24 h, and the same in
multiprocess mode (several uvicorn workers)."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from api import metrics, metrics_db
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from ia_continu.vocab import ModelEventKind
from tests.conftest import ADMIN, train


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _events(samples, family="classification") -> dict[str, float]:
    return {
        dict(labels)["event"]: value
        for (name, labels), value in samples.items()
        if name == "model_events_total" and dict(labels)["model_type"] == family
    }


def test_lifecycle_counts_events_written_outside_the_api(client, monkeypatch):
    monkeypatch.setattr(metrics_db, "EVENTS_TTL_SECONDS", 0.0)
    runtime = client.app.state.runtime
    metrics_db.bind(runtime.engine, runtime.settings)  # TTLs are read when bound
    events = _events(_samples(client.get("/metrics").text))
    assert events == {kind.value: 0 for kind in ModelEventKind}
    train(client)
    # A retrain skipped by the Prefect flow: written by another process, never by the API.
    with session_scope(runtime.engine) as session:
        registry.record_event(
            session, "classification", ModelEventKind.retrain_skipped, reason="no drift"
        )
    events = _events(_samples(client.get("/metrics").text))
    assert events["retrain"] == 1 and events["promote"] == 1
    assert events["retrain_skipped"] == 1 and events["rollback"] == 0


def test_quality_is_nan_until_an_outcome_is_known_then_the_window_figure(client, monkeypatch):
    monkeypatch.setattr(metrics_db, "QUALITY_TTL_SECONDS", 0.0)
    runtime = client.app.state.runtime
    metrics_db.bind(runtime.engine, runtime.settings)
    train(client)
    key = ("model_quality_24h", (("metric", "accuracy_rate"), ("model_type", "classification")))
    rows = ("model_quality_labeled_rows_24h", (("model_type", "classification"),))
    samples = _samples(client.get("/metrics").text)
    assert math.isnan(samples[key]) and samples[rows] == 0
    r = client.post("/predict", json={"features": [1.0, -1.0], "request_id": "m-1"})
    label = r.json()["prediction"]
    r = client.post(
        "/api/actuals", json={"actuals": [{"request_id": "m-1", "actual": label}]}, headers=ADMIN
    )
    assert r.status_code == 200
    samples = _samples(client.get("/metrics").text)
    assert samples[key] == 1.0 and samples[rows] == 1

    # A classifier's F1 is known; its MAE, RMSE and R² do not exist (NaN), outcome or not.
    def figure(name: str) -> float:
        return samples[("model_quality_24h", (("metric", name), ("model_type", "classification")))]

    assert figure("f1") == 1.0
    assert all(math.isnan(figure(name)) for name in ("mae", "rmse", "r2"))


def test_multiprocess_exposition_reads_the_database_once(client, monkeypatch):
    # The workers' files are read by prometheus_client's MultiProcessCollector (left out
    # here: it needs PROMETHEUS_MULTIPROC_DIR set before any metric exists); the database
    # series are added to the same registry once, not summed per worker.
    monkeypatch.setattr(metrics, "MULTIPROCESS", True)
    monkeypatch.setattr(metrics.multiprocess, "MultiProcessCollector", lambda registry: None)
    runtime = client.app.state.runtime
    metrics_db.bind(runtime.engine, runtime.settings)
    body, _ = metrics.exposition()
    events = _events(_samples(body.decode()))
    assert events == {kind.value: 0 for kind in ModelEventKind}
