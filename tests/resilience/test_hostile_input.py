"""Hostile input: whatever a client sends, the answer is a 2xx or a 4xx with a ``detail``,
always small, finite JSON; and no body is read past the size limit or before the admin key.

Input classes covered (each by a property-based sweep over every route, and by a targeted
test): NaN / Infinity / 1e999 tokens, lone surrogates and NUL, integers of hundreds or
thousands of digits, deep nesting, huge strings, bodies over the size limit, and outcomes
beyond a family's domain (including one stored before the bounds existed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import socket
from datetime import timedelta
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from api.main import create_app
from ia_continu.config import Settings
from ia_continu.store.tables import PredictionLog, utcnow
from tests.conftest import ADMIN, API_KEY, train
from tests.live import start_api

# --- helpers --------------------------------------------------------------------------


class Raw:
    """JSON text spliced in verbatim: what ``json.dumps`` cannot write (1e999, nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


def dumps(value: object) -> str:
    """JSON text with NaN/Infinity as bare tokens (json.dumps allows them), lone surrogates
    as ``\\ud800`` escapes (ensure_ascii), and ``Raw`` pieces as written."""
    pieces: list[str] = []

    def default(o: object) -> str:
        if isinstance(o, Raw):
            pieces.append(o.text)
            return f"@@raw{len(pieces) - 1}@@"
        raise TypeError(type(o).__name__)

    text = json.dumps(value, default=default)
    for i, piece in enumerate(pieces):
        text = text.replace(f'"@@raw{i}@@"', piece, 1)
    return text


def _no_constant(token: str) -> None:
    raise AssertionError(f"answer contains {token}: not JSON")


def strict_json(text: str) -> object:
    return json.loads(text, parse_constant=_no_constant)


def assert_handled(r, *, max_error_bytes: int = 8_000) -> object:
    """Not a 5xx; a JSON body that strict parsers accept; a 4xx says why, briefly."""
    assert r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    if r.request.method == "HEAD" or r.status_code in (204, 304):
        return None
    body = strict_json(r.text) if "json" in r.headers.get("content-type", "") else r.text
    if r.status_code >= 400:
        assert isinstance(body, dict) and body.get("detail"), r.text[:500]
        # A 422 echoes a short excerpt of the input, never the input.
        assert len(r.content) <= max_error_bytes, len(r.content)
    return body


def post_raw(client, path: str, text: str, headers=ADMIN, **kwargs):
    return client.post(
        path,
        content=text.encode("utf-8"),
        headers={**headers, "Content-Type": "application/json"},
        **kwargs,
    )


JSON_ADMIN = {**ADMIN, "Content-Type": "application/json"}
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 400
HUGER_INT = "9" * 5000  # past Python's int parsing limit (4,300 digits)

# --- (a) property-based: every field of every route, and every query parameter ------------

HOSTILE_TOKENS = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e999"),
    Raw("-1e999"),
    Raw("1e308"),
    Raw("-0.0"),
    Raw('"\\ud800"'),
    Raw('"a\\udfffb"'),
    Raw('"\\u0000"'),
    Raw('{"\\ud800": 1}'),
    Raw(HUGE_INT),
    Raw("-" + HUGE_INT),
    Raw(HUGER_INT),
    Raw(DEEP),
    Raw('{"a":' * 20_000 + "1" + "}" * 20_000),
    Raw('"' + "x" * 300_000 + '"'),
    Raw("[" + ",".join(["1e308"] * 2000) + "]"),
]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(),  # NaN and infinities included
    st.text(max_size=12),
    st.sampled_from(["\ud800", "\udfff", "\x00", "a\x00b", "", " ", "1", "nan"]),
)
json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
hostile_values = st.one_of(st.sampled_from(HOSTILE_TOKENS), json_values)
hostile_query = st.one_of(
    st.sampled_from(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
            "1e999",
            "-1",
            "0",
            "1.5",
            "",
            "\x00",
            HUGE_INT,
            HUGER_INT,
            "٣",
            "²",
            "true",
            "null",
            "[]",
            "%ff",
            "1" * 50,
        ]
    ),
    st.text(max_size=20),
)

