"""Contributing factors of declared models, checked against the fitted pipeline itself: a
linear model's factors add up (with the intercept) to its decision value, a category's one-hot
columns count as one feature, a forest gives its global importances per declared feature."""

from __future__ import annotations

import numpy as np
import pytest

from ia_continu.declared import Declaration, load_declarations
from ia_continu.declared.data import random_frame
from ia_continu.declared.explain import compile_explainer
from ia_continu.declared.family import DeclaredFamily
from tests.declared.helpers import mixed

BUILTIN = load_declarations()


def _fitted(declaration: Declaration, n: int = 400, seed: int = 0):
    """The family and its pipeline fitted and checked as training does (ONNX included)."""
    family = DeclaredFamily(declaration)
    X, y = family.sample(n, rng=np.random.default_rng(seed))
    pipeline = family.build_pipeline().fit(X, family.fit_target(y))
    family.after_fit(pipeline, y[:100], family.predict_values(pipeline, X[:100]), X[:100], y)
    return family, pipeline, X


def _houses(write, estimator: str) -> tuple[DeclaredFamily, object, np.ndarray]:
    path = write("h.toml", mixed(estimator=estimator))
    declaration = load_declarations(path.parent, include_builtin=False)["houses"]
    family = DeclaredFamily(declaration)
    rng = np.random.default_rng(1)
    X = family.encode_frame(random_frame(declaration, 300, rng=rng))
    city = X[:, 2]
    y = 3.0 * X[:, 0] + 10 * X[:, 1] + np.where(city == 1, 40.0, 0.0) + 5 * X[:, 3]
    pipeline = family.build_pipeline().fit(X, y + rng.normal(0, 1, len(y)))
    family.after_fit(pipeline, y[:50], family.predict_values(pipeline, X[:50]), X[:50], y)
    return family, pipeline, X


def test_linear_factors_add_up_to_the_prediction_and_sum_one_hot_columns(write):
    family, pipeline, X = _houses(write, "sklearn.linear_model.Ridge")
    explain = compile_explainer(pipeline, family.feature_names, top=4)
    assert explain is not None
    pred = pipeline.predict(X[:20])
    model = pipeline.named_steps["model"]
    for factors, p in zip(explain(X[:20], pred), pred, strict=True):
        # Keyed by declared feature ("city", never one of its one-hot columns).
        assert set(factors) <= {"size", "rooms", "city", "garden"}
        assert sum(factors.values()) + model.intercept_ == pytest.approx(p, abs=1e-3)


def test_served_linear_answers_carry_the_top_three_factors(write):
    family, pipeline, X = _houses(write, "sklearn.linear_model.Ridge")
    assert family.serving_engine(pipeline) == "onnxruntime"
    scores = family.compile_scorer(pipeline)(X[:5])
    assert len(scores.contributing_factors) == 5
    full = compile_explainer(pipeline, family.feature_names, top=4)(X[:5], scores.prediction)
    for factors, everything in zip(scores.contributing_factors, full, strict=True):
        assert 1 <= len(factors) <= 3
        top3 = sorted(everything, key=lambda k: -abs(everything[k]))[:3]
        assert factors == {k: everything[k] for k in top3 if everything[k] != 0.0}
    # Without explanations (explain=False) the answer has none.
    assert family.compile_scorer(pipeline, explain=False)(X[:5]).contributing_factors is None


def test_multiclass_factors_are_towards_the_predicted_class():
    family, pipeline, X = _fitted(BUILTIN["iris"], n=300)
    scores = family.compile_scorer(pipeline)(X[:30])
    decision = pipeline.decision_function(X[:30])
    model = pipeline.named_steps["model"]
    full = compile_explainer(pipeline, family.feature_names, top=4)(X[:30], scores.prediction)
    for row, (factors, k) in enumerate(zip(full, scores.prediction.astype(int), strict=True)):
        assert set(factors) <= set(family.feature_names)
        expected = decision[row, k] - model.intercept_[k]
        assert sum(factors.values()) == pytest.approx(expected, abs=1e-3)
    assert all(len(f) <= 3 for f in scores.contributing_factors)


def test_forest_factors_are_global_importances_per_declared_feature():
    family, pipeline, X = _fitted(BUILTIN["bike_traffic"], n=400)
    scores = family.compile_scorer(pipeline)(X[:4])
    factors = scores.contributing_factors
    assert factors[0] == factors[1] == factors[3] and len(factors[0]) == 3
    assert set(factors[0]) <= set(family.feature_names)
    # The one-hot columns of "counter" and "weather" summed: all features' shares add to 1.
    every = compile_explainer(pipeline, family.feature_names, top=5)(X[:1], scores.prediction)[0]
    assert sum(every.values()) == pytest.approx(1.0, abs=1e-3)
    importances = pipeline.named_steps["model"].feature_importances_
    assert len(importances) > len(family.feature_names)  # one-hot: more columns than features


def test_declared_preprocessing_gives_no_factors(write):
    text = mixed().replace(
        "[estimator]", '[[pipeline]]\nclass = "sklearn.preprocessing.StandardScaler"\n\n[estimator]'
    )
    path = write("h.toml", text)
    declaration = load_declarations(path.parent, include_builtin=False)["houses"]
    family = DeclaredFamily(declaration)
    X = np.array([[10.0, 2.0, 1.0, 0.0]] * 20) + np.arange(20)[:, None] * [1, 0, 0, 0]
    pipeline = family.build_pipeline().fit(X, X[:, 0])
    assert compile_explainer(pipeline, family.feature_names) is None
    assert family.compile_scorer(pipeline)(X[:2]).contributing_factors is None
