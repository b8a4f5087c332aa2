"""Performance estimators: how good a version is on rows whose outcomes are not known yet.

Fitted at training on the holdout, stored in the database with the version they describe
(``performance_estimators``), applied later to logged predictions by
``ia_continu.watch.estimates``. Two published methods, as NannyML defines them (NannyML
itself cannot be installed beside the pinned stack: it needs an older botocore):

- **CBPE** (confidence-based performance estimation), for classifiers: the model's scores are
  calibrated on the holdout with isotonic regression, so that a calibrated score is the
  probability of being right. A binary model's P(y = 1) is calibrated against the outcome,
  as NannyML does; for several classes the logged confidence (the predicted class's
  probability) is calibrated against "was it right". The expected accuracy of a set of rows
  is the mean probability that each prediction is right.
- **DLE** (direct loss estimation), for regressors: a small gradient-boosting model of the
  absolute error, fitted on the holdout from the features and the prediction. The expected
  MAE of a set of rows is the mean predicted absolute error.

Both hold only while the relation between features and outcome stays what it was on the
holdout (covariate shift is fine; concept drift is not): once outcomes arrive, the gap
between estimate and realised metric says when that stopped being true.

Stored without pickle: CBPE's isotonic map is two JSON arrays (``np.interp`` applies it);
DLE's model is skops bytes, loaded with one allow-listed type only.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from ia_continu.families import ModelFamily
from ia_continu.learn.tracking import TrackedRun
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import EstimatorRecord
from ia_continu.vocab import Task

log = logging.getLogger(__name__)

# Fewer holdout rows than this calibrate nothing worth reporting.
MIN_HOLDOUT_ROWS = 20
# What a stored DLE model may contain beyond skops' default trust (numpy, builtins, scikit-
# learn estimators): the trees' node storage, flagged only because a crafted file could
# index out of bounds. Anything else in the bytes and the estimator is not loaded.
DLE_TRUSTED_TYPES = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})


class PerformanceEstimator(ABC):
    """A fitted estimator: per-row expected values whose mean is the estimated metric."""

    method: ClassVar[str]  # "cbpe" or "dle"
    metric: ClassVar[str]  # the metric it estimates: "accuracy" or "mae"
    needs_features: ClassVar[bool] = False

    def __init__(self, holdout: dict[str, float]) -> None:
        # rows, realised and estimated metric on the holdout it was fitted on
        self.holdout = holdout

    @abstractmethod
    def expected(
        self, prediction: np.ndarray, confidence: np.ndarray, X: np.ndarray | None
    ) -> np.ndarray:
        """Each row's expected contribution: P(right) for CBPE, E|error| for DLE."""

    @staticmethod
    @abstractmethod
    def realised(prediction: np.ndarray, actual: np.ndarray) -> np.ndarray:
        """Each labelled row's realised contribution (right: 1/0; the absolute error)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The JSON-able part of the stored form."""

    def blob(self) -> bytes | None:
        """The binary part of the stored form (None: everything is in ``params``)."""
        return None


class CBPE(PerformanceEstimator):
    method = "cbpe"
    metric = "accuracy"

    def __init__(
        self, calibrates: str, x: np.ndarray, y: np.ndarray, holdout: dict[str, float]
    ) -> None:
        super().__init__(holdout)
        self.calibrates = calibrates  # "p1": binary P(y = 1); "confidence": top-label
        self.x, self.y = np.asarray(x, float), np.asarray(y, float)

    @classmethod
    def fit(
        cls, binary: bool, prediction: np.ndarray, confidence: np.ndarray, y: np.ndarray
    ) -> CBPE:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        if binary:
            iso.fit(positive_probability(prediction, confidence), (y == 1.0).astype(float))
        else:
            iso.fit(confidence, (prediction == y).astype(float))
        est = cls("p1" if binary else "confidence", iso.X_thresholds_, iso.y_thresholds_, {})
        est.holdout = _holdout_figures(est, prediction, confidence, None, y)
        return est

    def calibrated(self, values: np.ndarray) -> np.ndarray:
        # np.interp clips beyond the ends, as out_of_bounds="clip" does.
        return np.interp(values, self.x, self.y)

    def expected(
        self, prediction: np.ndarray, confidence: np.ndarray, X: np.ndarray | None
    ) -> np.ndarray:
        if self.calibrates == "p1":
            p1 = self.calibrated(positive_probability(prediction, confidence))
            return np.where(prediction == 1.0, p1, 1.0 - p1)
        return self.calibrated(confidence)

    @staticmethod
    def realised(prediction: np.ndarray, actual: np.ndarray) -> np.ndarray:
        return (prediction == actual).astype(float)

    def params(self) -> dict[str, Any]:
        return {"calibrates": self.calibrates, "x": self.x.tolist(), "y": self.y.tolist()}


