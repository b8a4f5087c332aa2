"""No request and no row can stop the prediction log.

Ids with a lone surrogate, a NUL or another control character are refused at the edge (422,
before anything is answered or logged), on every route that takes ids; a row that reaches the
writer anyway is set aside in the dead-letter folder while the rest of its group is written,
and ``/health`` says so until an operator moves the files away. A repeated ``request_id`` is
one row per call, and an outcome for it applies to every one of them.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog
from tests.conftest import ADMIN

# JSON text escapes, sent as written: "\ud800" decodes to a lone surrogate.
HOSTILE = {
    "lone surrogate": ("\\ud800", "U+D800"),
    "low surrogate": ("ok\\udfff", "U+DFFF"),
    "NUL": ("a\\u0000b", "U+0000"),
    "control": ("line\\nbreak", "U+000A"),
    "DEL": ("x\\u007f", "U+007F"),
    "C1": ("x\\u0085", "U+0085"),
}
RULE = "must not contain control characters or lone surrogates"


def _post(client, path: str, template: str, value: str, **kw):
    body = template.replace("@", value)
    json.loads(body)  # the test's own JSON is valid
    return client.post(path, content=body, headers={"Content-Type": "application/json", **kw})


def _request_ids(client) -> list[str]:
    runtime = client.app.state.runtime
    assert runtime.writer.flush()
    with session_scope(runtime.engine) as s:
        return s.scalars(select(PredictionLog.request_id).order_by(PredictionLog.id)).all()


def _assert_log_still_works(client, marker: str) -> None:
    r = client.post("/predict", json={"features": [0.2, 0.1], "request_id": marker})
    assert r.status_code == 200, r.text
    r = client.post(
        "/predict/batch", json={"features": [[0.1, 0.2]] * 2, "request_ids": [marker + "-b"] * 2}
    )
    assert r.status_code == 200, r.text
    ids = _request_ids(client)
    assert ids.count(marker) == 1 and ids.count(marker + "-b") == 2
    writer = client.app.state.runtime.writer
    assert writer.last_error is None and writer.dead_lettered == 0


PREDICT_TEMPLATES = {
    "request_id": '{"features": [0.5, 0.1], "request_id": "@"}',
    "booking_id": '{"features": [0.5, 0.1], "booking_id": "@"}',
    "driver_id": '{"features": [0.5, 0.1], "driver_id": "@"}',
    "context.booking_id": '{"features": [0.5, 0.1], "context": {"booking_id": "@"}}',
    "context.driver_id": '{"features": [0.5, 0.1], "context": {"driver_id": "@"}}',
}
BATCH_TEMPLATES = {
    "request_ids": '{"features": [[0.5, 0.1], [0.2, 0.3]], "request_ids": ["fine", "@"]}',
    "booking_ids": '{"features": [[0.5, 0.1], [0.2, 0.3]], "booking_ids": ["@", null]}',
    "driver_ids": '{"features": [[0.5, 0.1], [0.2, 0.3]], "driver_ids": [null, "@"]}',
}


def test_predict_refuses_hostile_ids_and_keeps_logging(client):
    for field, template in PREDICT_TEMPLATES.items():
        for kind, (value, code_point) in HOSTILE.items():
            r = _post(client, "/predict", template, value)
            assert r.status_code == 422, (field, kind, r.text)
            (error,) = r.json()["detail"]
            assert error["loc"][-1] == field.split(".")[-1], (field, kind, error)
            assert RULE in error["msg"] and code_point in error["msg"], (field, kind, error)
    assert _request_ids(client) == []  # nothing answered, nothing logged
    _assert_log_still_works(client, "after-predict")


def test_batch_refuses_hostile_ids_as_strictly_as_predict(client):
    for field, template in BATCH_TEMPLATES.items():
        index = 1 if field != "booking_ids" else 0
        for kind, (value, code_point) in HOSTILE.items():
            r = _post(client, "/predict/batch", template, value)
            assert r.status_code == 422, (field, kind, r.text)
            detail = r.json()["detail"]
            assert detail.startswith(f"'{field}'[{index}]: identifier"), (field, kind, detail)
            assert RULE in detail and code_point in detail, (field, kind, detail)
    # Strings only, like /predict (no more str() of an int), and the same length rule.
    for entry, fragment in [(7, "must be a string"), (True, "must be a string"), ("", "1..100")]:
        r = client.post("/predict/batch", json={"features": [[0.1, 0.2]], "request_ids": [entry]})
        assert r.status_code == 422 and fragment in r.json()["detail"], r.text
        r = client.post("/predict", json={"features": [0.1, 0.2], "request_id": entry})
        assert r.status_code == 422, r.text
    r = client.post("/predict/batch", json={"features": [[0.1, 0.2]], "request_ids": ["x" * 101]})
    assert r.status_code == 422 and "1..100" in r.json()["detail"]
    assert _request_ids(client) == []
    _assert_log_still_works(client, "after-batch")


def test_actuals_refuse_hostile_ids(client):
    for field in ("request_id", "booking_id"):
        for kind, (value, code_point) in HOSTILE.items():
            template = f'{{"actuals": [{{"{field}": "@", "actual": 1}}]}}'
            r = _post(client, "/api/actuals", template, value, **ADMIN)
            assert r.status_code == 422, (field, kind, r.text)
            assert RULE in r.text and code_point in r.text, (field, kind, r.text)


def test_ordinary_unicode_ids_are_accepted_and_stored(client):
    ids = ["réservation-42", "司机-7", "emoji-\U0001f697", "a b"]
    for rid in ids:
        r = client.post("/predict", json={"features": [0.1, 0.2], "request_id": rid})
        assert r.status_code == 200, r.text
    assert _request_ids(client) == ids


def _row(request_id: str, booking_id: str | None = None) -> dict:
    now = datetime(2026, 1, 1, 12, 0, 0)
    return dict(
        request_id=request_id,
        booking_id=booking_id,
        family="classification",
        features=[0.1, 0.2],
        prediction=1.0,
        confidence=0.9,
        model_version="fallback",
        latency_ms=0.1,
        decision="fallback_no_model",
        served_by="fallback",
        rollout_percentage=0.0,
        created_at=now,
        updated_at=now,
    )


def test_a_row_past_the_edge_is_set_aside_and_health_says_so(make_client, tmp_path):
    client = make_client()
    runtime = client.app.state.runtime
    refused = {"bad-surrogate"} | (
        {"bad-nul"} if runtime.engine.dialect.name == "postgresql" else set()
    )
    # Straight to the writer, as a bug or a future route could: the edge is not the only guard.
    runtime.writer.submit(
        [
            _row("good-1"),
            _row("bad-surrogate", "\ud800"),
            _row("good-2"),
            _row("bad-nul", "a\x00b"),  # stored by SQLite, refused by PostgreSQL
            _row("good-3"),
        ]
    )
    _assert_written_and_dead_lettered(client, refused)
    health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert health["checks"]["prediction_log_dead_lettered"] == len(refused)
    assert (
        f"{len(refused)} prediction rows refused by the database were set aside"
        in (health["reason"])
    )
    assert "UnicodeEncodeError" in health["reason"] or "DataError" in health["reason"]
    folder = runtime.writer.dead_letter_dir
    assert folder == tmp_path / "data" / "dead-letter"
    (line,) = [
        json.loads(text)
        for path in folder.glob("*.jsonl")
        for text in path.read_text(encoding="ascii").splitlines()
        if "surrogate" in text
    ]
    assert line["row"]["booking_id"] == "\ud800" and line["error"] and line["at"]

    # The verdict survives a restart; moving the files away clears it.
    client.__exit__(None, None, None)
    client = make_client()
    health = client.get("/health").json()
    assert health["checks"]["prediction_log_dead_lettered"] == len(refused)
    assert "refused by the database" in health["reason"]
    metrics = client.get("/metrics").text
    assert f"prediction_log_dead_lettered_rows {float(len(refused))}" in metrics
    folder.rename(tmp_path / "reviewed")
    health = client.get("/health").json()
    assert health["checks"]["prediction_log_dead_lettered"] == 0
    assert "refused" not in health["reason"]  # only "no champion model yet" is left


def _assert_written_and_dead_lettered(client, refused: set[str]) -> None:
    ids = set(_request_ids(client))
    assert {"good-1", "good-2", "good-3"} <= ids
    assert not ids & refused
    assert client.app.state.runtime.writer.dead_lettered == len(refused)


def test_a_spool_with_a_bad_row_replays_the_rest_at_start(make_client, tmp_path):
    spool = tmp_path / "data" / "spool"
    spool.mkdir(parents=True)
    rows = [_row("good-1"), _row("bad-surrogate", "\ud800"), _row("good-2"), _row("good-3")]
    (spool / "spool-1-1.jsonl").write_text(
        "".join(json.dumps(r, default=str) + "\n" for r in rows), encoding="ascii"
    )
    client = make_client()
    _assert_written_and_dead_lettered(client, {"bad-surrogate"})
    assert list(spool.iterdir()) == []
    health = client.get("/health").json()
    assert health["checks"]["prediction_log_replay_failures"] == 1
    assert health["checks"]["prediction_log_dead_lettered"] == 1
    assert health["status"] == "degraded" and "set aside" in health["reason"]


@pytest.mark.parametrize("batch", [False, True])
def test_a_repeated_request_id_is_one_row_per_call_and_one_outcome_for_all(client, batch):
    if batch:
        r = client.post(
            "/predict/batch",
            json={"features": [[0.5, 0.1], [0.1, 0.5]], "request_ids": ["rep"] * 2},
        )
        assert r.status_code == 200, r.text
    else:
        for x in ([0.5, 0.1], [0.1, 0.5]):  # a client retrying with the same id
            assert (
                client.post("/predict", json={"features": x, "request_id": "rep"}).status_code
                == 200
            )
    assert _request_ids(client).count("rep") == 2
    r = client.post(
        "/api/actuals", json={"actuals": [{"request_id": "rep", "actual": 1}]}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["received"] == 1 and r.json()["updated"] == 2
    runtime = client.app.state.runtime
    with session_scope(runtime.engine) as s:
        rows = s.scalars(select(PredictionLog).where(PredictionLog.request_id == "rep")).all()
    assert [row.actual for row in rows] == [1.0, 1.0]
    assert {row.is_accurate for row in rows} == {True, False}  # each judged on its own answer
