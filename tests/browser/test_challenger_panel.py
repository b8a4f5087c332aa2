"""The dashboard's challenger panel in a real headless Chromium against a real uvicorn API
under a canary policy: champion and challenger side by side with the numbers GET
/challenger gives, the verdict with its reason, the recent steps; an operator's step shows
after a refresh; the console stays free of errors."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.test_dashboard import (  # noqa: F401  (browser: a fixture)
    _console_errors,
    _refresh_count,
    _screenshot,
    _wait_until,
    browser,
    pytestmark,
)
from tests.live import start_api

API_KEY = "browser-challenger-key-0123456789"
ADMIN = {"X-API-Key": API_KEY}
ROWS = [[0.3, -0.2], [1.0, 0.5], [-0.4, 0.9], [0.1, 0.1], [0.8, -0.7]] * 40  # 200 rows


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser_challenger")
    env = {
        "IA_CONTINU_ENVIRONMENT": "test",
        "IA_CONTINU_DATA_DIR": str(tmp / "data"),
        "IA_CONTINU_API_KEY": API_KEY,
        "IA_CONTINU_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "IA_CONTINU_MLFLOW_ARTIFACTS_DIR": str(tmp / "mlartifacts"),
        "IA_CONTINU_RATE_LIMIT_RETRAIN": "1000/minute",
        "IA_CONTINU_LOG_FLUSH_INTERVAL_MS": "10",
        "IA_CONTINU_CHAMPION_POLL_SECONDS": "0.2",
        "IA_CONTINU_CHALLENGER_POLICY": "canary",
        "IA_CONTINU_CANARY_STEPS": "[50, 100]",
        "IA_CONTINU_CHALLENGER_MIN_LABELLED": "10",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    server = start_api(env, tmp, timeout=180)
    client = httpx.Client(base_url=server.url, timeout=60)
    try:
        for seed in (1, 2):
            r = client.post("/generate", json={"samples": 1000, "seed": seed}, headers=ADMIN)
            assert r.status_code == 200, r.text
            r = client.post("/retrain", json={}, headers=ADMIN)
            assert r.status_code == 200, r.text
        assert r.json()["status"] == "challenger", r.json()
        _wait_until(
            lambda: client.get("/challenger").json()["served_challenger"] == "2",
            timeout=30,
            what="the challenger to be served",
        )
        _traffic(client)
        yield client
    finally:
        client.close()
        server.stop()


def _traffic(api: httpx.Client) -> None:
    """Rows answered by both arms, and their outcomes (the challenger right more often)."""
    ids = [f"panel-{i}" for i in range(len(ROWS))]
    r = api.post("/predict/batch", json={"features": ROWS, "request_ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    versions = body["model_versions"]
    assert set(versions) == {"1", "2"}
    actuals = [
        {"request_id": rid, "actual": int(p) if (v == "2" or i % 2) else 1 - int(p)}
        for i, (rid, p, v) in enumerate(zip(ids, body["predictions"], versions, strict=True))
    ]
    pending = {a["request_id"] for a in actuals}

    def all_recorded():
        todo = [a for a in actuals if a["request_id"] in pending]
        r = api.post("/api/actuals", json={"actuals": todo}, headers=ADMIN)
        assert r.status_code == 200, r.text
        pending.intersection_update(set(r.json().get("unknown_request_ids") or []))
        return not pending

    _wait_until(all_recorded, timeout=30, what="every outcome to match its prediction")


def _text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def test_both_arms_side_by_side_with_the_verdict(api, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    driver = browser
    driver.set_window_size(1280, 900)
    driver.get(str(api.base_url.join("/dashboard")))
    _wait_until(lambda: _refresh_count(driver) >= 1, timeout=30, what="the first render")
    assert not driver.find_element(By.ID, "unavailable").is_displayed()

    status = api.get("/challenger").json()
    c = status["comparison"]
    assert driver.find_element(By.ID, "challenger").get_attribute("data-state") == "canary"
    assert driver.find_element(By.ID, "challenger-live").is_displayed()
    assert not driver.find_element(By.ID, "challenger-none").is_displayed()
    assert _text(driver, "challenger-policy").startswith("canary · canary steps 50 % → 100 %")
    assert (_text(driver, "arm-champion-version"), _text(driver, "arm-challenger-version")) == (
        "v1",
        "v2",
    )
    assert _text(driver, "arm-champion-share") == "50 % of ML traffic"
    assert _text(driver, "arm-challenger-share") == "canary: 50 % of ML traffic"
    for side in ("champion", "challenger"):
        figures = c[side]
        assert _text(driver, f"arm-{side}-rows") == f"{figures['rows']:,}"
        assert _text(driver, f"arm-{side}-labelled") == f"{figures['labelled']:,}"
        cell = driver.find_element(By.ID, f"arm-{side}-metric")
        assert float(cell.get_attribute("data-value")) == pytest.approx(figures["metric"])
        assert cell.text == f"{figures['metric'] * 100:.1f} %"
    # Beside the realised metric, each version's CBPE estimate of the last 24 h.
    estimates = api.get("/api/ml-monitoring/estimates", params={"hours": 24}).json()
    by_version = {v["model_version"]: v["estimated"] for v in estimates["versions"]}
    assert by_version.get("1") is not None and by_version.get("2") is not None, estimates
    for side, version in (("champion", "1"), ("challenger", "2")):
        assert _text(driver, f"arm-{side}-estimated") == f"{by_version[version] * 100:.1f} %"
    assert _text(driver, "arm-estimate-name") == "accuracy estimated (cbpe, 24 h)"
    assert c["metric"] == "accuracy"
    assert _text(driver, "arm-metric-name") == "accuracy (realised)"
    # The challenger was right on every row, the champion on half: it is marked better.
    better = driver.find_element(By.ID, "arm-challenger-metric").get_attribute("data-better")
    assert c["challenger"]["metric"] > c["champion"]["metric"] and better == "yes"

    badge = driver.find_element(By.ID, "challenger-verdict")
    assert badge.text == c["verdict"]
    expected = {"advance": "good", "hold": "warn", "abort": "bad"}[c["verdict"]]
    assert badge.get_attribute("data-status") == expected
    assert _text(driver, "challenger-reason") == c["reason"]
    assert _text(driver, "challenger-test") == c["test"]
    assert c["p_value"] is not None and _text(driver, "challenger-p") != "—"
    assert _text(driver, "challenger-effect").startswith("+")
    steps = driver.find_elements(By.CSS_SELECTOR, "#challenger-steps li")
    assert [s.get_attribute("data-event") for s in steps] == ["challenger_started"]
    _screenshot(driver, "dashboard-challenger.png", 1280)

    # An operator's step: after a refresh the panel shows the new share and the step.
    driver.set_window_size(1280, 900)
    r = api.post("/challenger/advance", json={"reason": "browser test"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    before = _refresh_count(driver)
    driver.find_element(By.ID, "refresh-btn").click()
    _wait_until(lambda: _refresh_count(driver) > before, timeout=30, what="the refresh")
    assert _text(driver, "arm-challenger-share") == "canary: 100 % of ML traffic"
    steps = driver.find_elements(By.CSS_SELECTOR, "#challenger-steps li")
    assert [s.get_attribute("data-event") for s in steps] == [
        "challenger_advanced",
        "challenger_started",
    ]
    assert "operator override: browser test" in steps[0].text

    # Promoted: no arm live, the last one's end and the steps stay readable.
    r = api.post("/challenger/advance", json={"reason": "ship"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["outcome"] == "promoted", r.text
    before = _refresh_count(driver)
    driver.find_element(By.ID, "refresh-btn").click()
    _wait_until(lambda: _refresh_count(driver) > before, timeout=30, what="the refresh")
    assert driver.find_element(By.ID, "challenger").get_attribute("data-state") == "none"
    assert not driver.find_element(By.ID, "challenger-live").is_displayed()
    assert _text(driver, "challenger-none").startswith("no challenger live · last: v2 promoted")
    assert driver.find_element(By.ID, "challenger-verdict").text == "advance"
    assert _console_errors(driver) == []
