"""The one-row /predict fast path (api/fastpath.py) answers exactly as the FastAPI route does.

Each request is sent twice: with ``Content-Type: application/json`` (the fast path takes it)
and with ``application/json; charset=utf-8`` (it declines: FastAPI's route answers). The
middleware's ``answered`` counter says which path answered.
"""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from api.fastpath import PredictFastPath
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog
from tests.api.test_several_models import BIKES, SETOSA, _train
from tests.conftest import train

FAST = {"Content-Type": "application/json"}
ROUTE = {"Content-Type": "application/json; charset=utf-8"}
VOLATILE = ("timestamp", "latency_ms")  # differ between any two calls


def _fast_path(client) -> PredictFastPath:
    app = client.app.middleware_stack
    while not isinstance(app, PredictFastPath):
        app = app.app
    return app


def _post(client, path: str, body: bytes | str, headers: dict[str, str]):
    content = body if isinstance(body, bytes) else body.encode()
    return client.post(path, content=content, headers=headers)


def _both(client, path: str, body: bytes | str):
    """(fast path answer, route answer, whether the fast path answered the first)."""
    fast_path = _fast_path(client)
    before = fast_path.answered
    fast = _post(client, path, body, FAST)
    took = fast_path.answered == before + 1
    route = _post(client, path, body, ROUTE)
    assert fast_path.answered == before + took  # the charset variant always went to FastAPI
    return fast, route, took


def _stable(response) -> dict:
    body = response.json()
    return {k: v for k, v in body.items() if k not in VOLATILE}


def _headers(response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.multi_items() if k != "content-length"]


def _logged(client, request_id: str) -> list[PredictionLog]:
    runtime = client.app.state.runtime
    assert runtime.writer.flush()
    with session_scope(runtime.engine) as s:
        q = select(PredictionLog).where(PredictionLog.request_id == request_id)
        return list(s.scalars(q.order_by(PredictionLog.id)).all())


VALID = [
    ("/predict", {"features": [0.3, -0.4], "request_id": "v-list"}),
    ("/predict", {"features": {"feature1": 0.3, "feature2": -0.4}, "request_id": "v-names"}),
    ("/predict", {"features": [1, 2], "request_id": "v-ints", "booking_id": "b", "driver_id": "d"}),
    (
        "/predict",
        {
            "features": [0.1, 0.2],
            "request_id": "v-ctx",
            "booking_id": "top",
            "context": {"booking_id": "inner"},
        },
    ),
    ("/models/classification/predict", {"features": [2.5, -1.0], "request_id": "v-model"}),
    ("/models/iris/predict", {"features": SETOSA, "request_id": "v-iris"}),
    ("/models/bike_traffic/predict", {"features": BIKES, "request_id": "v-bikes"}),
]


def test_valid_rows_get_the_same_answer_and_log_row_on_both_paths(client):
    train(client)
    _train(client, "iris", seed=1)
    _train(client, "bike_traffic", seed=1)
    for path, payload in VALID:
        fast, route, took = _both(client, path, json.dumps(payload))
        assert took, path
        assert fast.status_code == route.status_code == 200, (path, fast.text, route.text)
        assert _stable(fast) == _stable(route), path
        assert fast.json()["served_by"] == "ml"
        assert _headers(fast) == _headers(route)
        assert fast.headers["content-length"] == str(len(fast.content))
        # Both calls logged, alike (the same request id: one row per call).
        rows = _logged(client, payload["request_id"])
        assert len(rows) == 2, path
        fields = ("features", "prediction", "booking_id", "driver_id", "decision", "family")
        assert [getattr(rows[0], f) for f in fields] == [getattr(rows[1], f) for f in fields]
    (ctx_row, _) = _logged(client, "v-ctx")
    assert ctx_row.booking_id == "inner"  # the context's id wins, as on the route


def test_before_any_model_the_fallback_answers_alike(client):
    fast, route, took = _both(client, "/predict", '{"features": [1.0, 0.2], "request_id": "x"}')
    assert took and _stable(fast) == _stable(route)
    assert fast.json()["decision"] == "fallback_no_model"


