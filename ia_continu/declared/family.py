"""A declaration served as a model family: what the loop needs of a model, read from a file.

Everything inside the loop works on the encoded matrix of :mod:`~ia_continu.declared.features`
(float64, declared order, categories as codes) and, for classifiers, on **class indices**
(0 .. k-1 in ``target.classes`` order) rather than labels: the prediction log, the datasets
table and the monitoring SQL store numbers, and an index compares exactly. The API turns an
index back into its label (``label``/``labels``) and outcomes posted as labels into indices
(``outcome_code``). For ``classes = [0, 1]`` index and label are the same number.

Serving goes through ONNX Runtime when the fitted pipeline converts and agrees with
scikit-learn on the holdout (checked once, at training: ``after_fit``); the verified ONNX
bytes travel inside the registered pipeline, so every replica serves what was checked.

A version served by ONNX Runtime also has a *served form* (``ia_continu.serve.forms``): the
ONNX bytes and every fitted number its answers need (fallback value, confidence, feature
order and category values, the contributing factors' arrays). A replica serves it from the
database without MLflow, skops, scikit-learn, scipy or pandas, and ``compile_scorer`` builds
its scorer from that same form, so both paths answer the same by construction. A version
scikit-learn scores has no form: it is served from MLflow.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ia_continu.declared import metrics as declared_metrics
from ia_continu.declared.build import FallbackScorer, build_pipeline, risk_levels
from ia_continu.declared.data import load_dataset, simulate
from ia_continu.declared.explain import (
    Explainer,
    compile_explainer,
    explainer_from_parts,
    explainer_parts,
)
from ia_continu.declared.features import FeatureEncoder
from ia_continu.declared.onnx import OnnxScorer, SklearnScorer, to_onnx
from ia_continu.declared.schema import Declaration
from ia_continu.errors import (
    InvalidActual,
    NoSimulator,
    UntrainableDataset,
    VersionNeedsFeature,
)
from ia_continu.families.base import ModelFamily, Scores, Values
from ia_continu.families.tasks import TaskRules, multiclass_rules, rules_for
from ia_continu.serve.forms import ServingForm
from ia_continu.vocab import Task

if TYPE_CHECKING:  # frames are training's: a serving process has no pandas
    import pandas as pd

# Attributes set on the fitted pipeline by ``after_fit``; skops keeps plain attributes, so
# they are registered with it and read back by every replica that loads the version.
ONNX_ATTR = "ia_continu_onnx"  # bytes of the verified ONNX model, or absent
ONNX_REPORT_ATTR = "ia_continu_onnx_report"  # dict: converted?, max diff, reason
FALLBACK_ATTR = "ia_continu_fallback_value"  # the fitted majority class index or mean
CONFIDENCE_ATTR = "ia_continu_regression_confidence"  # holdout share within tolerance
FEATURES_ATTR = "ia_continu_features"  # list of str: the feature order the version was fitted on
CATEGORIES_ATTR = "ia_continu_categories"  # name -> declared values: what each code meant then
ONNX_CHECK_ROWS = 2_000  # holdout rows the conversion is verified on (enough, and quick)
FORM_KIND = "declared-onnx/1"  # the served form of a version ONNX Runtime scores
EXPLAIN_PREFIX = "explain."  # the form's arrays of the contributing factors


class DeclaredFamily(ModelFamily):
    """One declaration as a :class:`ModelFamily` (see the module docstring)."""

    encodes_cells = True

    def __init__(self, declaration: Declaration, prefixes: tuple[str, ...] = ()) -> None:
        self.declaration = declaration
        self.prefixes = prefixes
        self.name = declaration.name
        self.task = {
            "binary": Task.classification,
            "multiclass": Task.multiclass,
            "regression": Task.regression,
        }[declaration.task]
        self.feature_names = declaration.feature_names
        self.primary_metric = declaration.gate.metric
        self.higher_is_better = declaration.gate.higher_is_better
        self.encoder = FeatureEncoder(declaration)
        self.classes = self.encoder.class_array() if declaration.is_classifier else None
        self._class_index = (
            {c: i for i, c in enumerate(declaration.classes)} if declaration.is_classifier else {}
        )
        self._fallback = FallbackScorer(declaration)
        # Before any champion was trained, a "majority"/"mean" fallback has learnt nothing:
        # it answers the first class, or the middle of the target's declared range.
        self.fallback_value: float = self._initial_fallback()

    # --- description -----------------------------------------------------------------
    @property
    def rules(self) -> TaskRules:
        if self.task == Task.multiclass:
            return multiclass_rules(len(self.declaration.classes))
        return rules_for(self.task)

    # --- data ------------------------------------------------------------------------
    def sample(
        self, n: int, *, rng: np.random.Generator, drift: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        d = self.declaration
        if d.simulator is not None:
            frame, y = simulate(d, n, rng=rng, drifted=drift > 0)
        elif d.dataset is not None:  # a bundled dataset: resampled, it has no drift knob
            frame, y = load_dataset(d)
            pick = rng.integers(0, len(frame), n)
            frame, y = frame.iloc[pick].reset_index(drop=True), np.asarray(y)[pick]
        else:
            raise NoSimulator(
                f"model '{self.name}' has no simulator: import its data with "
                f"POST /models/{self.name}/datasets instead"
            )
        return self.encoder.frame(frame), self.target_codes(y)

    def target_codes(self, y: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
        """Validated outcomes as the loop stores them: class indices or numbers (float64).
        Raises InvalidActual naming the row."""
        values = self.encoder.target(y)
        if self.classes is None:
            return values
        index = self._class_index
        return np.fromiter((index[v] for v in values.tolist()), np.float64, len(values))

    def encode_rows(self, rows: Any) -> np.ndarray:
        return self.encoder.rows(rows)

    def encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.encoder.frame(frame)

    def feature_default(self, name: str) -> float | None:
        return self.encoder.default_code(name)

    def validate(self, X: np.ndarray) -> None:
        super().validate(X)  # shape and finiteness; domains were checked while encoding

    def outcome_code(self, value: Any) -> float:
        if self.classes is not None:
            code = None if isinstance(value, bool) else self._class_index.get(value)
            if code is None and isinstance(value, float) and value.is_integer():
                code = self._class_index.get(int(value))
            if code is None:
                allowed = ", ".join(map(repr, self.declaration.classes))
                raise InvalidActual(f"{value!r} is not one of the classes {allowed}")
            return float(code)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidActual(f"must be a finite number, not {type(value).__name__}")
        x = float(value)
        if not math.isfinite(x):
            raise InvalidActual("must be finite (no NaN or infinity)")
        low, high = self.declaration.target.min, self.declaration.target.max
        if (low is not None and x < low) or (high is not None and x > high):
            raise InvalidActual(f"{x:g} is outside the target's range [{low}, {high}]")
        return x

    def outcome_problem(self, value: float) -> str | None:
        try:
            self.outcome_code(value)
        except InvalidActual as exc:
            return str(exc)
        return None

    def decode(self, X: np.ndarray) -> pd.DataFrame:
        """The matrix as declared values (category texts, booleans): for drift reports."""
        return self.encoder.decode(X)

    # --- model -----------------------------------------------------------------------
    def build_pipeline(self) -> Any:
        return build_pipeline(self.declaration, self.prefixes)

    def hyperparameters(self) -> dict[str, Any]:
        params = {
            f"estimator.{k}": _param_text(v) for k, v in self.declaration.estimator.params.items()
        }
        return {"estimator": self.declaration.estimator.class_path, **params}

    def check_trainable(self, y: np.ndarray) -> None:
        if self.classes is not None and len(np.unique(y)) < 2:
            raise UntrainableDataset(
                f"the dataset has a single class: '{self.name}' needs at least two of "
                f"{list(self.declaration.classes)}"
            )
        if len(y) < 10:
            raise UntrainableDataset(f"{len(y)} rows: at least 10 are needed to train")

    def fit_target(self, y: np.ndarray) -> np.ndarray:
        """What the estimator is fitted on: int indices for classifiers."""
        return y.astype(np.int64) if self.classes is not None else y

    def predict_values(self, pipeline: Any, X: np.ndarray) -> np.ndarray:
        columns = self.trained_columns(pipeline)
        X = X if columns is None else X[:, columns]
        return np.asarray(pipeline.predict(X), dtype=np.float64)

    def evaluate(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        if self.classes is None:
            return declared_metrics.evaluate(self.declaration, y_true, y_pred)
        labels = self.classes
        t = labels[np.asarray(y_true, dtype=np.int64)]
        p = labels[np.clip(np.asarray(y_pred, dtype=np.int64), 0, len(labels) - 1)]
        return declared_metrics.evaluate(self.declaration, t, p)

    def after_fit(
        self,
        pipeline: Any,
        y_hold: np.ndarray,
        pred_hold: np.ndarray,
        X_hold: np.ndarray | None = None,
        y_train: np.ndarray | None = None,
    ) -> None:
        """Keep on the pipeline what serving needs: the verified ONNX model (checked on the
        holdout), the fitted fallback value, a regression's confidence, and the feature order
        it was fitted on (so it still scores after the declaration gains or reorders one)."""
        setattr(pipeline, FEATURES_ATTR, list(self.feature_names))
        setattr(pipeline, CATEGORIES_ATTR, self._category_values())
        if y_train is not None and self._fallback.kind == "strategy":
            if self.classes is not None:
                counts = Counter(np.asarray(y_train, dtype=np.int64).tolist())
                value = float(max(range(len(self.classes)), key=lambda i: counts.get(i, 0)))
            else:
                value = float(np.mean(y_train))
            setattr(pipeline, FALLBACK_ATTR, value)
        if self.classes is None:
            within = np.abs(np.asarray(y_hold) - np.asarray(pred_hold)) < self._tolerance
            setattr(pipeline, CONFIDENCE_ATTR, float(within.mean()) if len(within) else 0.5)
        if X_hold is not None and len(X_hold):
            scorer, report = to_onnx(pipeline, X_hold[:ONNX_CHECK_ROWS])
            setattr(pipeline, ONNX_REPORT_ATTR, report.as_dict())
            if isinstance(scorer, OnnxScorer):
                setattr(pipeline, ONNX_ATTR, scorer.model)

    def skops_trusted_types(self, pipeline: Any) -> list[str]:
        """Every type skops flags in this pipeline: it was built here, from allow-listed
        classes, and fitted in this process (a tree's node storage is flagged because a
        crafted file could index out of bounds; ours is not crafted)."""
        import skops.io

        return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))

    def run_artifacts(self, pipeline: Any) -> dict[str, bytes]:
        """The validated declaration (JSON) and, when it agreed, the ONNX model and its check."""
        files = {
            "declaration.json": self.declaration.model_dump_json(by_alias=True, indent=2).encode()
        }
        report = getattr(pipeline, ONNX_REPORT_ATTR, None)
        if report is not None:
            files["onnx/check.json"] = json.dumps(report, indent=2, default=str).encode()
        model = getattr(pipeline, ONNX_ATTR, None)
        if model:
            files["onnx/model.onnx"] = bytes(model)
        return files

    # --- serving ---------------------------------------------------------------------
    def onnx_report(self, pipeline: Any) -> dict[str, Any] | None:
        return getattr(pipeline, ONNX_REPORT_ATTR, None)

    def serving_engine(self, pipeline: Any) -> str:
        return "onnxruntime" if getattr(pipeline, ONNX_ATTR, None) else "sklearn"

    def adopt(self, pipeline: Any) -> None:
        """The served champion's fitted fallback value becomes this process's fallback."""
        value = getattr(pipeline, FALLBACK_ATTR, None)
        if value is not None:
            self.fallback_value = float(value)

    def trained_columns(self, pipeline: Any) -> np.ndarray | None:
        """Where each feature the version was fitted on sits in the current matrix (None: the
        same order). Raises VersionNeedsFeature if the declaration no longer has one of them."""
        return self._columns(
            getattr(pipeline, FEATURES_ATTR, None), getattr(pipeline, CATEGORIES_ATTR, None)
        )

    def _columns(
        self, trained: Sequence[str] | None, categories: Mapping[str, list[Any]] | None
    ) -> np.ndarray | None:
        """``trained_columns`` from what the version recorded (on its pipeline or its form)."""
        self._check_category_codes(categories or {})
        if trained is None or tuple(trained) == self.feature_names:
            return None  # fitted on today's order (or before versions recorded theirs)
        missing = [name for name in trained if name not in self.feature_names]
        if missing:
            raise VersionNeedsFeature(
                f"this version of '{self.name}' was trained on feature(s) {missing}, which "
                f"the current declaration does not have: declare them again to serve it"
            )
        position = {name: i for i, name in enumerate(self.feature_names)}
        return np.array([position[name] for name in trained], dtype=np.intp)

    def _category_values(self) -> dict[str, list[Any]]:
        return {
            f.name: list(f.values or ()) for f in self.declaration.features if f.type == "category"
        }

    def _check_category_codes(self, trained: Mapping[str, list[Any]]) -> None:
        """A category is stored as the index of its value: a version still reads today's
        codes if its values are, in order, the first of today's (values added at the end are
        unknown to it, as any unseen category). Reordered or removed values would be misread."""
        current = self._category_values()
        changed = [
            name
            for name, values in trained.items()
            if name in self.feature_names and current.get(name, [])[: len(values)] != values
        ]
        if changed:
            raise VersionNeedsFeature(
                f"this version of '{self.name}' was trained when the values of {changed} were "
                f"{[trained[n] for n in changed]}: since reordered or removed, today's codes "
                "would be misread (add new values at the end of the list instead)"
            )

    # --- the served form ---------------------------------------------------------------
    def serving_form(self, pipeline: Any) -> ServingForm | None:
        """A version ONNX Runtime scores, as the form a replica serves without scikit-learn:
        the ONNX bytes, the factors' arrays, and the fitted values as JSON. None for a version
        scikit-learn scores (served from MLflow)."""
        model = getattr(pipeline, ONNX_ATTR, None)
        if not model:
            return None
        arrays: dict[str, np.ndarray] = {"onnx": np.frombuffer(bytes(model), dtype=np.uint8)}
        trained = getattr(pipeline, FEATURES_ATTR, None)
        parts = explainer_parts(pipeline, len(trained or self.feature_names))
        if parts is not None:
            arrays.update({EXPLAIN_PREFIX + k: v for k, v in parts[0].items()})
        fallback = getattr(pipeline, FALLBACK_ATTR, None)
        confidence = getattr(pipeline, CONFIDENCE_ATTR, None)
        fitted = getattr(pipeline, "classes_", None)
        categories = getattr(pipeline, CATEGORIES_ATTR, None)
        meta = {
            "estimator": self.estimator_name(pipeline),
            "engine": "onnxruntime",
            "onnx": self.onnx_report(pipeline),
            "features": None if trained is None else list(trained),
            "categories": None if categories is None else dict(categories),
            "fallback": None if fallback is None else float(fallback),
            "confidence": None if confidence is None else float(confidence),
            "classes": None if fitted is None else np.asarray(fitted, float).tolist(),
            "has_proba": self.classes is not None and hasattr(pipeline, "predict_proba"),
            "explain": None if parts is None else parts[1],
        }
        # Through JSON now: what the database gives back is what the scorer is built from.
        return ServingForm(FORM_KIND, arrays, json.loads(json.dumps(meta)))

    def scorer_from_form(
        self, form: ServingForm, *, explain: bool = True
    ) -> Callable[[np.ndarray], Scores] | None:
        """The scorer of a form ``serving_form`` wrote (None for another kind). Raises
        VersionNeedsFeature, as ``compile_scorer`` does, for a version the declaration no
        longer fits."""
        if form.kind != FORM_KIND:
            return None
        meta = form.meta
        columns = self._columns(meta["features"], meta["categories"])
        trained = meta["features"] or self.feature_names
        explainer = None
        if explain and meta["explain"] is not None:
            n = len(EXPLAIN_PREFIX)
            parts = {k[n:]: v for k, v in form.arrays.items() if k.startswith(EXPLAIN_PREFIX)}
            explainer = explainer_from_parts(parts, meta["explain"], trained)
        onnx = OnnxScorer(
            np.asarray(form.arrays["onnx"], dtype=np.uint8).tobytes(),
            classes=None if self.classes is None else np.arange(len(self.classes)),
            has_proba=bool(meta["has_proba"]),
        )
        confidence = 0.5 if meta["confidence"] is None else float(meta["confidence"])
        fitted = None if meta["classes"] is None else np.asarray(meta["classes"], np.float64)
        score = self._scorer(onnx, confidence, fitted, explainer)
        return score if columns is None else _realigned(score, columns)

    def adopt_form(self, form: ServingForm) -> None:
        """``adopt`` for a champion served from its form."""
        if form.kind == FORM_KIND and form.meta.get("fallback") is not None:
            self.fallback_value = float(form.meta["fallback"])

    def compile_scorer(
        self, pipeline: Any, *, explain: bool = True
    ) -> Callable[[np.ndarray], Scores]:
        # A version ONNX Runtime scores is scored through its served form: what a replica
        # serving the form answers is what this answers.
        form = self.serving_form(pipeline)
        if form is not None:
            score = self.scorer_from_form(form, explain=explain)
            assert score is not None  # the kind this family writes
            return score
        # A version fitted on another feature order (the declaration changed since) scores
        # the current matrix's columns picked and reordered to its own.
        columns = self.trained_columns(pipeline)
        # Contributing factors where the fitted numbers give them cheaply (declared.explain),
        # named by the features the version was fitted on (the matrix it is given).
        trained = getattr(pipeline, FEATURES_ATTR, None) or self.feature_names
        explainer = compile_explainer(pipeline, trained) if explain else None
        confidence = float(getattr(pipeline, CONFIDENCE_ATTR, 0.5))
        # Fitted on indices: classes_ maps probability columns to them (a class absent from
        # the training data has no column).
        fitted = None
        if self.classes is not None:
            fitted = np.asarray(getattr(pipeline, "classes_", np.arange(len(self.classes))), float)
        score = self._scorer(SklearnScorer(pipeline), confidence, fitted, explainer)
        return score if columns is None else _realigned(score, columns)

    def _scorer(
        self,
        scorer: OnnxScorer | SklearnScorer,
        confidence: float,
        fitted: np.ndarray | None,
        explainer: Explainer | None,
    ) -> Callable[[np.ndarray], Scores]:
        """Answers from ``scorer``'s predictions: a regression's fitted ``confidence`` and
        risk bands, a classifier's probabilities over its ``fitted`` class indices."""
        bands = self.declaration.risk_bands
        if self.classes is None:

            def score_regression(X: np.ndarray) -> Scores:
                pred = np.asarray(scorer.predict(X), dtype=np.float64).reshape(-1)
                return Scores(
                    prediction=pred,
                    confidence=np.full(len(pred), confidence),
                    risk_level=_bands(self.declaration, pred) if bands else None,
                )

            return _with_factors(score_regression, explainer)

        if fitted is None:
            fitted = np.arange(len(self.classes), dtype=np.float64)
        positive = np.flatnonzero(fitted == 1.0)

        def score_classes(X: np.ndarray) -> Scores:
            if isinstance(scorer, OnnxScorer):
                labels, proba = scorer.run(X)  # one session run for both outputs
            else:
                labels, proba = None, scorer.predict_proba(X)
            if proba is None:  # an estimator without probabilities: sure of its label
                raw = labels if labels is not None else scorer.predict(X)
                pred = np.asarray(raw, dtype=np.float64).reshape(-1)
                return Scores(prediction=pred, confidence=np.ones(len(pred)))
            proba = np.asarray(proba, dtype=np.float64)
            scores = Scores(prediction=fitted[proba.argmax(axis=1)], confidence=proba.max(axis=1))
            if len(fitted) == 2 and len(positive):
                scores.extra["probability"] = proba[:, positive[0]]
            return scores

        return _with_factors(score_classes, explainer)

    def fallback(self, X: np.ndarray) -> Scores:
        n = len(X)
        if self._fallback.kind == "strategy":
            pred = np.full(n, self.fallback_value)
        else:
            values = self._fallback.predict(X)
            pred = (
                np.fromiter((self._class_index[v] for v in values.tolist()), np.float64, n)
                if self.classes is not None
                else np.asarray(values, dtype=np.float64)
            )
        scores = Scores(prediction=pred, confidence=np.full(n, self._fallback.confidence))
        if self.classes is None and self.declaration.risk_bands:
            scores.risk_level = _bands(self.declaration, pred)
        return scores

    def label(self, value: float) -> Any:
        if self.classes is None:
            return round(value, 4)
        return (
            self.classes[int(value)].item()
            if self.classes.dtype.kind == "i"
            else self.classes[int(value)]
        )

    def labels(self, values: np.ndarray) -> list[Any]:
        if self.classes is None:
            return values.round(4).tolist()
        return self.classes[values.astype(np.int64)].tolist()

    def accurate(self, prediction: Values, actual: Values) -> Values:
        if self.classes is not None:
            return prediction == actual
        tolerance = self._tolerance
        return (prediction - actual < tolerance) & (actual - prediction < tolerance)

    # --- helpers ---------------------------------------------------------------------
    @property
    def _tolerance(self) -> float:
        return float(self.declaration.tolerance or 0.0)

    def _initial_fallback(self) -> float:
        if self.classes is not None:
            if self._fallback.kind == "constant":
                return float(self._class_index.get(self.declaration.fallback.constant, 0))
            return 0.0
        if self._fallback.kind == "constant":
            return float(self.declaration.fallback.constant)
        # A mean not learnt yet: 0, moved into the target's declared range.
        low, high = self.declaration.target.min, self.declaration.target.max
        value = 0.0 if low is None else max(0.0, low)
        return value if high is None else min(value, high)


def _realigned(
    score: Callable[[np.ndarray], Scores], columns: np.ndarray
) -> Callable[[np.ndarray], Scores]:
    """A version fitted on another feature order scores today's matrix's columns picked and
    reordered to its own."""

    def score_realigned(X: np.ndarray) -> Scores:
        return score(X[:, columns])

    return score_realigned


def _with_factors(
    score: Callable[[np.ndarray], Scores], explainer: Explainer | None
) -> Callable[[np.ndarray], Scores]:
    if explainer is None:
        return score

    def score_explained(X: np.ndarray) -> Scores:
        scores = score(X)
        scores.contributing_factors = explainer(X, scores.prediction)
        return scores

    return score_explained


def _bands(declaration: Declaration, predictions: np.ndarray) -> list[str] | None:
    levels = risk_levels(declaration, predictions)
    return None if levels is None else levels.tolist()


def _param_text(value: Any) -> Any:
    if isinstance(value, Mapping):
        return str(dict(value))[:250]
    return value
