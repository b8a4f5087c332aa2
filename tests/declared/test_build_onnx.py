"""Declarations to fitted pipelines, fallbacks and ONNX scorers that agree with scikit-learn."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ia_continu.declared import Declaration, load_declarations
from ia_continu.declared.build import FallbackScorer, accurate, build_pipeline, risk_levels
from ia_continu.declared.data import load_dataset, random_frame, simulate
from ia_continu.declared.features import FeatureEncoder
from ia_continu.declared.metrics import evaluate, is_better
from ia_continu.declared.onnx import FLOAT32_ESTIMATOR, FLOAT64, INPUT_NAME, to_onnx
from tests.declared.helpers import mixed

Write = Callable[[str, str], Path]
BUILTIN = load_declarations()


def declare(write: Write, text: str) -> Declaration:
    return load_declarations(write("h.toml", text).parent, include_builtin=False)["houses"]


def houses_data(d: Declaration, n: int = 400, stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random valid rows and a price that depends on every feature type."""
    rng = np.random.default_rng(stream)
    X = FeatureEncoder(d).frame(random_frame(d, n, rng=rng))
    city_premium = np.array([3.0, 1.0, 0.0])[X[:, 2].astype(int)]
    y = 0.2 * X[:, 0] + 2.0 * X[:, 1] + city_premium + 1.5 * X[:, 3] + rng.normal(0, 0.5, n)
    return X, y


def test_preprocessing_follows_feature_types(write: Write) -> None:
    d = declare(write, mixed())
    pipeline = build_pipeline(d)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    pre = pipeline.named_steps["preprocess"]
    assert isinstance(pre, ColumnTransformer) and isinstance(pipeline.named_steps["model"], Ridge)
    blocks = {name: (transformer, cols) for name, transformer, cols in pre.transformers}
    assert isinstance(blocks["number"][0], StandardScaler) and blocks["number"][1] == [0, 1]
    encoder, cols = blocks["category"]
    assert isinstance(encoder, OneHotEncoder) and cols == [2]
    assert encoder.handle_unknown == "ignore" and encoder.categories[0].tolist() == [0, 1, 2]
    assert blocks["boolean"] == ("passthrough", [3])


@pytest.mark.parametrize(
    ("estimator", "params", "variant"),
    [
        ("sklearn.linear_model.Ridge", "{ alpha = 0.5 }", FLOAT64),
        (
            "sklearn.ensemble.RandomForestRegressor",
            "{ n_estimators = 20, random_state = 0 }",
            FLOAT32_ESTIMATOR,
        ),
    ],
)
def test_numeric_and_categorical_declaration_converts_and_agrees(
    write: Write, estimator: str, params: str, variant: str
) -> None:
    d = declare(write, mixed(estimator=estimator, params=params))
    X, y = houses_data(d)
    pipeline = build_pipeline(d).fit(X[:300], y[:300])
    scorer, report = to_onnx(pipeline, X[300:])
    assert report.converted, report.reason
    assert report.variant == variant and report.rows_checked == 100
    assert report.max_abs_diff is not None and report.tolerance is not None
    assert report.max_abs_diff <= report.tolerance
    assert scorer.engine == "onnxruntime"
    ref = pipeline.predict(X[300:])
    np.testing.assert_allclose(scorer.predict(X[300:]), ref, rtol=1e-4, atol=1e-4)
    # One double tensor, whatever the feature types: categories arrive as codes.
    graph = onnx.load_from_string(scorer.model).graph  # type: ignore[attr-defined]
    assert [i.name for i in graph.input] == [INPUT_NAME]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    # Unseen rows from the request path score the same as scikit-learn too.
    row = FeatureEncoder(d).row({"size": 33.3, "rooms": 4, "city": "lille"})
    np.testing.assert_allclose(scorer.predict(row), pipeline.predict(row), rtol=1e-4, atol=1e-4)
    again = pickle.loads(pickle.dumps(scorer))
    np.testing.assert_array_equal(again.predict(X[300:]), scorer.predict(X[300:]))


