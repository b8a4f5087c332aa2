"""HTTP details: HEAD /health, the batch's media type, the dashboard's security headers."""

from __future__ import annotations

import json


def test_head_health_answers_like_get_without_a_body(client):
    # Uptime Kuma's HTTP monitor may use HEAD.
    r = client.head("/health")
    assert r.status_code == client.get("/health").status_code == 200
    assert r.content == b""
    assert r.headers["content-type"] == "application/json"


def test_head_health_is_not_in_the_schema(client):
    assert set(client.get("/openapi.json").json()["paths"]["/health"]) == {"get"}


def test_predict_batch_accepts_only_json(client):
    rows = json.dumps({"features": [[0.5, 0.5]]})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = client.post("/predict/batch", content=rows, headers={"Content-Type": content_type})
        assert r.status_code == 415, (content_type, r.text)
        assert "application/json" in r.json()["detail"]
    r = client.post("/predict/batch", content=rows.encode())  # no Content-Type at all
    assert r.status_code == 415 and "no Content-Type" in r.json()["detail"]
    r = client.post(
        "/predict/batch", content=rows, headers={"Content-Type": "Application/JSON; charset=utf-8"}
    )
    assert r.status_code == 200, r.text


def test_dashboard_is_served_with_a_content_security_policy(client):
    r = client.get("/dashboard")
    assert r.status_code == 200
    csp = dict(
        part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
    )
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline script, no eval
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"
    # The page keeps within its policy: its own CSS and JS only, nothing inline.
    page = r.text
    assert "<script>" not in page and "style=" not in page and "onclick" not in page
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        a = client.get(asset)
        assert a.status_code == 200 and a.headers["x-content-type-options"] == "nosniff"