# Bodies the fast path must not answer itself: FastAPI's validation writes the 4xx.
DECLINED = [
    '{"features": [NaN, 1]}',
    '{"features": [1e400, 1]}',
    '{"features": [1e13, 1]}',
    '{"features": [10000000000001, 1]}',
    '{"features": [1, 2], "request_id": 7}',
    '{"features": [1, 2], "request_id": ""}',
    '{"features": [1, 2], "request_id": "' + "r" * 101 + '"}',
    '{"features": [1, 2], "request_id": "a\\u0001b"}',
    '{"features": [1, 2], "request_id": "\\ud800"}',
    '{"features": [1, 2], "driver_id": true}',
    '{"features": [1, 2], "extra": 1}',
    '{"features": [1, 2], "context": {"booking_id": "b", "other": 1}}',
    '{"features": [1, 2], "context": [1]}',
    '{"features": "1, 2"}',
    '{"features": [[1, 2]]}',
    '{"features": [null, 1]}',
    '{"features": ["' + "t" * 201 + '", 1]}',
    '{"request_id": "no-features"}',
    "[1, 2]",
    '{"features": [1, 2]',
    "",
    b'{"features": [1, 2], "request_id": "\xff"}',
]


def test_a_body_with_a_byte_order_mark_is_left_to_fastapi(client):
    # json.loads refuses it, FastAPI's parser accepts it: its answer, not ours.
    fast, route, took = _both(client, "/predict", '\ufeff{"features": [1, 2]}')
    assert not took
    assert fast.status_code == route.status_code == 200
    assert _stable(fast) | {"request_id": ""} == _stable(route) | {"request_id": ""}


@pytest.mark.parametrize("body", DECLINED)
def test_invalid_bodies_fall_through_to_the_same_4xx(client, body):
    fast, route, took = _both(client, "/predict", body)
    assert not took
    assert 400 <= fast.status_code < 500
    assert (fast.status_code, fast.json()) == (route.status_code, route.json())


# Valid requests the route itself refuses (the domain's 422): the fast path answers them
# with the route's own error handler.
REFUSED = [
    '{"features": [1, 2, 3]}',
    '{"features": []}',
    '{"features": {"feature1": 1}}',
    '{"features": [true, 1]}',
    '{"features": ["text", 1]}',
]


@pytest.mark.parametrize("body", REFUSED)
def test_rows_the_model_refuses_get_the_same_422(client, body):
    fast, route, took = _both(client, "/predict", body)
    assert took
    assert fast.status_code == 422
    assert fast.json() == route.json()
    assert _headers(fast) == _headers(route)


def test_unknown_or_malformed_model_names_are_left_to_fastapi(client):
    for path in ("/models/nosuchmodel/predict", "/models/Bad-Name/predict"):
        fast, route, took = _both(client, path, '{"features": [1, 2]}')
        assert not took
        assert (fast.status_code, fast.json()) == (route.status_code, route.json())
        assert fast.status_code == 404


def test_other_methods_media_types_and_paths_are_left_to_fastapi(client):
    fast_path = _fast_path(client)
    before = fast_path.answered
    assert client.get("/predict").status_code == 405
    r = client.post("/predict", data={"features": "1"})  # a form
    assert r.status_code == 422
    r = client.post(
        "/predict/", content=b'{"features": [1, 2]}', headers=FAST, follow_redirects=False
    )
    assert r.status_code == 307  # FastAPI's redirect to /predict
    assert fast_path.answered == before


def test_rate_limit_is_one_budget_across_both_paths(make_client):
    client = make_client(rate_limit_predict="3/minute")
    body = '{"features": [1, 2]}'
    fast_path = _fast_path(client)
    assert _post(client, "/predict", body, FAST).status_code == 200
    assert _post(client, "/predict", body, ROUTE).status_code == 200
    assert _post(client, "/predict", body, FAST).status_code == 200
    limited_fast = _post(client, "/predict", body, FAST)
    limited_route = _post(client, "/predict", body, ROUTE)
    assert limited_fast.status_code == limited_route.status_code == 429
    assert limited_fast.json() == limited_route.json()
    assert limited_fast.headers["retry-after"] and _headers(limited_fast) == _headers(limited_route)
    assert fast_path.answered == 3  # two 200s and the 429
    # A declined body still counts once, where FastAPI checks it (after parsing the JSON).
    assert _post(client, "/predict", '{"features": [1, 2], "x": 1}', FAST).status_code == 429


