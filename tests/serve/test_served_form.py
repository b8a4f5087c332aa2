"""A registered version's served form: the API serves a built-in champion from arrays in the
database, with the same answers as its scikit-learn pipeline, and without loading MLflow or
scikit-learn (ia_continu.serve.forms)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete, update

from ia_continu.families import get_family
from ia_continu.serve import forms
from ia_continu.serve.champion import ModelHolder
from ia_continu.serve.forms import ServingForm
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ServingFormRecord
from tests.conftest import train
from tests.live import run_python


def _fitted(name: str, seed: int = 3):
    family = get_family(name)
    X, y = family.sample(2000, rng=np.random.default_rng(seed))
    pipeline = family.build_pipeline().fit(X[:1600], family.fit_target(y[:1600]))
    pred = family.predict_values(pipeline, X[1600:])
    family.after_fit(pipeline, y[1600:], pred, X_hold=X[1600:], y_train=y[:1600])
    return family, pipeline, X[1600:]


@pytest.mark.parametrize("name", ["classification", "delay"])
def test_the_form_answers_exactly_as_the_pipeline(name: str) -> None:
    family, pipeline, X = _fitted(name)
    form = family.serving_form(pipeline)
    assert form is not None
    # Through the bytes the database keeps, as a replica reads them.
    record = ServingFormRecord(kind=form.kind, meta=form.meta, arrays=form.array_bytes())
    from_form = family.scorer_from_form(ServingForm.from_record(record))(X)
    compiled = family.compile_scorer(pipeline)(X)
    assert np.array_equal(from_form.prediction, compiled.prediction)
    assert np.array_equal(from_form.confidence, compiled.confidence)
    assert from_form.contributing_factors == compiled.contributing_factors
    # And both are the pipeline's own answers.
    assert np.allclose(from_form.prediction, family.predict_values(pipeline, X))
    assert form.meta["estimator"] == type(pipeline.steps[-1][1]).__name__


def test_a_kind_the_family_does_not_know_is_not_misread() -> None:
    family, pipeline, _ = _fitted("delay")
    form = family.serving_form(pipeline)
    assert form is not None
    assert family.scorer_from_form(ServingForm("linear-design/2", form.arrays, form.meta)) is None
    other_features = {**form.meta, "design": ["distance_km"]}
    assert family.scorer_from_form(ServingForm(form.kind, form.arrays, other_features)) is None
    assert get_family("classification").scorer_from_form(form) is None


def test_save_is_once_per_version(engine) -> None:
    family, pipeline, _ = _fitted("classification")
    form = family.serving_form(pipeline)
    assert form is not None
    with session_scope(engine) as session:
        forms.save(session, "classification", "7", form)
    # A second writer (the retrain, then a replica backfilling) changes nothing.
    other = ServingForm(form.kind, {"coef": np.zeros(2), "intercept": np.zeros(1)}, form.meta)
    with session_scope(engine) as session:
        forms.save(session, "classification", "7", other)
        forms.save(session, "delay", "7", other)  # another model's version 7 is its own
    with session_scope(engine) as session:
        kept = forms.read(session, "classification", "7")
        assert forms.read(session, "classification", "8") is None
    assert kept is not None and np.array_equal(kept.arrays["coef"], form.arrays["coef"])

    # Registering a version replaces what an older version of the same number left (an MLflow
    # store reset under a kept database numbers its versions from 1 again).
    with session_scope(engine) as session:
        forms.save(session, "classification", "7", other, replace=True)
    with session_scope(engine) as session:
        kept = forms.read(session, "classification", "7")
    assert kept is not None and not kept.arrays["coef"].any()
    assert forms.keep(engine, get_family("classification"), "7", pipeline, registering=True)
    with session_scope(engine) as session:
        kept = forms.read(session, "classification", "7")
    assert kept is not None and np.array_equal(kept.arrays["coef"], form.arrays["coef"])


def test_the_champion_is_served_from_its_form_and_a_missing_one_is_written(client) -> None:
    runtime = client.app.state.runtime
    first = train(client, seed=1)["model_version"]
    holder = runtime.holder
    holder.refresh(force=True)
    served = holder.current
    assert served is not None and served.version == first
    assert served.pipeline is None and served.estimator == "LogisticRegression"
    r = client.post("/predict", json={"features": [0.4, -1.1]})
    assert r.status_code == 200, r.text
    answer = r.json()

    # A version registered before forms existed: loaded from MLflow, its form written then.
    with session_scope(runtime.engine) as session:
        session.execute(delete(ServingFormRecord))
    fresh = ModelHolder(holder.settings, runtime.engine)
    fresh.refresh(force=True)
    assert fresh.current is not None and fresh.current.pipeline is not None
    X = np.array([[0.4, -1.1]])
    assert fresh.current.score(X).prediction[0] == answer["prediction"]
    with session_scope(runtime.engine) as session:
        assert forms.read(session, "classification", first) is not None

    # A form of a kind this release does not know: MLflow again, same answer.
    with session_scope(runtime.engine) as session:
        session.execute(update(ServingFormRecord).values(kind="logistic/99"))
    other = ModelHolder(holder.settings, runtime.engine)
    other.refresh(force=True)
    assert other.current is not None and other.current.pipeline is not None
    assert other.current.score(X).confidence[0] == pytest.approx(answer["confidence"], abs=1e-4)

    status = client.get("/status").json()
    assert status["model"]["type"] == "LogisticRegression"


_LEAN_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from api.main import create_app
from ia_continu.config import Settings

settings = Settings()  # from the IA_CONTINU_* variables run_python sets
with TestClient(create_app(settings)) as client:
    answer = client.post("/predict", json={"features": [0.4, -1.1]}).json()
    status = client.get("/status").json()
heavy = sorted(
    m for m in ("sklearn", "scipy", "pandas", "mlflow", "skops", "pyarrow", "prefect")
    if m in sys.modules
)
print(json.dumps({"answer": answer, "status": status, "heavy": heavy}))
"""


def test_an_api_process_serving_a_builtin_champion_loads_no_ml_library(client) -> None:
    """What keeps a replica's start near a second and its memory near 100 MB: nothing of
    scikit-learn, scipy, pandas, MLflow or skops is imported to serve a built-in model."""
    train(client, seed=2)
    seen = run_python(_LEAN_PROBE, client.app.state.runtime.settings)
    assert seen["answer"]["served_by"] == "ml", seen["answer"]
    assert seen["status"]["model"]["exists"] is True
    assert seen["heavy"] == []