def test_hist_gradient_boosting_falls_back_to_sklearn_with_the_reason(write: Write) -> None:
    d = declare(
        write,
        mixed(
            estimator="sklearn.ensemble.HistGradientBoostingRegressor", params="{ max_iter = 20 }"
        ),
    )
    X, y = houses_data(d)
    pipeline = build_pipeline(d).fit(X[:300], y[:300])
    scorer, report = to_onnx(pipeline, X[300:])
    assert not report.converted and scorer.engine == "sklearn"
    assert report.reason is not None and "TreeEnsembleRegressor" in report.reason
    assert len(report.attempts) == 2  # both precisions were tried
    np.testing.assert_array_equal(scorer.predict(X[300:]), pipeline.predict(X[300:]))


def test_disagreement_falls_back_too(write: Write) -> None:
    d = declare(
        write,
        mixed(
            estimator="sklearn.ensemble.RandomForestRegressor",
            params="{ n_estimators = 10, random_state = 0 }",
        ),
    )
    X, y = houses_data(d)
    pipeline = build_pipeline(d).fit(X[:300], y[:300])
    # float32 leaves cannot match float64 to 1e-15: the check must refuse the conversion.
    scorer, report = to_onnx(pipeline, X[300:], tolerance=1e-15)
    assert not report.converted and scorer.engine == "sklearn"
    assert "predictions differ by up to" in (report.reason or "")


def test_iris_from_bundled_data_onnx_equals_sklearn() -> None:
    d = BUILTIN["iris"]
    frame, labels = load_dataset(d)
    enc = FeatureEncoder(d)
    X, y = enc.frame(frame), enc.target(labels)
    assert X.shape == (150, 4) and set(y.tolist()) == set(d.classes)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, test = order[:105], order[105:]
    pipeline = build_pipeline(d).fit(X[train], y[train])
    assert evaluate(d, y[test], pipeline.predict(X[test]))["accuracy"] > 0.9
    scorer, report = to_onnx(pipeline, X[test])
    assert report.converted and report.variant == FLOAT64, report.reason
    proba = scorer.predict_proba(X[test])
    ref = pipeline.predict_proba(X[test])
    assert proba is not None and scorer.classes is not None
    np.testing.assert_array_equal(proba.argmax(axis=1), ref.argmax(axis=1))
    np.testing.assert_allclose(proba, ref, atol=1e-4)
    assert scorer.predict(X[test]).tolist() == pipeline.predict(X[test]).tolist()
    assert scorer.classes.tolist() == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("name", ["classification", "delay", "bike_traffic"])
def test_builtins_train_on_their_simulator_and_convert(name: str) -> None:
    d = BUILTIN[name]
    enc = FeatureEncoder(d)
    frame, outcome = simulate(d, 800, rng=np.random.default_rng(1))
    X, y = enc.frame(frame), enc.target(outcome)
    drifted, _ = simulate(d, 200, rng=np.random.default_rng(2), drifted=True)
    enc.frame(drifted)  # the drifted world still sends valid rows
    if name == "bike_traffic":  # a smaller forest keeps the test quick; same code path
        pipeline = build_pipeline(d)
        pipeline.set_params(model__n_estimators=10)
    else:
        pipeline = build_pipeline(d)
    pipeline.fit(X[:600], y[:600])
    scorer, report = to_onnx(pipeline, X[600:])
    assert report.converted, report.reason
    if d.is_classifier:
        assert scorer.predict(X[600:]).tolist() == pipeline.predict(X[600:]).tolist()
    if name == "delay":
        assert [n for n, _ in pipeline.steps] == [
            "step0_polynomialfeatures",
            "step1_standardscaler",
            "model",
        ]
        metrics = evaluate(d, y[600:], scorer.predict(X[600:]))
        assert metrics["r2"] > 0.65 and set(metrics) == {"mae", "rmse", "r2", "accuracy"}


