"""Every state-changing route refuses a missing (401) or wrong (403) key; limits answer 429."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ServingFormRecord
from tests.conftest import ADMIN

# Read-only POST routes: scoring is public by design (keys guard state changes).
PUBLIC_POSTS = {
    "/predict",
    "/predict/batch",
    "/models/{model}/predict",
    "/models/{model}/predict/batch",
    "/models/{model}/batch",
}


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


# --- production keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        " " * 16,  # blank
        "\t" * 20,
        "aaaaaaaaaaaaaaaa",  # one character
        "abababababababababab",  # a short pattern repeated
        "aaaaaaaaaaaaabcdef",  # mostly one character
        "dev-insecure-key",
        "dev-insecure-key-but-longer",
        "changeme",
        "short-but-0k!",
        "correct horse battery staple",  # whitespace
    ],
)
def test_production_refuses_weak_keys_without_showing_them(settings_factory, key):
    settings = settings_factory(environment="production", api_key=key)
    with pytest.raises(RuntimeError, match="IA_CONTINU_API_KEY is refused in production") as err:
        settings.check_production()
    if key and key.strip():
        assert key not in str(err.value)


def test_production_accepts_random_keys(settings_factory):
    import secrets

    for key in (secrets.token_urlsafe(12), secrets.token_urlsafe(32), secrets.token_hex(16)):
        settings_factory(environment="production", api_key=key).check_production()


# --- no secret in /health or in the live API's log ----------------------------------------------


def test_health_never_shows_a_database_password(client):
    runtime = client.app.state.runtime

    class DriverEchoingItsUrl:
        def connect(self):
            raise ConnectionError(
                "connection to postgresql+psycopg://ia:db-pass-zz9-Qx@db.internal:5432/ia failed"
            )

    engine, runtime.engine = runtime.engine, DriverEchoingItsUrl()
    runtime._db_check = (0.0, True, None)
    try:
        r = client.get("/health")
    finally:
        runtime.engine = engine
        runtime._db_check = (0.0, True, None)
    assert r.status_code == 503
    assert "db-pass-zz9-Qx" not in r.text
    assert "ia:***@db.internal" in r.json()["checks"]["database"]


@pytest.mark.slow
def test_failed_discord_alert_leaves_no_token_in_the_live_api_log(make_client, tmp_path, db_url):
    """A real API process whose champion fails to load alerts Discord; the webhook refuses.
    Its whole log (uvicorn's stdout and stderr) must not contain the token."""
    import socket

    from ia_continu.learn import registry
    from tests.conftest import train
    from tests.live import settings_env, start_api

    if db_url.startswith("postgresql"):
        pytest.skip("log redaction: the database backend plays no part")
    first = make_client()
    train(first)
    settings = first.app.state.runtime.settings
    location = registry.mlflow_client(settings).get_model_version_download_uri(
        settings.registered_model_name, "1"
    )
    root = Path(location.removeprefix("file://"))
    for model_file in (p for p in root.rglob("model.*") if p.is_file()):
        model_file.write_bytes(b"\x00not a model\x00")
    with session_scope(first.app.state.runtime.engine) as session:  # and its served form
        session.query(ServingFormRecord).update({ServingFormRecord.arrays: b"\x00bad\x00"})
    with socket.socket() as s:  # bound, never listening: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        env = {
            **settings_env(settings),
            "IA_CONTINU_DISCORD_WEBHOOK_URL": f"http://127.0.0.1:{port}/api/webhooks/123/SECRETTOKEN",
            "IA_CONTINU_LOG_LEVEL": "DEBUG",
        }
        api = start_api(env, tmp_path)
        try:
            health = httpx.get(api.url + "/health", timeout=10).json()
            assert health["status"] == "degraded"
        finally:
            api.stop()
    log = api.log()
    assert "discord alert dropped" in log, log[-3000:]
    # The refused send is logged (with the reason, never the URL); the token appears nowhere.
    assert "SECRETTOKEN" not in log
