"""The classification family: two standardised features, a binary target (0 or 1) drawn from
a noisy linear combination of them, and a logistic regression to learn it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ia_continu.errors import InvalidFeatures, UntrainableDataset
from ia_continu.families.base import ModelFamily, Scores, Values
from ia_continu.serve.forms import ServingForm
from ia_continu.vocab import Task

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# The true world: target = 1 when W . latent + B + noise > 0.
TRUE_WEIGHTS = np.array([2.0, -1.5])
TRUE_BIAS = 0.25
NOISE = 0.6
# The features are standardised scores (about -4..4); far beyond this a value is a unit or
# encoding error, not an observation, and a logit of it saturates to a meaningless 0 or 1.
FEATURE_LIMIT = 1e6


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class ClassificationFamily(ModelFamily):
    name = "classification"
    task = Task.classification
    feature_names = ("feature1", "feature2")
    primary_metric = "accuracy"
    higher_is_better = True

    C = 1.0
    solver = "lbfgs"
    max_iter = 200

    def sample(
        self, n: int, *, rng: np.random.Generator, drift: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        latent = rng.normal(0.0, 1.0, size=(n, 2))
        noise = rng.normal(0.0, NOISE, size=n)
        y = (latent @ TRUE_WEIGHTS + TRUE_BIAS + noise > 0).astype(float)
        observed = latent.copy()
        # The drifted world: the first sensor reads low by ``drift`` (0.5 in the demo).
        observed[:, 0] -= drift
        return observed, y

    def validate(self, X: np.ndarray) -> None:
        super().validate(X)
        if (np.abs(X) > FEATURE_LIMIT).any():
            raise InvalidFeatures(f"features must be within ±{FEATURE_LIMIT:g}")

    def outcome_problem(self, value: float) -> str | None:
        return None if value in (0.0, 1.0) else "a classification outcome is a label: 0 or 1"

    def build_pipeline(self) -> Pipeline:
        # scikit-learn is imported where a model is trained or judged, not where one is
        # served: an API process scoring a registered champion never loads it (see
        # ia_continu.serve.forms).
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        return Pipeline(
            [("model", LogisticRegression(C=self.C, solver=self.solver, max_iter=self.max_iter))]
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {"C": self.C, "solver": self.solver, "max_iter": self.max_iter}

    def check_trainable(self, y: np.ndarray) -> None:
        if len(np.unique(y)) < 2:
            raise UntrainableDataset(
                "the dataset has a single class: a classifier needs both 0 and 1"
            )

    def predict_values(self, pipeline: Any, X: np.ndarray) -> np.ndarray:
        return pipeline.predict(X).astype(float)

    def evaluate(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "precision": float(precision_score(y_true, y_pred, zero_division=0)),
            "recall": float(recall_score(y_true, y_pred, zero_division=0)),
            "f1_score": float(f1_score(y_true, y_pred, zero_division=0)),
        }

    def compile_scorer(
        self, pipeline: Any, *, explain: bool = True
    ) -> Callable[[np.ndarray], Scores]:
        form = self.serving_form(pipeline)
        scorer = None if form is None else self.scorer_from_form(form, explain=explain)
        if scorer is None:
            return lambda X: self._scores(pipeline.predict_proba(X)[:, 1])
        return scorer

    def serving_form(self, pipeline: Any) -> ServingForm | None:
        model = pipeline.steps[-1][1]
        if not (hasattr(model, "coef_") and len(pipeline.steps) == 1 and len(model.coef_) == 1):
            return None
        return ServingForm(
            "logistic/1",
            {"coef": model.coef_[0].astype(float), "intercept": model.intercept_[:1]},
            {"estimator": type(model).__name__},
        )

    def scorer_from_form(
        self, form: ServingForm, *, explain: bool = True
    ) -> Callable[[np.ndarray], Scores] | None:
        if form.kind != "logistic/1":
            return None
        # predict_proba validates its input again on every call (~250 µs a row); the same
        # maths in numpy takes ~6 µs. Inputs are validated once, at the API edge.
        coef, intercept = form.arrays["coef"].copy(), float(form.arrays["intercept"][0])
        return lambda X: self._scores(_sigmoid(X @ coef + intercept))

    @staticmethod
    def _scores(p1: np.ndarray) -> Scores:
        label = (p1 >= 0.5).astype(float)
        return Scores(
            prediction=label, confidence=np.where(label == 1, p1, 1 - p1), extra={"probability": p1}
        )

    def fallback(self, X: np.ndarray) -> Scores:
        # "A simple rule": the first feature pushes towards 1, the second away from it.
        margin = X[:, 0] - X[:, 1]
        label = (margin >= 0).astype(float)
        return Scores(prediction=label, confidence=np.full(len(X), 0.6))

    def accurate(self, prediction: Values, actual: Values) -> Values:
        return prediction == actual