def test_no_api_key_needed_and_a_wrong_one_is_ignored(client):
    r = client.post("/predict", content=b'{"features": [1, 2]}', headers=FAST | {"X-API-Key": "no"})
    assert r.status_code == 200
    assert _fast_path(client).answered == 1


def test_body_limit_applies_before_the_fast_path_reads(make_client):
    client = make_client(max_body_bytes=1024)
    fast_path = _fast_path(client)
    small = '{"features": [1, 2]}'
    assert _post(client, "/predict", small, FAST).status_code == 200
    big = '{"features": [1, 2]' + " " * 1100 + "}"  # valid, but over the limit
    r = _post(client, "/predict", big, FAST)
    assert r.status_code == 413 and "IA_CONTINU_MAX_BODY_BYTES" in r.json()["detail"]

    def chunks():
        yield big.encode()

    r = client.post("/predict", content=chunks(), headers=FAST)  # chunked: no Content-Length
    assert r.status_code == 413
    assert fast_path.answered == 1


def _http_count(client, route: str, status: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "http_requests":
            for sample in family.samples:
                labels = sample.labels
                if sample.name == "http_requests_total" and labels == {
                    "method": "POST",
                    "route": route,
                    "status": status,
                }:
                    return sample.value
    return 0.0


def test_http_metrics_count_fast_answers_under_the_route_template(client):
    before = {s: _http_count(client, "/predict", s) for s in ("200", "422")}
    model_before = _http_count(client, "/models/{model}/predict", "200")
    assert _post(client, "/predict", '{"features": [1, 2]}', FAST).status_code == 200
    assert _post(client, "/predict", '{"features": [1, 2, 3]}', FAST).status_code == 422
    assert _post(client, "/predict", '{"features": [1, 2], "x": 1}', FAST).status_code == 422
    r = _post(client, "/models/classification/predict", '{"features": [1, 2]}', FAST)
    assert r.status_code == 200
    assert _fast_path(client).answered == 3
    assert _http_count(client, "/predict", "200") == before["200"] + 1
    assert _http_count(client, "/predict", "422") == before["422"] + 2
    assert _http_count(client, "/models/{model}/predict", "200") == model_before + 1


def test_every_fast_answer_is_logged(client):
    train(client)
    ids = [f"many-{i}" for i in range(50)]
    for i, request_id in enumerate(ids):
        body = {"features": [i / 10, -i / 20], "request_id": request_id, "driver_id": f"d{i}"}
        r = _post(client, "/predict", json.dumps(body), FAST)
        assert r.status_code == 200 and r.json()["request_id"] == request_id
    assert _fast_path(client).answered == len(ids)
    runtime = client.app.state.runtime
    assert runtime.writer.flush()
    with session_scope(runtime.engine) as s:
        rows = s.scalars(select(PredictionLog).where(PredictionLog.request_id.in_(ids))).all()
    assert sorted(r.request_id for r in rows) == sorted(ids)
    assert {r.request_id: r.driver_id for r in rows} == {f"many-{i}": f"d{i}" for i in range(50)}


def test_generated_request_ids_are_fresh_time_ordered_uuid_hex(client):
    seen = set()
    for _ in range(20):
        r = _post(client, "/predict", '{"features": [1, 2]}', FAST)
        request_id = r.json()["request_id"]
        assert len(request_id) == 32 and int(request_id, 16) >= 0
        assert request_id[12] == "7" and request_id[16] in "89ab"  # UUID7's version, variant
        seen.add(request_id)
    assert len(seen) == 20


def test_an_answer_with_a_non_finite_number_anywhere_is_refused():
    from api.routes.predict import _finite

    answer = {"prediction": 1, "confidence": 0.5, "contributing_factors": {"a": 0.1}}
    assert _finite(answer)
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert not _finite(answer | {"confidence": bad})
        assert not _finite(answer | {"contributing_factors": {"a": 0.1, "b": bad}})
        assert not _finite(answer | {"extra": [1.0, (2.0, bad)]})