class DLE(PerformanceEstimator):
    method = "dle"
    metric = "mae"
    needs_features = True

    def __init__(self, model: Any, features: list[str], holdout: dict[str, float]) -> None:
        super().__init__(holdout)
        self.model = model
        self.features = features  # the feature order the model reads (the version's)

    @classmethod
    def fit(cls, features: list[str], X: np.ndarray, prediction: np.ndarray, y: np.ndarray) -> DLE:
        from sklearn.ensemble import HistGradientBoostingRegressor

        # Small and regularised: it learns from a holdout of a few hundred rows, and only
        # needs where the errors are large, not every wiggle (NannyML uses LightGBM; the
        # same kind of model, already in the stack).
        model = HistGradientBoostingRegressor(
            max_iter=100,
            learning_rate=0.05,
            max_leaf_nodes=15,
            min_samples_leaf=20,
            early_stopping=False,
            random_state=0,
        )
        with one_thread():
            model.fit(_design(X, prediction), np.abs(y - prediction))
        est = cls(model, features, {})
        est.holdout = _holdout_figures(est, prediction, np.ones(len(y)), X, y)
        return est

    def expected(
        self, prediction: np.ndarray, confidence: np.ndarray, X: np.ndarray | None
    ) -> np.ndarray:
        assert X is not None, "DLE reads the features"
        if not len(prediction):
            return np.empty(0)
        with one_thread():
            return np.clip(self.model.predict(_design(X, prediction)), 0.0, None)

    @staticmethod
    def realised(prediction: np.ndarray, actual: np.ndarray) -> np.ndarray:
        return np.abs(prediction - actual)

    def params(self) -> dict[str, Any]:
        return {"features": self.features, "target": "absolute_error"}

    def blob(self) -> bytes:
        import skops.io

        return bytes(skops.io.dumps(self.model, compression=zipfile.ZIP_DEFLATED))


def one_thread() -> Any:
    """Gradient boosting on one OpenMP thread. Its default, a thread per core, spins on a
    busy machine: on 2 cores under load, fitting 1,000 rows took 1.7 to 4.4 s instead of
    0.22 s, and predicting 100,000 rows 2.1 s instead of 0.95 s (threadpoolctl comes with
    scikit-learn)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def positive_probability(prediction: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """A binary model's P(y = 1) from what the log keeps: the predicted class's probability."""
    return np.where(prediction == 1.0, confidence, 1.0 - confidence)


def _design(X: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    return np.column_stack([X, prediction])


def _holdout_figures(
    est: PerformanceEstimator,
    prediction: np.ndarray,
    confidence: np.ndarray,
    X: np.ndarray | None,
    y: np.ndarray,
) -> dict[str, float]:
    return {
        "rows": float(len(y)),
        "realised": float(np.mean(est.realised(prediction, y))),
        "estimated": float(np.mean(est.expected(prediction, confidence, X))),
    }


# --- fitting at training -------------------------------------------------------------------


def fit_estimator(
    family: ModelFamily, pipeline: Any, X_hold: np.ndarray, y_hold: np.ndarray
) -> PerformanceEstimator | None:
    """The estimator of a freshly fitted ``pipeline``, from its holdout (None: too few rows).

    Scored through ``family.compile_scorer``, the way serving scores and logs rows, so the
    calibrated confidence is the very number the log will hold."""
    if len(y_hold) < MIN_HOLDOUT_ROWS:
        log.warning("no performance estimator: %d holdout rows", len(y_hold))
        return None
    scores = family.compile_scorer(pipeline, explain=False)(X_hold)
    prediction = np.asarray(scores.prediction, float)
    confidence = np.round(np.asarray(scores.confidence, float), 6)  # as the log keeps it
    y = np.asarray(y_hold, float)
    if family.task == Task.regression:
        return DLE.fit(list(family.feature_names), X_hold, prediction, y)
    return CBPE.fit(family.task == Task.classification, prediction, confidence, y)


# --- stored form ---------------------------------------------------------------------------


# (database, model, version, record id) -> the loaded estimator: a stored record never
# changes (a replaced one has a new id), so loading its skops bytes once per process is
# enough. Only the versions read lately are kept (a window holds one or two: champion and
# challenger).
_cache: dict[tuple[str, str, str, int], PerformanceEstimator] = {}
_cache_lock = threading.Lock()
CACHED_ESTIMATORS = 16


def save_estimator(session: Session, family: str, version: str, est: PerformanceEstimator) -> None:
    """Store ``est`` as version ``version``'s estimator (replacing an older one: a version
    number reused by a fresh MLflow store names a new model)."""
    session.execute(
        delete(EstimatorRecord).where(
            EstimatorRecord.family == family, EstimatorRecord.version == version
        )
    )
    session.add(
        EstimatorRecord(
            family=family,
            version=version,
            method=est.method,
            metric=est.metric,
            params=est.params(),
            holdout=est.holdout,
            model=est.blob(),
        )
    )


def load_estimator(session: Session, family: str, version: str) -> PerformanceEstimator | None:
    """Version ``version``'s estimator, None when it has none (or it cannot be read)."""
    found = session.execute(
        select(EstimatorRecord.id).where(
            EstimatorRecord.family == family, EstimatorRecord.version == version
        )
    ).scalar_one_or_none()
    if found is None:
        return None
    key = (str(session.get_bind().engine.url), family, version, found)
    cached = _cache.get(key)
    if cached is None:
        record = session.get(EstimatorRecord, found)
        if record is None:
            return None
        try:
            loaded = _from_record(record)
        except Exception as exc:  # a bad record is "no estimate", not a failed request
            log.warning("estimator of %s version %s unreadable: %s", family, version, exc)
            return None
        with _cache_lock:
            while len(_cache) >= CACHED_ESTIMATORS:
                del _cache[next(iter(_cache))]  # the oldest entry
            _cache[key] = cached = loaded
    return cached