# Valid bodies for the routes whose schema alone does not give one (the fuzz then breaks
# one part at a time, so validation past the first field is reached too).
BASE_BODIES = {
    "/predict": {"features": [0.5, -1.2], "request_id": "r-1"},
    "/predict/batch": {"features": [[0.5, -1.2], [0.1, 0.2]], "request_ids": ["a", "b"]},
    "/api/actuals": {"actuals": [{"request_id": "r-1", "actual": 1}]},
    "/api/feature-flags/ml/percentage": {"percentage": 50},
    "/api/feature-flags/ml/config": {"shadow_rate": 0.5},
    "/generate": {"samples": 100, "seed": 1},
    "/retrain": {"reason": "fuzz"},
}


def _operations() -> list[dict]:
    schema = create_app().openapi()
    components = schema.get("components", {}).get("schemas", {})
    found = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            params = [p for p in op.get("parameters", []) if p["in"] in ("query", "path")]
            body_schema = (
                op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ).get("schema")
            fields: list[str] = []
            if body_schema is not None:
                for part in [body_schema, *body_schema.get("anyOf", [])]:
                    ref = part.get("$ref", "").rsplit("/", 1)[-1]
                    fields += list(components.get(ref, part).get("properties", {}))
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "query": [p["name"] for p in params if p["in"] == "query"],
                    "path_params": [p["name"] for p in params if p["in"] == "path"],
                    "has_body": body_schema is not None,
                    "fields": fields,
                }
            )
    return found


OPERATIONS = _operations()


def _json_paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value (the value itself included)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _json_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _json_paths(v, (*prefix, i))
    return out


def _replace(value: object, where: tuple, new: object) -> object:
    if not where:
        return new
    head, rest = where[0], where[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def hostile_requests(draw):
    op = draw(st.sampled_from(OPERATIONS))
    path = op["path"]
    for name in op["path_params"]:
        value = draw(st.one_of(hostile_query, st.just("1")))
        path = path.replace("{" + name + "}", quote(value, safe="") or "1")
    query = {}
    for name in op["query"]:
        if draw(st.booleans()):
            query[name] = draw(hostile_query)
    body = None
    if op["has_body"] or op["method"] == "POST":
        base = BASE_BODIES.get(op["path"], {})
        target = draw(st.sampled_from(["somewhere", "field", "extra", "whole", "none"]))
        value = draw(hostile_values)
        if target == "somewhere":
            body = dumps(_replace(base, draw(st.sampled_from(_json_paths(base))), value))
        elif target == "field" and op["fields"]:
            body = dumps({**base, draw(st.sampled_from(op["fields"])): value})
        elif target == "extra":
            key = draw(st.sampled_from(["extra", "\ud800", "\x00", "a" * 1000]))
            body = dumps({**base, key: value})
        elif target == "whole":
            body = dumps(value)
        else:
            body = dumps(base)
    return op["method"], path, query, body


@pytest.mark.slow
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=hostile_requests())
def test_no_input_gets_a_server_error(fuzz_client, call):
    method, path, query, body = call
    url = path + ("?" + urlencode(query) if query else "")
    if body is None:
        r = fuzz_client.request(method, url, headers=ADMIN)
    else:
        r = fuzz_client.request(
            method,
            url,
            content=body.encode("utf-8"),
            headers={**ADMIN, "Content-Type": "application/json"},
        )
    assert_handled(r)


@pytest.fixture
def fuzz_client(make_client):
    # Few retrains may actually run (a valid body can come up): the limit keeps it quick.
    return make_client(rate_limit_retrain="2/hour")


def test_every_operation_is_fuzzed():
    # The sweep draws from the schema: a route added later is fuzzed without a change here.
    paths = {op["path"] for op in OPERATIONS}
    assert {"/predict", "/predict/batch", "/api/actuals", "/retrain", "/generate"} <= paths
    assert all(op["fields"] for op in OPERATIONS if op["has_body"])


# --- (b) targeted: one test per class of input --------------------------------------------

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]


