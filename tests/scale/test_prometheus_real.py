"""A real Prometheus (Debian's) scrapes a live API every second, and every PromQL query of the
provisioned Grafana dashboard returns data.

Before anything has happened, every panel but the latency percentiles shows 0 rather than "No
data". The model's life is then driven both through the API and the way the Prefect worker
does it (the domain's retrain called in another process, never through the API): the
lifecycle series, read from the audit table at scrape time, count both; ``training_total``, a
counter of the API process, only sees the first.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import httpx
import pytest

from ia_continu.learn.training import retrain
from ia_continu.store.engine import make_engine
from tests.conftest import ADMIN
from tests.live import settings_env, start_api
from tests.scale import infra
from tests.test_compose import metric_names

pytestmark = pytest.mark.slow

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring/grafana/dashboards/ia-continu.json"
# Grafana's own variables, as Grafana would fill them for a short time range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel, rows' nested panels included."""

    def walk(panels: list[dict]) -> list[dict]:
        return [q for p in panels for q in (p, *walk(p.get("panels", [])))]

    out = []
    for panel in walk(json.loads(DASHBOARD.read_text())["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
            out.append((panel["title"], expr))
    return out


def _query(prom: str, expr: str) -> list[dict]:
    r = httpx.get(prom + "/api/v1/query", params={"query": expr}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def _value(prom: str, expr: str) -> float | None:
    result = _query(prom, expr)
    return float(result[0]["value"][1]) if result else None


def _wait_value(prom: str, expr: str, ok, timeout: float = 30) -> float | None:
    deadline = time.monotonic() + timeout
    while (value := _value(prom, expr)) is None or not ok(value):
        if time.monotonic() > deadline:
            return value
        time.sleep(0.5)
    return value


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_dashboard_query_answers_from_a_real_prometheus(settings_factory, tmp_path):
    if reason := infra.missing("prometheus"):
        pytest.skip(reason)
    settings = settings_factory()
    api = start_api(settings_env(settings), tmp_path)
    prometheus = None
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=api.url, timeout=30) as c:
            i = 0
            while not stop.is_set():
                body = {"features": [0.3, -0.2], "request_id": f"bg-{i}"}
                assert c.post("/predict", json=body).status_code == 200
                i += 1
                time.sleep(0.02)

    http = httpx.Client(base_url=api.url, timeout=120)
    feeder = threading.Thread(target=traffic, daemon=True)
    try:
        prometheus = infra.start_prometheus(tmp_path, api.url)
        prom = prometheus.url
        # Before anything happened (no model, no prediction): the panels show 0, not "No
        # data", except the latency quantiles (a percentile of nothing is not 0).
        scrapes = _wait_value(prom, "max(count_over_time(up[1m]))", lambda v: v >= 3)
        assert scrapes is not None and scrapes >= 3, scrapes
        empty = [t for t, e in dashboard_queries() if not _query(prom, e)]
        print(f"\nbefore any traffic, panels without data: {sorted(set(empty))}")
        assert set(empty) <= {t for t, _ in dashboard_queries() if "latency" in t.lower()}, empty
        feeder.start()

        # Through the API: two datasets, two retrains, a rollback.
        for seed in (1, 2):
            r = http.post("/generate", json={"samples": 800, "seed": seed}, headers=ADMIN)
            assert r.status_code == 200, r.text
            assert http.post("/retrain", json={"force": True}, headers=ADMIN).status_code == 200
        assert http.post("/models/rollback", headers=ADMIN).status_code == 200
        # As the Prefect worker does: the domain's retrain in another process (this one).
        engine = make_engine(settings.database_url)
        try:
            retrain(settings, engine, force=True, reason="retrain flow")
        finally:
            engine.dispose()
        # Predictions with outcomes, a rollout change, a 404.
        ids = [f"q-{i}" for i in range(200)]
        rows = [[(i % 7) / 3 - 1, (i % 5) / 2 - 1] for i in range(200)]
        r = http.post("/predict/batch", json={"features": rows, "request_ids": ids})
        assert r.status_code == 200, r.text
        actuals = [
            {"request_id": rid, "actual": int(2 * x1 - 1.5 * x2 + 0.25 > 0)}
            for rid, (x1, x2) in zip(ids, rows, strict=True)
        ]
        r = http.post("/api/actuals", json={"actuals": actuals}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["updated"] == 200, r.text
        r = http.post("/api/feature-flags/ml/percentage", json={"percentage": 50}, headers=ADMIN)
        assert r.status_code == 200
        assert http.get("/no-such-route").status_code == 404

        # The lifecycle counts what the API did and what the worker did: 3 retrains, of
        # which the API's own counter saw 2.
        retrains = 'max(model_events_total{event="retrain"})'
        assert _wait_value(prom, retrains, lambda v: v == 3) == 3
        assert _value(prom, "sum(training_total)") == 2
        assert _value(prom, 'max(model_events_total{event="rollback"})') == 1
        assert _value(prom, 'max(model_events_total{event="failed"})') == 0  # 0, not absent
        # Quality of the last 24 h, once the outcomes are in (the series is cached briefly).
        accuracy = _wait_value(
            prom, 'max(model_quality_24h{metric="accuracy_rate"})', lambda v: not math.isnan(v)
        )
        assert accuracy is not None and 0.5 <= accuracy <= 1, accuracy
        assert _value(prom, "max(model_quality_labeled_rows_24h)") == 200
        time.sleep(3)  # enough scrapes for every rate() over 1m

        queries = dashboard_queries()
        empty = [(title, expr) for title, expr in queries if not _query(prom, expr)]
        print(f"\n{len(queries) - len(empty)} of {len(queries)} dashboard queries answer")
        assert not empty, empty
        # Every metric a query reads exists in Prometheus: a misspelt name would otherwise
        # still answer, through "or vector(0)".
        names = {s["metric"]["__name__"] for s in _query(prom, 'count by (__name__) ({job!=""})')}
        unknown = {n: e for _t, e in queries for n in metric_names(e) if n not in names}
        assert not unknown, unknown
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join(30)
        http.close()
        if prometheus is not None:
            prometheus.stop()
        api.stop()
