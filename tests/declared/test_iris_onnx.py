"""iris, trained from scikit-learn's bundled copy through the API, is served by onnxruntime
and answers exactly what the registered scikit-learn pipeline answers, on all 150 rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

from ia_continu.catalog import model_settings
from ia_continu.learn import registry
from tests.conftest import ADMIN

CLASSES = np.array(["setosa", "versicolor", "virginica"])


def test_iris_served_through_onnx_answers_like_scikit_learn(client, settings):
    r = client.post("/models/iris/generate", json={"samples": 300, "seed": 3}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post("/models/iris/retrain", headers=ADMIN)
    assert r.status_code == 200, r.text
    trained = r.json()
    assert trained["promoted"] is True and trained["metrics"]["accuracy"] >= 0.9

    listed = client.get("/models/iris").json()
    assert listed["serving_engine"] == "onnxruntime", listed
    assert listed["onnx"]["converted"] is True and listed["served_version"] == "1"

    bunch = load_iris()
    X = np.asarray(bunch.data, dtype=np.float64)
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    # Half the rows by position, half by name: both shapes reach the same scorer.
    rows: list = [
        list(map(float, x)) if i % 2 else dict(zip(names, map(float, x), strict=True))
        for i, x in enumerate(X)
    ]
    r = client.post("/models/iris/predict/batch", json={"features": rows})
    assert r.status_code == 200, r.text
    served = r.json()
    assert served["count"] == 150 and set(served["served_by"]) == {"ml"}
    assert served["model_version"] == "1"

    pipeline = registry.load_pipeline(model_settings(settings, "iris"), "1")
    proba = pipeline.predict_proba(X)
    # Inside the loop the classes are indices 0..2; the API answers their labels.
    expected_labels = CLASSES[pipeline.predict(X).astype(int)]
    assert served["predictions"] == expected_labels.tolist()
    # The API rounds confidences to 6 decimals; ONNX and scikit-learn agree far below that.
    np.testing.assert_allclose(served["confidence"], proba.max(axis=1), atol=1e-6, rtol=0)
    # And the model learnt the flowers: the bundled labels, nearly all right.
    accuracy = float(np.mean(np.array(served["predictions"]) == CLASSES[bunch.target]))
    assert accuracy >= 0.95


def test_the_run_keeps_the_declaration_and_the_checked_onnx_model(client, settings, tmp_path):
    import onnxruntime as ort

    from ia_continu.catalog import catalog
    from ia_continu.declared.schema import Declaration
    from ia_continu.learn.tracking import mlflow_client

    r = client.post("/models/iris/generate", json={"samples": 300, "seed": 4}, headers=ADMIN)
    assert r.status_code == 200, r.text
    run_id = client.post("/models/iris/retrain", headers=ADMIN).json()["run_id"]
    mlflow = mlflow_client(model_settings(settings, "iris"))
    logged = {f.path for f in mlflow.list_artifacts(run_id)} | {
        f.path for f in mlflow.list_artifacts(run_id, "onnx")
    }
    assert {"declaration.json", "onnx/model.onnx", "onnx/check.json"} <= logged

    # The declaration as it was: it parses back into the very declaration that trained it.
    path = mlflow.download_artifacts(run_id, "declaration.json", str(tmp_path))
    stored = Declaration.model_validate_json(Path(path).read_text(encoding="utf-8"))
    assert stored.model_dump() == catalog().declaration("iris").model_dump()

    # The ONNX file answers like the registered pipeline.
    onnx_path = mlflow.download_artifacts(run_id, "onnx/model.onnx", str(tmp_path))
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    X = np.asarray(load_iris().data, dtype=np.float64)
    labels = session.run(None, {"X": X})[0]
    pipeline = registry.load_pipeline(model_settings(settings, "iris"), "1")
    np.testing.assert_array_equal(np.asarray(labels).astype(int), pipeline.predict(X))