@pytest.mark.parametrize("token", NON_FINITE)
def test_non_finite_numbers_anywhere_are_refused(client, token):
    cases = [
        ("/predict", f'{{"features": [0.5, {token}]}}'),
        ("/predict", f'{{"features": {{"feature1": {token}, "feature2": 1}}}}'),
        ("/predict", f'{{"features": [0.5, 1], "request_id": {token}}}'),
        ("/predict", f'{{"features": [0.5, 1], "extra": {token}}}'),
        ("/predict/batch", f'{{"features": [[0.5, {token}]]}}'),
        ("/generate", f'{{"samples": {token}}}'),
        ("/generate", f'{{"drift": {token}}}'),
        ("/generate", f'{{"seed": {token}}}'),
        ("/retrain", f'{{"reason": {token}}}'),
        ("/retrain", f'{{"generation_id": {token}}}'),
        ("/api/feature-flags/ml/percentage", f'{{"percentage": {token}}}'),
        ("/api/feature-flags/ml/enable", f'{{"percentage": {token}}}'),
        ("/api/feature-flags/ml/config", f'{{"shadow_rate": {token}}}'),
        ("/api/actuals", f'{{"actuals": [{{"request_id": "r", "actual": {token}}}]}}'),
        ("/api/actuals", f'{{"actuals": [{{"request_id": {token}, "actual": 1}}]}}'),
        ("/models/rollback", f'{{"reason": {token}}}'),
    ]
    for path, text in cases:
        r = post_raw(client, path, text)
        assert r.status_code == 422, (path, text, r.status_code, r.text[:300])
        assert_handled(r)


def test_query_parameters_refuse_non_finite_and_huge_numbers(client):
    for query in (
        "threshold=nan",
        "threshold=inf",
        "threshold=1e999",
        f"hours={HUGE_INT}",
        f"limit={HUGER_INT}",
        "limit=%00",
    ):
        r = client.get(f"/api/ml-monitoring/anomalies?{query}")
        assert r.status_code == 422, (query, r.text[:300])
        assert_handled(r)
    for path in ("/api/ml-monitoring/metrics", "/api/ml-monitoring/daily", "/models/events"):
        for name in ("hours", "days", "limit"):
            assert_handled(client.get(f"{path}?{name}={HUGE_INT}"))


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\x00", "reason\x00"])
def test_lone_surrogates_and_nul_in_free_text_are_refused(client, text):
    for path in ("/retrain", "/models/rollback", "/models/1/promote"):
        r = post_raw(client, path, dumps({"reason": text}))
        assert r.status_code == 422, (path, r.text[:300])
        detail = assert_handled(r)["detail"]
        assert "NUL or lone surrogates" in detail[0]["msg"]
    # In a name or a value the schema does not expect, the 422 still cannot fail to encode.
    for body in ({text: 1, "features": [0.1, 0.2]}, {"features": [0.1, 0.2], "x": text}):
        assert post_raw(client, "/predict", dumps(body)).status_code == 422


def test_huge_integers_are_refused(client):
    cases = [
        ("/predict", f'{{"features": [{HUGE_INT}, 1]}}', 422),
        ("/predict", f'{{"features": [-{HUGE_INT}, 1]}}', 422),
        ("/predict", '{"features": [1000000000001, 1]}', 422),  # past the schema's bound
        ("/predict/batch", f'{{"features": [[{HUGE_INT}, 1]]}}', 422),
        ("/predict/batch", f'{{"features": [[0.5, {HUGE_INT}]]}}', 422),
        ("/predict/batch", '{"features": [[9223372036854775808, 1]]}', 422),
        ("/predict/batch", f'{{"features": [[{HUGER_INT}, 1]]}}', 422),
        ("/retrain", f'{{"generation_id": {HUGE_INT}}}', 422),
        ("/retrain", '{"generation_id": 2147483648}', 422),  # PostgreSQL's INTEGER ends
        ("/generate", f'{{"samples": {HUGE_INT}}}', 422),
        ("/generate", '{"seed": 4294967295}', 422),  # stored in an INTEGER column
        ("/api/feature-flags/ml/percentage", f'{{"percentage": {HUGE_INT}}}', 422),
        ("/api/actuals", f'{{"actuals": [{{"request_id": "r", "actual": {HUGE_INT}}}]}}', 422),
    ]
    for path, text, code in cases:
        r = post_raw(client, path, text)
        assert r.status_code == code, (path, text[:80], r.status_code, r.text[:300])
        assert_handled(r)
    # Past Python's 4,300-digit parsing limit, the JSON parser refuses the body itself.
    for path in ("/predict", "/retrain", "/predict/batch"):
        r = post_raw(client, path, f'{{"features": [{HUGER_INT}, 1]}}')
        assert r.status_code == 422, (path, r.text[:300])
        assert "not valid JSON" in assert_handled(r)["detail"]


