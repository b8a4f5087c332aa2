"""A declared model scored by ONNX Runtime is served from its served form too: the same
answers as the version loaded from MLflow (factors, fallback, realignment included), and an
API process serving it loads neither MLflow, skops, scikit-learn, scipy nor pandas. A version
scikit-learn scores has no form and is still loaded from MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select, update

from ia_continu.catalog import model_settings
from ia_continu.declared.explain import compile_explainer
from ia_continu.declared.family import (
    CONFIDENCE_ATTR,
    FALLBACK_ATTR,
    FEATURES_ATTR,
    FORM_KIND,
    ONNX_ATTR,
    ONNX_REPORT_ATTR,
    DeclaredFamily,
)
from ia_continu.declared.onnx import OnnxScorer
from ia_continu.errors import VersionNeedsFeature
from ia_continu.families import get_family
from ia_continu.serve import forms
from ia_continu.serve.champion import ModelHolder
from ia_continu.serve.forms import ServingForm
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ServingFormRecord
from tests.conftest import ADMIN
from tests.live import run_python

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ROOT / "ia_continu" / "declared" / "builtin"
BIKE = {"hour": 8, "weekday": 1, "weather": "rain", "counter": "station"}


def _fitted(name: str, n: int = 1500) -> tuple[DeclaredFamily, object, np.ndarray]:
    family = get_family(name)
    assert isinstance(family, DeclaredFamily)
    X, y = family.sample(n, rng=np.random.default_rng(5))
    cut = int(n * 0.8)
    pipeline = family.build_pipeline().fit(X[:cut], family.fit_target(y[:cut]))
    pred = family.predict_values(pipeline, X[cut:])
    family.after_fit(pipeline, y[cut:], pred, X_hold=X[cut:], y_train=y[:cut])
    return family, pipeline, X[cut:]


def _through_the_database(form: ServingForm) -> ServingForm:
    record = ServingFormRecord(kind=form.kind, meta=form.meta, arrays=form.array_bytes())
    return ServingForm.from_record(record)


@pytest.mark.parametrize("name", ["bike_traffic", "iris"])
def test_the_form_answers_exactly_as_the_onnx_pipeline(name: str) -> None:
    family, pipeline, X = _fitted(name)
    model = getattr(pipeline, ONNX_ATTR, None)
    assert model, "the conversion was verified at training"
    form = family.serving_form(pipeline)
    assert form is not None and form.kind == FORM_KIND
    got = family.scorer_from_form(_through_the_database(form))(X)

    # What the pipeline's own numbers give, computed here without the form.
    classes = None if family.classes is None else np.arange(len(family.classes))
    onnx = OnnxScorer(model, classes=classes, has_proba=classes is not None)
    labels, proba = onnx.run(X)
    factors = compile_explainer(pipeline, getattr(pipeline, FEATURES_ATTR))
    assert factors is not None
    if family.classes is None:
        assert np.array_equal(got.prediction, labels)
        assert np.array_equal(got.confidence, np.full(len(X), getattr(pipeline, CONFIDENCE_ATTR)))
        assert got.risk_level == family.compile_scorer(pipeline)(X).risk_level
        np.testing.assert_allclose(got.prediction, pipeline.predict(X), rtol=1e-4)
    else:
        assert proba is not None
        fitted = np.asarray(pipeline.classes_, dtype=float)
        assert np.array_equal(got.prediction, fitted[proba.argmax(axis=1)])
        assert np.array_equal(got.confidence, proba.max(axis=1))
        np.testing.assert_allclose(proba, pipeline.predict_proba(X), atol=1e-4)
    assert got.contributing_factors == factors(X, got.prediction)
    assert got.contributing_factors and all(got.contributing_factors)
    assert form.meta["estimator"] == type(pipeline.steps[-1][1]).__name__
    assert form.meta["onnx"] == getattr(pipeline, ONNX_REPORT_ATTR)

    # compile_scorer goes through the form: one code path.
    compiled = family.compile_scorer(pipeline)(X)
    assert np.array_equal(compiled.prediction, got.prediction)
    assert compiled.contributing_factors == got.contributing_factors

    # The fitted fallback value reaches the family from the form as from the pipeline.
    other = get_family(name)
    assert isinstance(other, DeclaredFamily)
    other.adopt_form(form)
    family.adopt(pipeline)
    assert other.fallback_value == family.fallback_value == getattr(pipeline, FALLBACK_ATTR)


def test_a_version_scikit_learn_scores_has_no_form() -> None:
    family, pipeline, X = _fitted("bike_traffic", n=400)
    delattr(pipeline, ONNX_ATTR)
    assert family.serving_form(pipeline) is None
    assert family.serving_engine(pipeline) == "sklearn"
    got = family.compile_scorer(pipeline)(X)
    assert np.array_equal(got.prediction, pipeline.predict(X))


def test_a_form_the_declaration_no_longer_fits_raises_as_the_pipeline_does() -> None:
    family, pipeline, _ = _fitted("bike_traffic", n=400)
    form = family.serving_form(pipeline)
    assert form is not None

    def both(**meta: object) -> tuple[str, str]:
        changed = ServingForm(form.kind, form.arrays, {**form.meta, **meta})
        with pytest.raises(VersionNeedsFeature) as from_form:
            family.scorer_from_form(_through_the_database(changed))
        for attr, value in (("features", FEATURES_ATTR), ("categories", "ia_continu_categories")):
            setattr(pipeline, value, changed.meta[attr])
        with pytest.raises(VersionNeedsFeature) as from_pipeline:
            family.compile_scorer(pipeline)
        return str(from_form.value), str(from_pipeline.value)

    a, b = both(features=[*form.meta["features"], "rain_mm"])
    assert a == b and "rain_mm" in a
    weather = list(reversed(form.meta["categories"]["weather"]))
    a, b = both(categories={**form.meta["categories"], "weather": weather})
    assert a == b and "weather" in a

    # Another feature order: the matrix's columns are picked back into the version's own.
    family2, pipeline2, X2 = _fitted("bike_traffic", n=400)
    form2 = family2.serving_form(pipeline2)
    assert form2 is not None
    order = list(form2.meta["features"])
    reordered = ServingForm(form2.kind, form2.arrays, {**form2.meta, "features": order})
    family2.feature_names = tuple(reversed(order))  # as if the declaration had been reordered
    got = family2.scorer_from_form(reordered)(X2[:, ::-1])
    family2.feature_names = tuple(order)
    assert np.array_equal(got.prediction, family2.scorer_from_form(form2)(X2).prediction)


def _train(client, name: str) -> str:
    r = client.post(f"/models/{name}/generate", json={"samples": 600, "seed": 3}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post(f"/models/{name}/retrain", json={"reason": "test"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return str(r.json()["champion_version"])


def test_the_holder_serves_bike_traffic_from_its_form_as_from_mlflow(client, settings) -> None:
    version = _train(client, "bike_traffic")
    runtime = client.app.state.runtime
    view = model_settings(settings, "bike_traffic")
    with session_scope(runtime.engine) as session:
        assert forms.read(session, "bike_traffic", version) is not None  # kept at registration

    lean = ModelHolder(view, runtime.engine)
    lean.family.fallback_value = -1.0  # not fitted yet, as in a fresh process
    lean.refresh(force=True)
    adopted = lean.family.fallback_value
    served = lean.current
    assert served is not None and served.pipeline is None and served.form is not None
    assert (served.engine, served.estimator) == ("onnxruntime", "RandomForestRegressor")

    with session_scope(runtime.engine) as session:
        session.execute(delete(ServingFormRecord))
    full = ModelHolder(view, runtime.engine)
    full.refresh(force=True)
    loaded = full.current
    assert loaded is not None and loaded.pipeline is not None  # from MLflow, form written
    assert (loaded.engine, loaded.estimator) == (served.engine, served.estimator)
    assert loaded.onnx == served.onnx and served.onnx is not None and served.onnx["converted"]
    assert adopted == getattr(loaded.pipeline, FALLBACK_ATTR) == full.family.fallback_value

    X, _ = lean.family.sample(300, rng=np.random.default_rng(11))
    a, b = served.score(X), loaded.score(X)
    assert np.array_equal(a.prediction, b.prediction)
    assert np.array_equal(a.confidence, b.confidence)
    assert a.risk_level == b.risk_level
    assert a.contributing_factors == b.contributing_factors and a.contributing_factors

    # A stored form the declaration no longer fits fails the load as MLflow's copy would,
    # without loading it.
    with session_scope(runtime.engine) as session:
        record = session.scalars(select(ServingFormRecord)).one()
        meta = {**record.meta, "features": [*record.meta["features"], "rain_mm"]}
        session.execute(update(ServingFormRecord).values(meta=meta))
    stale = ModelHolder(view, runtime.engine)
    stale.refresh(force=True)
    assert stale.current is None and stale.load_error is not None
    assert "VersionNeedsFeature" in stale.load_error and "rain_mm" in stale.load_error


def test_a_declared_version_without_onnx_still_loads_from_mlflow(make_client, tmp_path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    text = (BUILTIN / "bike_traffic.toml").read_text(encoding="utf-8")
    text = text.replace('name = "bike_traffic"\ndescription', 'name = "bike_hgb"\ndescription')
    text = text.replace(
        'class = "sklearn.ensemble.RandomForestRegressor"\n'
        "params = { n_estimators = 100, min_samples_leaf = 2, random_state = 0 }",
        'class = "sklearn.ensemble.HistGradientBoostingRegressor"\nparams = { max_iter = 20 }',
    )
    assert "bike_hgb" in text and "HistGradientBoosting" in text
    (folder / "bike_hgb.toml").write_text(text, encoding="utf-8")
    client = make_client(models_dir=folder)
    version = _train(client, "bike_hgb")
    runtime = client.app.state.runtime
    with session_scope(runtime.engine) as session:
        assert forms.read(session, "bike_hgb", version) is None
    holder = ModelHolder(model_settings(runtime.settings, "bike_hgb"), runtime.engine)
    holder.refresh(force=True)
    served = holder.current
    assert served is not None and served.pipeline is not None and served.form is None
    assert served.engine == "sklearn"
    r = client.post("/models/bike_hgb/predict", json={"features": BIKE})
    assert r.status_code == 200 and r.json()["served_by"] == "ml", r.text


_LEAN_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from api.main import create_app
from ia_continu.config import Settings

settings = Settings()  # from the IA_CONTINU_* variables run_python sets
with TestClient(create_app(settings)) as client:
    answer = client.post("/models/bike_traffic/predict", json={"features": json.loads(sys.argv[1])})
    status = client.get("/status").json()  # bike_traffic is this process's default model
    heavy = sorted(
        m for m in ("sklearn", "scipy", "pandas", "mlflow", "skops", "pyarrow", "prefect")
        if m in sys.modules
    )
    onnxruntime = "onnxruntime" in sys.modules
    # Last: listing the registered versions is MLflow's (an operator's page, not serving).
    listed = client.get("/models/bike_traffic").json()
print(json.dumps({"answer": answer.json(), "status": status, "listed": listed, "heavy": heavy,
                  "onnxruntime": onnxruntime}))
"""


def test_an_api_process_serving_bike_traffic_loads_no_ml_library(client, settings) -> None:
    """The declared RandomForest served by ONNX Runtime from its form: no scikit-learn,
    scipy, pandas, MLflow or skops in the process."""
    _train(client, "bike_traffic")
    expected = client.post("/models/bike_traffic/predict", json={"features": BIKE}).json()
    seen = run_python(_LEAN_PROBE, settings, json.dumps(BIKE), IA_CONTINU_FAMILY="bike_traffic")
    answer = seen["answer"]
    assert answer["served_by"] == "ml", answer
    for key in ("prediction", "confidence", "risk_level", "contributing_factors"):
        assert answer.get(key) == expected.get(key), key
    assert seen["status"]["model"]["type"] == "RandomForestRegressor"
    assert seen["listed"]["serving_engine"] == "onnxruntime"
    assert seen["listed"]["onnx"]["converted"] is True
    assert seen["onnxruntime"] is True
    assert seen["heavy"] == []
