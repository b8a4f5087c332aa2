"""The README's "Bring your own model" walk-through, step by step, on the files under
``examples/``: the declaration loads, the CSV imports, the model trains and serves through
ONNX, answers by name with labels, takes outcomes as labels and shows them in its metrics.
If this test breaks, the README's example is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ia_continu.catalog import reload_catalog
from tests.conftest import ADMIN

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The customers of the README's two predictions.
LEAVING = {"tenure_months": 2, "monthly_charges": 110.5, "contract": "monthly", "support_calls": 4}
STAYING = {
    "tenure_months": 60,
    "monthly_charges": 40.0,
    "contract": "two_year",
    "support_calls": 0,
    "paperless_billing": True,
}


@pytest.fixture
def example_client(make_client):
    reload_catalog()  # the catalog is cached per folder: read examples/models afresh
    yield make_client(models_dir=EXAMPLES / "models")
    reload_catalog()


def test_the_committed_data_is_what_the_script_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_data", EXAMPLES / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (EXAMPLES / "data" / "churn.csv").read_text(encoding="utf-8")
    assert module.make().to_csv(index=False) == committed


def test_the_readme_shows_these_steps():
    section = README.split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
    for step in (
        "IA_CONTINU_MODELS_DIR=examples/models",
        "dataset import examples/data/churn.csv --model churn",
        "/models/churn/datasets",
        "/models/churn/retrain",
        "/models/churn/predict",
        "/models/churn/actuals",
        "/models/churn/monitoring/metrics",
    ):
        assert step in section, step
    # The prediction bodies in the README are the ones this test sends.
    shown = re.findall(r'"tenure_months": (\d+)', section)
    assert shown[:2] == ["2", "60"], shown


def test_bring_your_own_model_walkthrough(example_client):
    client = example_client
    declared = {m["name"]: m for m in client.get("/models/declared").json()}
    assert declared["churn"]["builtin"] is False and declared["churn"]["task"] == "binary"

    # ia-continu dataset import examples/data/churn.csv --model churn (what it sends)
    body = (EXAMPLES / "data" / "churn.csv").read_bytes()
    r = client.post(
        "/models/churn/datasets?name=churn.csv",
        content=body,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3000 and r.json()["model"] == "churn"

    r = client.post("/models/churn/retrain", headers=ADMIN)
    assert r.status_code == 200, r.text
    trained = r.json()
    assert trained["promoted"] is True and trained["training_samples"] == 2400
    # Well above the 65 % that always answering "stayed" gets.
    assert trained["metrics"]["accuracy"] >= 0.75, trained["metrics"]
    listed = client.get("/models/churn").json()
    assert listed["serving_engine"] == "onnxruntime" and listed["champion_version"] == "1"

    r = client.post("/models/churn/predict", json={"features": LEAVING, "request_id": "cust-1"})
    assert r.status_code == 200, r.text
    assert r.json()["prediction"] == "left" and r.json()["served_by"] == "ml"
    r = client.post("/models/churn/predict", json={"features": STAYING, "request_id": "cust-2"})
    assert r.status_code == 200, r.text
    assert r.json()["prediction"] == "stayed"

    outcomes = {
        "actuals": [
            {"request_id": "cust-1", "actual": "left"},
            {"request_id": "cust-2", "actual": "left"},
        ]
    }
    r = client.post("/models/churn/actuals", json=outcomes, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 2

    r = client.get("/models/churn/monitoring/metrics")
    assert r.status_code == 200, r.text
    metrics = r.json()
    assert metrics["family"] == "churn" and metrics["labeled_count"] == 2
    assert metrics["accuracy_rate"] == 0.5

    # A value the declaration does not allow: a 422 naming the feature and the values.
    wrong = {**LEAVING, "contract": "weekly"}
    r = client.post("/models/churn/predict", json={"features": wrong})
    assert r.status_code == 422, r.text
    assert "contract: 'weekly' is not one of 'monthly', 'one_year', 'two_year'" in r.text


def test_the_walkthrough_with_the_command_line_on_a_live_server(tmp_path):
    """The same steps as a user runs them: a real server started with the example's
    folder, the CLI's ``dataset import`` and ``models list --model``, curl's requests."""
    import httpx

    from tests.cli.conftest import live_api, run_cli

    key = "examples-live-key-0123456789"
    folder = str(EXAMPLES / "models")
    with live_api(tmp_path, key, IA_CONTINU_MODELS_DIR=folder) as (env, url):
        r = run_cli(env, "dataset", "import", "examples/data/churn.csv", "--model", "churn")
        assert r.returncode == 0, r.stderr
        assert "3000" in r.stdout.replace(",", ""), r.stdout
        admin = {"X-API-Key": key}
        r = httpx.post(f"{url}/models/churn/retrain", headers=admin, timeout=120)
        assert r.status_code == 200 and r.json()["promoted"] is True, r.text
        r = httpx.post(f"{url}/models/churn/predict", json={"features": LEAVING})
        assert r.status_code == 200 and r.json()["prediction"] == "left", r.text
        r = run_cli(env, "models", "list", "--model", "churn")
        assert r.returncode == 0, r.stderr
        assert "Registry of churn" in r.stdout and "champion          : 1" in r.stdout
        assert any(line.startswith("  churn ") for line in r.stdout.splitlines()), r.stdout