def test_deep_nesting_is_refused(client):
    for path in ("/predict/batch", "/predict", "/api/actuals", "/retrain", "/generate"):
        for text in (DEEP, f'{{"features": {DEEP}}}', "[" * 900 + "]" * 900):
            r = post_raw(client, path, text)
            assert r.status_code == 422, (path, r.status_code, r.text[:300])
            assert_handled(r)
        r = post_raw(client, path, f'{{"features": {DEEP}}}')
        assert "nested too deeply" in r.json()["detail"], r.text[:300]
    # Bytes that are not UTF-8 at all.
    not_utf8 = b'{"features": [[0.1, 0.2]], "x": "\xff"}'
    for path in ("/predict", "/predict/batch", "/retrain"):
        r = client.post(path, content=not_utf8, headers=JSON_ADMIN)
        assert r.status_code == 422, (path, r.text[:300])
        assert_handled(r)


def test_a_validation_error_echoes_a_short_excerpt_only(client):
    big = "x" * 5_000_000
    r = post_raw(client, "/retrain", dumps({"reason": big}))
    assert r.status_code == 422
    assert len(r.content) < 2_000
    assert_handled(r)
    # 50,000 invalid items: the first errors are listed, then how many more there are.
    # (a list: text is a valid outcome shape, since a declared class may be a label)
    items = [{"request_id": f"r{i}", "actual": [1]} for i in range(50_000)]
    r = post_raw(client, "/api/actuals", dumps({"actuals": items}))
    assert r.status_code == 422
    detail = assert_handled(r)["detail"]
    assert len(detail) == 21 and detail[-1]["type"] == "too_many_errors"
    # A key the client chose is quoted shortened, and a plain invalid value is echoed as is.
    r = post_raw(client, "/predict", dumps({"features": [0.1, 0.2], "k" * 10_000: 1}))
    assert r.status_code == 422 and len(r.content) < 2_000
    r = client.post("/generate", json={"samples": 5}, headers=ADMIN)
    assert r.json()["detail"][0]["input"] == 5


