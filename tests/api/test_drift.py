from __future__ import annotations

from datetime import timedelta

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import DriftReport, utcnow


def _report(family: str, *, drift: bool, version: str, at) -> DriftReport:
    return DriftReport(
        family=family,
        model_version=version,
        dataset_drift=drift,
        drift_share=0.5 if drift else 0.0,
        drifted_features=["feature1"] if drift else [],
        feature_scores={"feature1": 0.31, "feature2": 0.02},
        reference_rows=800,
        current_rows=200,
        report_path="/reports/drift.html",
        created_at=at,
    )


def test_latest_drift_before_any_check(client):
    r = client.get("/api/drift/latest")
    assert r.status_code == 200
    assert r.json() == {"status": "none"}


def test_latest_drift_is_the_newest_row_of_the_served_family(client):
    runtime = client.app.state.runtime
    family = runtime.settings.family
    now = utcnow()
    with session_scope(runtime.engine) as session:
        session.add(_report(family, drift=False, version="1", at=now - timedelta(hours=2)))
        session.add(_report(family, drift=True, version="2", at=now - timedelta(minutes=5)))
        session.add(_report("other-family", drift=False, version="9", at=now))
    body = client.get("/api/drift/latest").json()
    assert body["status"] == "drift" and body["dataset_drift"] is True
    assert body["model_version"] == "2"
    assert body["drifted_features"] == ["feature1"]
    assert body["feature_scores"] == {"feature1": 0.31, "feature2": 0.02}
    assert (body["reference_rows"], body["current_rows"]) == (800, 200)
    assert body["report_path"] == "/reports/drift.html"
    # As stored: UTC without an offset.
    assert body["created_at"] == (now - timedelta(minutes=5)).isoformat()


def test_dashboard_page_and_assets_are_served(client):
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        assert f'"{asset}"' in page.text
        r = client.get(asset)
        assert r.status_code == 200 and r.text.strip()
    # No third-party origin anywhere: everything the page loads ships with the project.
    for text in (page.text, client.get("/static/dashboard.js").text):
        assert "://" not in text.replace("http://www.w3.org/2000/svg", "")
