"""Every state-changing route refuses a missing or wrong API key — including routes added
later: the list comes from the app itself, not from this file."""

from __future__ import annotations

import re

# Predictions are public (rate-limited, not keyed): they change no state an operator owns.
PUBLIC_WRITES = {"/predict", "/predict/batch"}


def _state_changing_routes(app) -> list[tuple[str, str]]:
    out = []
    for path, operations in app.openapi()["paths"].items():
        if path in PUBLIC_WRITES:
            continue
        for method in operations.keys() & {"post", "put", "patch", "delete"}:
            out.append((method.upper(), re.sub(r"{[^}]+}", "1", path)))
    return sorted(out)


def test_every_state_changing_route_needs_the_key(client):
    routes = _state_changing_routes(client.app)
    # the foundation's admin routes at least
    assert {
        ("POST", "/generate"),
        ("POST", "/retrain"),
        ("POST", "/models/1/promote"),
        ("POST", "/models/rollback"),
    } <= set(routes)
    for method, path in routes:
        missing = client.request(method, path, json={})
        wrong = client.request(method, path, json={}, headers={"X-API-Key": "wrong-key"})
        assert missing.status_code == 401, (method, path, missing.status_code)
        assert wrong.status_code == 403, (method, path, wrong.status_code)
        assert "key" in missing.json()["detail"].lower()


def test_production_refuses_to_start_without_a_real_key(settings_factory):
    import pytest

    from api.runtime import Runtime

    for key in (None, "", "dev-insecure-key", "short"):
        settings = settings_factory(environment="production", api_key=key)
        with pytest.raises(RuntimeError, match="IA_CONTINU_API_KEY"):
            Runtime.start(settings)


def test_development_has_a_default_key_production_does_not(settings_factory):
    import pytest

    assert settings_factory(environment="development", api_key=None).effective_api_key
    with pytest.raises(RuntimeError):
        _ = settings_factory(environment="production", api_key=None).effective_api_key