def test_outcomes_are_bounded_by_the_family(make_client):
    client = make_client()  # classification: an outcome is a label
    for actual in (0.5, 2, -1, 1e155):
        r = client.post(
            "/api/actuals", json={"actuals": [{"request_id": "r", "actual": actual}]}, headers=ADMIN
        )
        assert r.status_code == 422, r.text
        assert "0 or 1" in r.json()["detail"]
    delay = make_client(family="delay")
    for actual in (1e5, -1e5, 1e155):
        r = delay.post(
            "/api/actuals", json={"actuals": [{"request_id": "r", "actual": actual}]}, headers=ADMIN
        )
        assert r.status_code == 422 and "minutes" in r.json()["detail"], r.text
    r = delay.post(
        "/api/actuals", json={"actuals": [{"request_id": "r", "actual": -12.5}]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text


def test_features_are_bounded_by_the_family(make_client):
    delay = make_client(family="delay")
    # 1e308 is past the schema's bound already; the others pass it and meet the family's.
    r = delay.post("/predict", json={"features": [1e308, 8, 1, 0, 0.5]})
    assert r.status_code == 422 and "less than or equal" in r.text, r.text
    for features in ([1e308, 8, 1, 0, 0.5], [1001, 8, 1, 0, 0.5], [1e12, 8, 1, 0, 0.5]):
        if features[0] < 1e300:
            r = delay.post("/predict", json={"features": features})
            assert r.status_code == 422 and "distance_km" in r.text, r.text
        r = delay.post("/predict/batch", json={"features": [features]})
        assert r.status_code == 422 and "distance_km" in r.text, r.text
    assert delay.post("/predict", json={"features": [1000, 8, 1, 0, 0.5]}).status_code == 200
    classification = make_client()
    r = classification.post("/predict", json={"features": [2e6, 0]})
    assert r.status_code == 422 and "within" in r.text
    r = classification.post("/predict/batch", json={"features": [[0, -2e6]]})
    assert r.status_code == 422 and "within" in r.text


@pytest.mark.parametrize("fallback_on_error", [True, False])
def test_a_non_finite_model_answer_is_never_sent(make_client, fallback_on_error):
    client = make_client(family="delay", fallback_on_error=fallback_on_error)
    train(client)
    holder = client.app.state.runtime.holder
    served = holder.current

    def broken(X):
        scores = served.score(X)
        scores.prediction = np.full(len(X), np.inf)
        return scores

    holder.current = dataclasses.replace(served, score=broken)
    try:
        r = client.post("/predict", json={"features": [10, 8, 1, 0, 0.5]})
        rb = client.post("/predict/batch", json={"features": [[10, 8, 1, 0, 0.5]] * 3})
    finally:
        holder.current = served
    for answer in (r, rb):
        if fallback_on_error:
            body = assert_handled(answer)
            assert answer.status_code == 200
            served_by = body["served_by"]
            assert served_by == "fallback" or set(served_by) == {"fallback"}
        else:
            # The rollout says not to fall back: the documented 503 of a failed model.
            assert answer.status_code == 503
            assert "non-finite" in strict_json(answer.text)["detail"]


def _insert_extreme_rows(client, values: list[float]) -> None:
    runtime = client.app.state.runtime
    family = runtime.settings.family
    now = utcnow()
    rows = []
    for i, actual in enumerate([0.0, 1.0, 1.0, *values]):
        rows.append(
            {
                "request_id": f"x{i}",
                "family": family,
                "features": [0.0, 0.0],
                "prediction": 1.0,
                "confidence": 0.9,
                "model_version": "1",
                "latency_ms": 1.0,
                "decision": "ml",
                "served_by": "ml",
                "ml_prediction": 1.0,
                "fallback_prediction": 0.0,
                "actual": actual,
                "error": abs(1.0 - actual),
                "is_accurate": actual == 1.0,
                "created_at": now - timedelta(minutes=i),
                "updated_at": now,
            }
        )
    with runtime.engine.begin() as conn:
        conn.execute(insert(PredictionLog), rows)


def test_an_extreme_stored_outcome_keeps_monitoring_finite(make_client):
    # Written straight to the table, as a row from before the bounds (or by hand) would be:
    # its square overflows a float (PostgreSQL raises, SQLite answers infinity). A regressor:
    # only its figures (MAE, RMSE, R²) square the outcomes.
    client = make_client(family="delay")
    _insert_extreme_rows(client, [1e155, -1e200, 1e300])
    for path in (
        "/api/ml-monitoring/summary",
        "/api/ml-monitoring/metrics",
        "/api/ml-monitoring/metrics?hours=1",
        "/api/ml-monitoring/daily",
        "/api/ml-monitoring/predictions",
        "/api/ml-monitoring/anomalies",
        "/api/feature-flags/status",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert_handled(r)
    figures = client.get("/api/ml-monitoring/metrics").json()
    # The three sane rows still count; the absurd ones are left out of the figures.
    assert figures["count"] == 6
    assert figures["labeled_count"] == 3
    assert figures["accuracy_rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert figures["mae"] == pytest.approx(1 / 3, abs=1e-6)
    summary = client.get("/api/ml-monitoring/summary").json()
    assert summary["metrics_24h"]["labeled_count"] == 3
    assert summary["metrics_7d"]["mae"] == pytest.approx(1 / 3, abs=1e-6)
    today = client.get("/api/ml-monitoring/daily?days=1").json()[-1]
    assert today["labeled_count"] == 3


def test_monitoring_overflow_is_safe_in_python_too():
    from ia_continu.families.tasks import RegressionRules
    from ia_continu.watch import quality

    # 100 rows of 1e153: Σa² is finite (1e308) but (Σa)² is not.
    sums = {"count": 100, "labeled": 100, "sum_confidence": 100.0, "sum_latency_ms": 100.0}
    sums |= {"sum_abs": 1e155, "ss_res": 1e308, "sum_a": 1e155, "sum_a2": 1e308, "accurate": 0}

    out = quality._figures(sums, RegressionRules())
    assert all(v is None or math.isfinite(v) for v in out.values())


# --- body size limit and the admin key before the body -----------------------------------


def test_the_default_limit_fits_a_full_batch_of_typical_rows():
    from ia_continu.families.delay import DelayFamily

    defaults = Settings(_env_file=None)
    n = defaults.max_batch_rows
    X, _ = DelayFamily().sample(n, rng=np.random.default_rng(0))
    body = dumps(
        {
            "features": X.tolist(),  # full float precision
            "request_ids": [f"{i:032x}" for i in range(n)],
            "booking_ids": [f"booking-{i}" for i in range(n)],
            "driver_ids": [f"driver-{i % 1000}" for i in range(n)],
        }
    )
    assert len(body) < 0.7 * defaults.max_body_bytes


def test_a_body_over_the_limit_is_refused(make_client):
    client = make_client(max_body_bytes=10_000)
    big = dumps({"features": [[0.5, 0.5]] * 2000})  # ~ 22 kB
    # With a Content-Length: refused on the header alone, on every route.
    for path in ("/predict/batch", "/predict", "/api/actuals", "/health"):
        r = client.post(path, content=big, headers={**ADMIN, "Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.status_code)
        assert "IA_CONTINU_MAX_BODY_BYTES" in assert_handled(r)["detail"]

    # Without one (chunked): counted as it arrives.
    def chunks():
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000].encode()

    for path in ("/predict/batch", "/predict", "/retrain"):
        r = client.post(
            path, content=chunks(), headers={**ADMIN, "Content-Type": "application/json"}
        )
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        assert_handled(r)
    small = dumps({"features": [[0.5, 0.5]] * 10})
    r = client.post(
        "/predict/batch",
        content=iter([small.encode()]),
        headers=ADMIN | {"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }


def test_a_chunked_body_is_read_no_further_than_the_limit(make_client):
    client = make_client(max_body_bytes=100_000)
    chunk = b"[" * 10_000
    asked: list[int] = []
    sent: list[dict] = []

    async def receive():
        asked.append(1)
        return {"type": "http.request", "body": chunk, "more_body": len(asked) < 1000}

    async def send(message):
        sent.append(message)

    scope = _scope("POST", "/predict/batch", [(b"content-type", b"application/json")])
    client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert len(asked) == 11  # 110 kB read of the 10 MB on offer


def _admin_operations() -> list[tuple[str, str]]:
    ops = []
    for path, item in create_app().openapi()["paths"].items():
        for method, op in item.items():
            if op.get("security"):
                ops.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return ops


ADMIN_OPERATIONS = _admin_operations()


@pytest.mark.parametrize(("method", "path"), ADMIN_OPERATIONS)
def test_admin_routes_check_the_key_before_reading_the_body(client, method, path):
    # Not JSON at all: had the body been parsed first, this would be a 422.
    junk = b"{" * 1_000_000
    r = client.request(method, path, content=junk, headers={"Content-Type": "application/json"})
    assert r.status_code == 401, r.text[:200]
    r = client.request(
        method,
        path,
        content=junk,
        headers={"Content-Type": "application/json", "X-API-Key": "wrong"},
    )
    assert r.status_code == 403, r.text[:200]
    # And at the ASGI level: the body is never even asked for.
    received: list[dict] = []
    sent: list[dict] = []

    async def receive():
        received.append({})
        return {"type": "http.request", "body": junk, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = _scope(method, path, [(b"content-type", b"application/json")])
    client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 401
    assert received == []


def test_every_admin_route_is_covered():
    assert {"/retrain", "/generate", "/api/actuals", "/models/rollback"} <= {
        p for _, p in ADMIN_OPERATIONS
    }


# --- a real server: keep-alive survives hostile input; a declared 50 MB is refused at once ---


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    env = {
        "IA_CONTINU_ENVIRONMENT": "test",
        "IA_CONTINU_DATA_DIR": str(root),
        "IA_CONTINU_API_KEY": API_KEY,
        "IA_CONTINU_RATE_LIMIT_ENABLED": "false",
        "IA_CONTINU_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    api = start_api(env, root)
    yield api
    api.stop()


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an answer"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return status, headers, rest[:length]


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@pytest.mark.slow
def test_keep_alive_survives_hostile_input(live_api):
    host, port = live_api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        for body in (
            b'{"features": [0.5, NaN], "request_id": Infinity}',
            b'{"features": [0.5, 1], "x": "\\ud800"}',
            f'{{"features": [{HUGE_INT}, 1]}}'.encode(),
            DEEP.encode(),
            b'{"features": [0.5, 1]}',
        ):
            status, headers, answer = _exchange(sock, _post("/predict", body))
            assert status < 500 and headers.get("connection") != "close", (status, answer[:200])
            strict_json(answer.decode())
        status, _, _ = _exchange(sock, _post("/predict/batch", DEEP.encode()))
        assert status == 422


@pytest.mark.slow
def test_a_declared_50mb_body_is_refused_before_it_is_sent(live_api):
    host, port = live_api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            "POST /retrain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
        ).encode()
        status, _, answer = _exchange(sock, head)  # not one byte of the body sent
        assert status == 413 and "IA_CONTINU_MAX_BODY_BYTES" in answer.decode()
