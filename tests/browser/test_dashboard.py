"""The dashboard in a real headless Chromium (Debian's package) against a real uvicorn API.

The API runs as a subprocess with its own SQLite file and MLflow store; the test trains a
delay model, sends predictions, posts their actual outcomes, and checks that the page shows
the numbers the JSON endpoints return, that "Refresh" picks up new traffic, and that the
browser console stays free of errors. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.live import start_api

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
API_KEY = "browser-test-admin-key-0123456789"
ADMIN = {"X-API-Key": API_KEY}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason=f"Debian's chromium and chromium-driver are not installed ({CHROMIUM}, "
        f"{CHROMEDRIVER}): apt-get install -y chromium chromium-driver",
    ),
]

# The page's formatting (api/static/dashboard.js FORMAT): digits after the point per card.
CARDS = {
    "mae": ("mae", 2, 1.0),
    "rmse": ("rmse", 2, 1.0),
    "r2": ("r2", 3, 1.0),
    "accuracy": ("accuracy_rate", 1, 100.0),
    "precision": ("precision", 1, 100.0),
    "recall": ("recall", 1, 100.0),
    "f1": ("f1", 1, 100.0),
    "latency": ("avg_prediction_time_ms", 1, 1.0),
}
# The cards each kind of task shows (the others are hidden).
REGRESSOR_CARDS = {"mae", "rmse", "r2", "accuracy", "latency"}
CLASSIFIER_CARDS = {"accuracy", "precision", "recall", "f1", "latency"}
# The page's default targets (a model's summary gives its own, the limits its alert judges),
# and its orange bands: a "lower" figure up to this multiple of its target, a "higher" one
# this far below it.
DEFAULT_TARGETS = {
    "mae": 3.0,
    "r2": 0.65,
    "accuracy": 0.8,
    "precision": 0.8,
    "recall": 0.8,
    "f1": 0.8,
    "latency": 150.0,
}
ORANGE = {
    "mae": ("lower", 5 / 3),
    "rmse": ("lower", 5 / 3),
    "r2": ("higher", 0.15),
    "accuracy": ("higher", 0.1),
    "precision": ("higher", 0.1),
    "recall": ("higher", 0.1),
    "f1": ("higher", 0.1),
    "latency": ("lower", 2.0),
}
# Errors (actual - predicted, minutes) of the posted outcomes: mostly small, one anomaly (> 5).
OFFSETS = (0.4, -1.1, 1.6, -0.3, 2.4, -0.8, 0.1, 6.5, -1.9, 0.9)


def _wait_until(condition, *, timeout: float, what: str, interval: float = 0.2):
    """Poll until ``condition()`` is truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the page or the server is still starting
            last_exc = exc
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what} (last error: {last_exc!r})")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A real ``uvicorn api.main:app`` on a free loopback port, delay family, test environment."""
    tmp = tmp_path_factory.mktemp("browser_api")
    env = {
        "IA_CONTINU_ENVIRONMENT": "test",
        "IA_CONTINU_DATA_DIR": str(tmp / "data"),
        "IA_CONTINU_API_KEY": API_KEY,
        "IA_CONTINU_FAMILY": "delay",
        "IA_CONTINU_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "IA_CONTINU_MLFLOW_ARTIFACTS_DIR": str(tmp / "mlartifacts"),
        "IA_CONTINU_RATE_LIMIT_PREDICT": "100000/minute",
        "IA_CONTINU_RATE_LIMIT_RETRAIN": "1000/minute",
        "IA_CONTINU_LOG_FLUSH_INTERVAL_MS": "10",
        "IA_CONTINU_CHAMPION_POLL_SECONDS": "0.2",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env = {k: v for k, v in env.items() if k.startswith(("IA_CONTINU_", "MLFLOW_"))}
    server = start_api(env, tmp, timeout=180)
    client = httpx.Client(base_url=server.url, timeout=60)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def _send_traffic(api: httpx.Client, *, prefix: str, rows: int, offset_shift: float = 0.0) -> None:
    """Predictions with known request ids, then their outcomes (prediction + a known error)."""
    predictions = {}
    for i in range(rows):
        features = [
            3.0 + (i * 1.7) % 20,
            float((7 + i) % 24),
            float(i % 7),
            float(i % 3),
            round(((i * 37) % 100) / 100, 2),
        ]
        r = api.post("/predict", json={"features": features, "request_id": f"{prefix}-{i}"})
        assert r.status_code == 200, r.text
        predictions[f"{prefix}-{i}"] = r.json()["prediction"]
    actuals = [
        {"request_id": rid, "actual": round(pred + OFFSETS[n % len(OFFSETS)] + offset_shift, 3)}
        for n, (rid, pred) in enumerate(predictions.items())
    ]
    pending = {a["request_id"] for a in actuals}

    def all_recorded():
        # The prediction log is written in batches just after answering: an outcome for a
        # row not yet written comes back as unknown, so post again until every row is known.
        todo = [a for a in actuals if a["request_id"] in pending]
        r = api.post("/api/actuals", json={"actuals": todo}, headers=ADMIN)
        assert r.status_code == 200, r.text
        unknown = set(r.json().get("unknown_request_ids") or [])
        pending.intersection_update(unknown)
        return not pending

    _wait_until(all_recorded, timeout=30, what="every actual to match a logged prediction")


@pytest.fixture(scope="module")
def trained_api(api):
    r = api.post("/generate", json={"samples": 2000, "seed": 7, "drift": False}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = api.post("/retrain", json={"reason": "browser test"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["promoted"], r.json()
    _wait_until(
        lambda: api.get("/health").json()["checks"]["model_loaded"],
        timeout=30,
        what="the champion to be loaded",
    )
    _send_traffic(api, prefix="first", rows=30)
    return api


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"ia-continu-chromium-{os.getpid()}"
    shutil.rmtree(profile, ignore_errors=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The flags this closed network needs (.library machines note): without the
    # background-networking ones Chromium keeps dialling Google and fills the log.
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _refresh_count(driver) -> int:
    return int(driver.execute_script("return document.body.dataset.refreshCount || '0'"))


def _status(metric: str, value: float | None, targets: dict) -> str:
    if value is None:
        return "unknown"
    good = targets.get(CARDS[metric][0], DEFAULT_TARGETS.get(metric))
    if good is None:
        return "info"
    better, orange = ORANGE[metric]
    warn = good * orange if better == "lower" else good - orange
    if better == "lower":
        return "good" if value < good else "warn" if value < warn else "bad"
    return "good" if value > good else "warn" if value >= warn else "bad"


def _assert_cards_match(driver, summary: dict, cards: set[str] = REGRESSOR_CARDS) -> dict[str, str]:
    """The task's cards (and only they) are shown, each with the API's 24 h value,
    formatted, and the colour its band says."""
    from selenium.webdriver.common.by import By

    metrics = summary["metrics_24h"]
    shown = {}
    for card, (key, digits, scale) in CARDS.items():
        displayed = driver.find_element(By.ID, f"card-{card}").is_displayed()
        assert displayed == (card in cards), (card, displayed)
        if not displayed:
            continue
        value = metrics.get(key)
        node = driver.find_element(By.ID, f"value-{card}")
        text = node.text
        shown[card] = text
        status = driver.find_element(By.ID, f"card-{card}").get_attribute("data-status")
        assert status == _status(card, value, summary.get("targets") or {}), (card, value, status)
        if value is None:
            assert text == "—", (card, text)
            continue
        assert float(node.get_attribute("data-value")) == pytest.approx(value, rel=1e-12), card
        number = float(text.replace("%", "").replace("ms", "").strip())
        # Rounded to the page's digits (JS toFixed and Python round may differ on exact ties).
        assert math.isclose(number, value * scale, abs_tol=0.5 * 10**-digits + 1e-9), (
            card,
            text,
            value,
        )
    count = metrics.get("count")
    assert driver.find_element(By.ID, "count-24h").text == (
        f"{count:,}" if count is not None else "—"
    )
    return shown


def _console_errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _screenshot(driver, name: str, width: int) -> Path:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height + 40, 600))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), path
    return path


def test_dashboard_before_any_model_or_outcome_shows_dashes(api, browser):
    """A fresh deployment: no model, no traffic, no drift check. Nothing throws, every
    unknown value is a dash and every card is grey."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.set_window_size(1280, 900)
    driver.get(str(api.base_url.join("/dashboard")))
    _wait_until(lambda: _refresh_count(driver) >= 1, timeout=30, what="the first render")
    summary = api.get("/api/ml-monitoring/summary").json()
    assert summary["metrics_24h"]["mae"] is None
    _assert_cards_match(driver, summary)
    for card in CARDS:
        assert driver.find_element(By.ID, f"card-{card}").get_attribute("data-status") == "unknown"
    assert driver.find_element(By.ID, "models-champion").text == "—"
    assert driver.find_element(By.ID, "drift-status").text == "no check yet"
    assert not driver.find_element(By.ID, "anomalies-alert").is_displayed()
    assert not driver.find_element(By.ID, "unavailable").is_displayed()
    assert _console_errors(driver) == []


def test_dashboard_shows_api_numbers_refreshes_and_logs_no_errors(trained_api, browser):
    from selenium.webdriver.common.by import By

    api, driver = trained_api, browser
    driver.set_window_size(1280, 900)
    driver.get(str(api.base_url.join("/dashboard")))
    _wait_until(lambda: _refresh_count(driver) >= 1, timeout=30, what="the first render")

    # Every JSON source answered: no "Unavailable" notice.
    notice = driver.find_element(By.ID, "unavailable")
    assert not notice.is_displayed(), notice.text

    summary = api.get("/api/ml-monitoring/summary").json()
    assert summary["metrics_24h"]["count"] >= 30
    assert summary["metrics_24h"]["mae"] is not None
    first = _assert_cards_match(driver, summary)

    # Anomalies alert: one posted error of 6.5 minutes is above the threshold of 5.
    anomalies = api.get("/api/ml-monitoring/anomalies", params={"threshold": 5}).json()
    items = anomalies["anomalies"] if isinstance(anomalies, dict) else anomalies
    assert items, "the 6.5-minute errors should be anomalies"
    alert = driver.find_element(By.ID, "anomalies-alert")
    assert alert.is_displayed()
    assert driver.find_element(By.ID, "anomalies-count").text == str(summary["anomalies_count"])
    assert alert.get_attribute("href").endswith("#anomalies")
    rows = driver.find_elements(By.CSS_SELECTOR, "#anomalies-list tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows] == [
        a["request_id"] for a in items[:50]
    ]

    # Rollout panel against the feature-flag status.
    flags = api.get("/api/feature-flags/status").json()
    assert driver.find_element(By.ID, "rollout-enabled").text == (
        "yes" if flags["config"]["ML_ENABLED"] else "no"
    )
    assert driver.find_element(By.ID, "rollout-percentage").text == (
        f"{flags['config']['ML_TRAFFIC_PERCENTAGE']:.0f} %"
    )
    total = flags["stats"]["total_requests"]
    assert driver.find_element(By.ID, "rollout-total").text == f"{total:,}"
    assert driver.find_element(By.ID, "rollout-health").text == flags["health"]["status"]

    # Models panel against /models.
    models = api.get("/models").json()
    assert driver.find_element(By.ID, "models-champion").text == models["champion_version"]
    version_rows = driver.find_elements(By.CSS_SELECTOR, "#models-versions tbody tr")
    assert len(version_rows) == len(models["versions"]) >= 1
    assert driver.find_elements(By.CSS_SELECTOR, "#models-history li")[0].text.startswith(
        f"promote v{models['champion_version']}"
    )

    # Drift: no check has run in this fresh deployment.
    assert api.get("/api/drift/latest").json() == {"status": "none"}
    assert driver.find_element(By.ID, "drift-status").text == "no check yet"

    # The daily trend has today's point.
    assert driver.find_elements(By.CSS_SELECTOR, "#chart-count rect.bar")
    assert driver.find_elements(By.CSS_SELECTOR, "#chart-mae circle.point")

    assert driver.find_element(By.ID, "last-updated").text != "—"
    assert driver.find_element(By.ID, "auto-refresh").is_selected()
    shot = _screenshot(driver, "dashboard.png", 1280)

    # Manual refresh: switch auto-refresh off (so only the button refreshes), send traffic
    # with larger errors, click, and the cards follow the API.
    driver.set_window_size(1280, 900)
    driver.find_element(By.ID, "auto-refresh").click()
    assert not driver.find_element(By.ID, "auto-refresh").is_selected()
    before = _refresh_count(driver)
    _send_traffic(api, prefix="second", rows=20, offset_shift=2.0)
    new_summary = api.get("/api/ml-monitoring/summary").json()
    assert new_summary["metrics_24h"]["count"] > summary["metrics_24h"]["count"]
    driver.find_element(By.ID, "refresh-btn").click()
    _wait_until(lambda: _refresh_count(driver) > before, timeout=30, what="the manual refresh")
    second = _assert_cards_match(driver, new_summary)
    assert second["mae"] != first["mae"], (first, second)

    # The page logged nothing at error level (failed fetches, exceptions, CSP...).
    assert _console_errors(driver) == []
    assert shot.stat().st_size > 10_000


def test_dashboard_on_a_phone_sized_screen(trained_api, browser):
    from selenium.webdriver.common.by import By

    api, driver = trained_api, browser
    driver.set_window_size(375, 812)
    driver.get(str(api.base_url.join("/dashboard")))
    _wait_until(lambda: _refresh_count(driver) >= 1, timeout=30, what="the first render")
    # Nothing wider than the screen: no sideways scrolling of the page itself.
    inner = driver.execute_script("return window.innerWidth")
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= inner, (scroll, inner)
    for card in CARDS:
        shown = driver.find_element(By.ID, f"card-{card}").is_displayed()
        assert shown == (card in REGRESSOR_CARDS), card
    assert driver.find_element(By.ID, "refresh-btn").is_displayed()
    assert driver.find_element(By.ID, "model-picker").is_displayed()
    _screenshot(driver, "dashboard-phone.png", 375)
    assert _console_errors(driver) == []


def _declared_traffic(api: httpx.Client, model: str, rows: list[dict], actuals: list) -> None:
    """Predictions of a declared model with known request ids, then their outcomes."""
    for n, features in enumerate(rows):
        r = api.post(
            f"/models/{model}/predict", json={"features": features, "request_id": f"{model}-{n}"}
        )
        assert r.status_code == 200, r.text
    pending = {f"{model}-{n}": a for n, a in enumerate(actuals)}

    def all_recorded():
        todo = [{"request_id": rid, "actual": a} for rid, a in pending.items()]
        r = api.post(f"/models/{model}/actuals", json={"actuals": todo}, headers=ADMIN)
        assert r.status_code == 200, r.text
        unknown = set(r.json().get("unknown_request_ids") or [])
        for rid in set(pending) - unknown:
            del pending[rid]
        return not pending

    _wait_until(all_recorded, timeout=30, what=f"every {model} outcome to match its prediction")


def _train_declared(api: httpx.Client, model: str) -> None:
    r = api.post(f"/models/{model}/generate", json={"samples": 600, "seed": 3}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = api.post(f"/models/{model}/retrain", json={"reason": "browser test"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["promoted"], r.text


def _show_model(driver, name: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = _refresh_count(driver)
    Select(driver.find_element(By.ID, "model-picker")).select_by_value(name)
    _wait_until(
        lambda: (
            _refresh_count(driver) > before
            and driver.execute_script("return document.body.dataset.model") == name
        ),
        timeout=30,
        what=f"the page to show {name}",
    )


def test_model_picker_switches_every_panel_and_the_cards_follow_the_task(trained_api, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    api, driver = trained_api, browser
    _train_declared(api, "iris")
    species = ["setosa", "versicolor", "virginica"]
    iris_rows = [
        {
            "sepal_length": 4.6 + (n % 7) * 0.4,
            "sepal_width": 3.0 + (n % 3) * 0.2,
            "petal_length": 1.2 + (n % 6) * 1.0,
            "petal_width": 0.2 + (n % 6) * 0.4,
        }
        for n in range(24)
    ]
    _declared_traffic(api, "iris", iris_rows, [species[min(n % 6 // 2, 2)] for n in range(24)])
    _train_declared(api, "bike_traffic")
    bike_rows = [
        {"hour": 6 + n % 12, "weekday": n % 7, "weather": "rain", "counter": "station"}
        for n in range(20)
    ]
    _declared_traffic(api, "bike_traffic", bike_rows, [40 + 7 * n for n in range(20)])

    driver.set_window_size(1280, 900)
    driver.get(str(api.base_url.join("/dashboard")))
    _wait_until(lambda: _refresh_count(driver) >= 1, timeout=30, what="the first render")
    picker = Select(driver.find_element(By.ID, "model-picker"))
    declared = api.get("/models/declared").json()
    assert [o.get_attribute("value") for o in picker.options] == [d["name"] for d in declared]
    # The default model first: the one the service serves by default (delay here).
    assert picker.first_selected_option.get_attribute("value") == "delay"
    assert driver.execute_script("return document.body.dataset.model") == "delay"

    # iris, a multiclass classifier: accuracy and macro precision/recall/F1, no MAE/RMSE/R².
    _show_model(driver, "iris")
    summary = api.get("/models/iris/monitoring/summary").json()
    assert summary["metrics_24h"]["f1"] is not None and summary["metrics_24h"]["mae"] is None
    _assert_cards_match(driver, summary, CLASSIFIER_CARDS)
    assert driver.find_element(By.ID, "task").text == "multiclass"
    assert driver.find_element(By.CSS_SELECTOR, "#card-f1 .macro").is_displayed()
    assert driver.find_element(By.ID, "chart-f1").is_displayed()
    assert not driver.find_element(By.ID, "chart-mae").is_displayed()
    iris_models = api.get("/models/iris").json()
    assert driver.find_element(By.ID, "models-champion").text == iris_models["champion_version"]
    assert driver.find_element(By.ID, "models-name").text == iris_models["registered_model"]
    flags = api.get("/models/iris/rollout/status").json()
    total = flags["stats"]["total_requests"]
    assert driver.find_element(By.ID, "rollout-total").text == f"{total:,}"
    assert (
        driver.find_element(By.ID, "link-summary")
        .get_attribute("href")
        .endswith("/models/iris/monitoring/summary")
    )
    assert driver.current_url.endswith("?model=iris")
    _screenshot(driver, "dashboard-iris.png", 1280)

    # bike_traffic, a regressor: MAE, RMSE and R², no precision/recall/F1.
    driver.set_window_size(1280, 900)
    _show_model(driver, "bike_traffic")
    summary = api.get("/models/bike_traffic/monitoring/summary").json()
    assert summary["metrics_24h"]["mae"] is not None and "f1" not in summary["metrics_24h"]
    _assert_cards_match(driver, summary, REGRESSOR_CARDS)
    assert driver.find_element(By.ID, "value-rmse").text != "—"
    # Its bands are its own limits (bike_traffic.toml: max_rmse = 30), not the delay model's.
    assert summary["targets"]["rmse"] == 30.0
    rmse_target = driver.find_element(By.CSS_SELECTOR, "#card-rmse .target").text
    assert rmse_target.startswith("target < 30.00"), rmse_target
    assert driver.find_element(By.ID, "task").text == "regression"
    assert driver.find_element(By.ID, "chart-mae").is_displayed()

    # The choice is in the address: a reload (or a shared link) shows the same model.
    driver.refresh()
    _wait_until(
        lambda: driver.execute_script("return document.body.dataset.model") == "bike_traffic",
        timeout=30,
        what="the reloaded page to show bike_traffic",
    )
    assert not driver.find_element(By.ID, "unavailable").is_displayed()
    assert _console_errors(driver) == []