def _from_record(record: EstimatorRecord) -> PerformanceEstimator:
    params, holdout = record.params, dict(record.holdout or {})
    if record.method == CBPE.method:
        return CBPE(params["calibrates"], np.array(params["x"]), np.array(params["y"]), holdout)
    if record.method == DLE.method:
        import skops.io

        data = bytes(record.model or b"")
        untrusted = set(skops.io.get_untrusted_types(data=data))
        if untrusted - DLE_TRUSTED_TYPES:
            raise ValueError(f"unexpected types in the stored model: {sorted(untrusted)}")
        model = skops.io.loads(data, trusted=sorted(untrusted))
        return DLE(model, list(params["features"]), holdout)
    raise ValueError(f"unknown estimation method {record.method!r}")


def run_artifacts(est: PerformanceEstimator) -> dict[str, bytes]:
    """The estimator as files of the training run (what the database keeps, readable)."""
    meta = {"method": est.method, "metric": est.metric, "holdout": est.holdout, **est.params()}
    files = {"estimator/estimator.json": json.dumps(meta, indent=2).encode()}
    blob = est.blob()
    if blob is not None:
        files["estimator/model.skops"] = blob
    return files


# --- at training: never the reason a retrain fails -------------------------------------------


def fit_or_none(
    family: ModelFamily, pipeline: Any, X_hold: np.ndarray, y_hold: np.ndarray
) -> PerformanceEstimator | None:
    """``fit_estimator``, or None (with a warning) when it fails: a version without an
    estimator is served all the same, its estimates then say "unavailable"."""
    try:
        return fit_estimator(family, pipeline, X_hold, y_hold)
    except Exception as exc:
        log.warning("no performance estimator for this %s version: %s", family.name, exc)
        return None


def keep(
    engine: Engine, run: TrackedRun, family: str, version: str, est: PerformanceEstimator | None
) -> bool:
    """Store ``est`` as ``version``'s estimator, and log it with the training run; False
    (with a warning) when it could not be stored."""
    if est is None:
        return False
    try:
        with session_scope(engine) as session:
            save_estimator(session, family, version, est)
    except Exception as exc:
        log.warning("estimator of %s version %s not stored: %s", family, version, exc)
        return False
    try:  # the database keeps the estimator: the run's copy is for people
        for path, content in run_artifacts(est).items():
            run.log_bytes(content, path)
    except Exception as exc:
        log.warning("estimator of %s version %s not logged to MLflow: %s", family, version, exc)
    return True
