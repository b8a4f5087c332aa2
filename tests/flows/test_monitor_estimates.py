"""The performance monitor estimates the window before its outcomes: returned, kept in
``performance_estimates`` and shown as a table artifact, beside its usual figures."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sqlalchemy import select

from flows.monitor_performance import monitor_performance
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import EstimateRecord
from tests.conftest import ADMIN
from tests.flows.conftest import flush
from tests.flows.test_loop import _artifact


def test_monitor_reports_and_keeps_the_estimates(flow_settings, client, engine, prefect_server):
    r = client.post("/generate", json={"samples": 3000, "seed": 4, "drift": False}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post("/retrain", headers=ADMIN)
    assert r.status_code == 200 and r.json()["model_version"] == "1", r.text

    X, y = get_family("classification").sample(1200, rng=np.random.default_rng(8))
    ids = [f"est-{i}" for i in range(len(X))]
    r = client.post("/predict/batch", json={"features": X.tolist(), "request_ids": ids})
    assert r.status_code == 200, r.text
    predictions = np.asarray(r.json()["predictions"], float)
    flush(client)
    items = [{"request_id": i, "actual": float(a)} for i, a in zip(ids[:600], y[:600], strict=True)]
    assert client.post("/api/actuals", json={"actuals": items}, headers=ADMIN).status_code == 200

    # A crash between a champion change and its alias left MLflow behind: the monitor's run
    # sets the alias from the DB (API replicas, which serve without MLflow, do not).
    settings = client.app.state.runtime.settings
    mc = registry.mlflow_client(settings)
    mc.delete_registered_model_alias(settings.registered_model_name, registry.CHAMPION_ALIAS)

    out = monitor_performance()
    aliases = mc.get_registered_model(settings.registered_model_name).aliases
    assert str(aliases[registry.CHAMPION_ALIAS]) == "1"
    est = out["estimates"]
    assert est["method"] == "cbpe" and est["metric"] == "accuracy"
    assert est["rows"] == 1200 and est["labelled_rows"] == 600 and est["pending_rows"] == 600
    assert est["realised"] == pytest.approx(float(np.mean(predictions[:600] == y[:600])))
    assert est["estimation_error"] <= 0.05
    assert abs(est["estimated"] - float(np.mean(predictions == y))) <= 0.05
    assert "metrics" in out and "crossed" in out  # the flow's own answer is unchanged

    with session_scope(engine) as session:
        (kept,) = session.scalars(select(EstimateRecord)).all()
        assert (kept.family, kept.model_version, kept.method) == ("classification", "1", "cbpe")
        assert (kept.rows, kept.pending_rows, kept.labelled_rows) == (1200, 600, 600)
        assert kept.estimated == pytest.approx(est["versions"][0]["estimated"])
        assert kept.estimation_error == pytest.approx(est["estimation_error"])

    table = asyncio.run(_artifact("ia-continu-estimates"))
    assert table is not None and table.type == "table" and "estimation error" in table.data
