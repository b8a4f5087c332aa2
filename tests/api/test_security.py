"""Every state-changing route refuses a missing (401) or wrong (403) key; limits answer 429."""

from __future__ import annotations

import re

import pytest

from api.main import create_app
from tests.conftest import ADMIN

# Read-only POST routes: scoring is public by design (seed 002: keys guard state changes).
PUBLIC_POSTS = {"/predict", "/predict/batch"}


def _state_changing_routes() -> list[tuple[str, str]]:
    # The OpenAPI document lists every included route (FastAPI includes routers lazily, so
    # app.routes does not); the lifespan does not run here.
    paths = create_app().openapi()["paths"]
    found = []
    for path, operations in paths.items():
        for method in sorted(m.upper() for m in operations):
            if method in {"POST", "PUT", "PATCH", "DELETE"} and path not in PUBLIC_POSTS:
                found.append((method, re.sub(r"\{[^}]+\}", "1", path)))
    return found


ROUTES = _state_changing_routes()


def test_the_rollout_actuals_and_model_routes_are_all_covered():
    paths = {p for _, p in ROUTES}
    assert {
        "/api/feature-flags/ml/enable",
        "/api/feature-flags/ml/disable",
        "/api/feature-flags/ml/percentage",
        "/api/feature-flags/reset-stats",
        "/api/feature-flags/ml/config",
        "/api/actuals",
        "/generate",
        "/retrain",
    } <= paths


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_state_changing_route_needs_the_key(client, method, path):
    missing = client.request(method, path, json={})
    assert missing.status_code == 401, missing.text
    assert missing.json()["detail"] == "missing X-API-Key header"
    wrong = client.request(method, path, json={}, headers={"X-API-Key": "wrong-key"})
    assert wrong.status_code == 403, wrong.text


def test_predict_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client(rate_limit_predict="5/minute")
    codes = [client.post("/predict", json={"features": [0.1, 0.2]}).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    r = client.post("/predict", json={"features": [0.1, 0.2]})
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "rate limit exceeded" in r.json()["detail"]


def test_retrain_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client(rate_limit_retrain="2/hour")
    # No dataset yet: 409, but each call still counts against the limit.
    codes = [client.post("/retrain", headers=ADMIN).status_code for _ in range(3)]
    assert codes == [409, 409, 429]
    r = client.post("/retrain", headers=ADMIN)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
