"""``POST /api/actuals`` end to end: predict, post outcomes, read them back in the metrics."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN


def test_outcomes_join_predictions_by_request_and_booking(trained_client):
    client = trained_client
    client.post("/predict", json={"features": [1.0, -1.0], "request_id": "a1"})
    client.post("/predict", json={"features": [-1.0, 1.0], "request_id": "a2", "booking_id": "B-7"})
    payload = {
        "actuals": [
            {"request_id": "a1", "actual": 1},
            {"booking_id": "B-7", "actual": 1},
            {"request_id": "ghost", "actual": 0},
        ]
    }
    r = client.post("/api/actuals", json=payload, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "received": 3,
        "updated": 2,
        "unknown_request_ids": ["ghost"],
        "unknown_booking_ids": [],
    }
    # Idempotent.
    assert client.post("/api/actuals", json=payload, headers=ADMIN).json()["updated"] == 2

    metrics = client.get("/api/ml-monitoring/metrics?hours=1").json()
    assert metrics["count"] == 2 and metrics["labeled_count"] == 2
    assert metrics["accuracy_rate"] in (0.0, 0.5, 1.0)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"actuals": [{"actual": 1}]}, "request_id or a booking_id"),
        ({"actuals": [{"request_id": "x", "actual": "NaN"}]}, "finite number"),
        ({"actuals": [{"request_id": "x"}]}, "Field required"),
        ({"actuals": []}, "at least 1 item"),
        ({"actuals": [{"request_id": "", "actual": 1}]}, "at least 1 character"),
        # The served model's domain (InvalidActual, mapped to 422 once, in api/errors.py).
        ({"actuals": [{"request_id": "x", "actual": 2}]}, "a label: 0 or 1"),
    ],
)
def test_malformed_outcomes_are_422(client, payload, fragment):
    r = client.post("/api/actuals", json=payload, headers=ADMIN)
    assert r.status_code == 422
    assert fragment in r.text


def test_too_many_items_is_413(make_client):
    client = make_client(max_actuals_per_call=2)
    items = [{"request_id": f"r{i}", "actual": 1} for i in range(3)]
    r = client.post("/api/actuals", json={"actuals": items}, headers=ADMIN)
    assert r.status_code == 413 and "at most 2" in r.json()["detail"]


def test_outcomes_are_committed_before_the_answer_is_sent(client, engine):
    """A 200 for outcomes means they are in the database: the session commits before the
    response starts (FastAPI's default would commit after the answer has gone out)."""
    import json

    from sqlalchemy import text

    from tests.conftest import ADMIN

    r = client.post("/predict", json={"features": [0.4, -1.1], "request_id": "commit-first"})
    assert r.status_code == 200, r.text
    body = json.dumps({"actuals": [{"request_id": "commit-first", "actual": 1}]}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/actuals",
        "raw_path": b"/api/actuals",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-api-key", ADMIN["X-API-Key"].encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    seen: dict[str, object] = {}

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            # Another connection, at the instant the answer starts: the outcome must be there.
            with engine.connect() as conn:
                seen["actual"] = conn.execute(
                    text("SELECT actual FROM prediction_log WHERE request_id = 'commit-first'")
                ).scalar()

    async def call() -> None:
        await client.app(scope, receive, send)

    client.portal.call(call)
    assert seen == {"status": 200, "actual": 1.0}
