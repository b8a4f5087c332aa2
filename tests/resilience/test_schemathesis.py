"""Property-based fuzzing of the real service from its own OpenAPI schema: whatever a client
sends, the service answers without a 5xx and with a body that matches the schema."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.conftest import ADMIN, API_KEY
from tests.live import start_api


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    env = {
        "IA_CONTINU_ENVIRONMENT": "test",
        "IA_CONTINU_DATA_DIR": str(root),
        "IA_CONTINU_API_KEY": API_KEY,
        "IA_CONTINU_RATE_LIMIT_ENABLED": "false",
        "IA_CONTINU_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    api = start_api(env, root)
    with httpx.Client(base_url=api.url, headers=ADMIN, timeout=60) as http:
        assert http.post("/generate", json={"samples": 500, "seed": 1}).status_code == 200
        assert http.post("/retrain").status_code == 200
    yield api
    api.stop()


def _load_schema():
    # The schema comes from the app object (no server needed to collect the tests); the
    # calls go to the live server over real HTTP.
    from api.main import app

    return schemathesis.openapi.from_dict(app.openapi())


schema = _load_schema()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_match_the_schema(case, live_api):
    case.call_and_validate(
        base_url=live_api.url,
        headers=ADMIN,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