def test_fallbacks_from_the_declaration(write: Write) -> None:
    # formula over numbers (regression)
    delay = BUILTIN["delay"]
    X = FeatureEncoder(delay).rows([[10.0, 8, 0, 1, 0.5], [3.0, 8, 0, 2, 0.5]])
    fb = FallbackScorer(delay)
    assert fb.fitted and fb.predict(X).tolist() == [5.0, 1.5] and fb.confidence == 0.5
    restored = pickle.loads(pickle.dumps(fb))
    assert restored.predict(X).tolist() == [5.0, 1.5]
    # formula of a binary classifier: true is the second class
    binary = BUILTIN["classification"]
    Xb = FeatureEncoder(binary).rows([[1.0, 0.5], [0.0, 2.0]])
    assert FallbackScorer(binary).predict(Xb).tolist() == [1, 0]
    # majority learnt from training targets (ties go to the first declared class)
    iris = FallbackScorer(BUILTIN["iris"])
    assert not iris.fitted
    with pytest.raises(RuntimeError, match="fit the fallback"):
        iris.predict(np.zeros((1, 4)))
    iris.fit(np.array(["virginica", "setosa", "virginica"], dtype=object))
    assert iris.predict(np.zeros((2, 4))).tolist() == ["virginica", "virginica"]
    # mean learnt from training targets; a constant
    houses = declare(write, mixed().replace('formula = "size * 0.1 + rooms"', 'strategy = "mean"'))
    assert FallbackScorer(houses).fit(np.array([1.0, 2.0, 6.0])).predict(
        np.zeros((1, 4))
    ).tolist() == [3.0]
    houses = declare(write, mixed().replace('formula = "size * 0.1 + rooms"', "constant = 7"))
    assert FallbackScorer(houses).predict(np.zeros((2, 4))).tolist() == [7.0, 7.0]


def test_risk_levels_accuracy_and_gate() -> None:
    delay = BUILTIN["delay"]
    levels = risk_levels(delay, np.array([1.0, 5.0, 14.9, 15.0, 40.0]))
    assert levels is not None and levels.tolist() == ["low", "medium", "medium", "high", "high"]
    assert risk_levels(BUILTIN["bike_traffic"], np.array([1.0])) is None
    assert accurate(delay, np.array([1.0, 10.0]), np.array([3.9, 14.0])).tolist() == [True, False]
    champion = {"rmse": 2.0}
    assert is_better(delay, {"rmse": 1.9}, champion) and not is_better(
        delay, {"rmse": 2.1}, champion
    )
    iris = BUILTIN["iris"]
    y = np.array(["setosa", "versicolor", "virginica", "virginica"], dtype=object)
    metrics = evaluate(
        iris, y, np.array(["setosa", "versicolor", "virginica", "setosa"], dtype=object)
    )
    assert metrics["accuracy"] == 0.75 and set(metrics) == {"accuracy", "precision", "recall", "f1"}
    assert is_better(iris, {"accuracy": 0.8}, {"accuracy": 0.75})


def test_estimator_from_sklearn_directly_matches_the_declared_one(write: Write) -> None:
    d = declare(
        write,
        mixed(
            estimator="sklearn.ensemble.RandomForestRegressor",
            params="{ n_estimators = 7, max_depth = 4 }",
        ),
    )
    model = build_pipeline(d).named_steps["model"]
    assert isinstance(model, RandomForestRegressor)
    assert (model.n_estimators, model.max_depth) == (7, 4)


@pytest.mark.parametrize(
    ("estimator", "has_proba"),
    [
        ("sklearn.linear_model.LogisticRegression", True),
        ("sklearn.ensemble.RandomForestClassifier", True),
        ("sklearn.linear_model.RidgeClassifier", False),  # labels only: no predict_proba
    ],
)
def test_binary_text_labels_convert(write: Write, estimator: str, has_proba: bool) -> None:
    text = mixed(estimator=estimator, params="{ random_state = 0 }")
    text = text.replace('task = "regression"\ntolerance = 2.0', 'task = "binary"')
    text = text.replace('name = "price"', 'name = "sold"\nclasses = ["no", "yes"]')
    text = text.replace('metric = "rmse"', 'metric = "f1"')
    text = text.replace('formula = "size * 0.1 + rooms"', 'constant = "no"')
    d = declare(write, text)
    X, price = houses_data(d)
    y = np.where(price > np.median(price), "yes", "no").astype(object)
    pipeline = build_pipeline(d).fit(X[:300], y[:300])
    scorer, report = to_onnx(pipeline, X[300:])
    assert report.converted, report.reason
    assert scorer.predict(X[300:]).tolist() == pipeline.predict(X[300:]).tolist()
    proba = scorer.predict_proba(X[300:])
    assert (proba is not None) is has_proba
    if proba is not None:
        np.testing.assert_allclose(proba, pipeline.predict_proba(X[300:]), atol=1e-4)
    assert FallbackScorer(d).predict(X[:2]).tolist() == ["no", "no"]
    assert set(evaluate(d, y[300:], scorer.predict(X[300:]))) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
    }
