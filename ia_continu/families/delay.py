"""The delay family: a ride booking's delay in minutes, with a risk level and the factors that
contributed most, learnt by a ridge regression on hand-made features."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from math import erf, floor, isfinite, sqrt
from typing import TYPE_CHECKING, Any, Self, overload

import numpy as np

from ia_continu.config import DELAY_TOLERANCE_MINUTES
from ia_continu.errors import InvalidFeatures, UntrainableDataset
from ia_continu.families.base import ModelFamily, Scores, Values
from ia_continu.serve.forms import ServingForm
from ia_continu.vocab import Task

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from ia_continu.config import Settings

# weather: 0 clear, 1 rain, 2 snow; weekday: 0 Monday .. 6 Sunday; traffic: congestion, 0..1
FEATURES = ("distance_km", "hour", "weekday", "weather", "traffic")
DESIGN = (
    "distance_km",
    "rush_hour",
    "traffic",
    "distance_x_rain",
    "distance_x_snow",
    "weekend",
    "night",
)
_DESIGN_NAMES = np.array(DESIGN, dtype=object)
# Below this many rows one comprehension costs less than _scores' masks (one row: 11 µs).
_FEW_ROWS = 8
# Risk bands in minutes of delay.
RISK_MEDIUM, RISK_HIGH = 5.0, 15.0
# Domain bounds: no ride is longer than this, no delay (or earliness) longer than a week.
MAX_DISTANCE_KM = 1000.0
MAX_DELAY_MINUTES = 10_000.0


def featurize(X: np.ndarray) -> np.ndarray:
    """Raw booking features -> the design matrix of the linear model (pure numpy, ~µs/row)."""
    if len(X) == 1:
        return np.array([_design_row(*X[0].tolist())])
    distance, hour, weekday, weather, traffic = X.T
    weekend = weekday >= 5
    rush = (((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))) & ~weekend
    night = (hour >= 22) | (hour <= 5)
    return np.column_stack(
        [
            distance,
            rush.astype(float),
            traffic,
            distance * (weather == 1),
            distance * (weather == 2),
            weekend.astype(float),
            night.astype(float),
        ]
    )


def _design_row(
    distance: float, hour: float, weekday: float, weather: float, traffic: float
) -> list[float]:
    """``featurize`` of one row, in Python: numpy's column work costs ~15 us on a single row
    (every /predict); the same arithmetic on floats gives the same values."""
    weekend = weekday >= 5
    rush = ((7 <= hour <= 9) or (16 <= hour <= 19)) and not weekend
    night = hour >= 22 or hour <= 5
    return [
        distance,
        float(rush),
        traffic,
        distance * (weather == 1),
        distance * (weather == 2),
        float(weekend),
        float(night),
    ]


def _problems(X: np.ndarray) -> list[str]:
    """What ``DelayFamily.validate`` refuses in a matrix of rows (one message per rule)."""
    problems = []
    if ((X[:, 0] < 0) | (X[:, 0] > MAX_DISTANCE_KM)).any():
        problems.append(f"distance_km must be in 0..{MAX_DISTANCE_KM:g}")
    if ((X[:, 1] < 0) | (X[:, 1] > 23) | (X[:, 1] != np.floor(X[:, 1]))).any():
        problems.append("hour must be an integer in 0..23")
    if ((X[:, 2] < 0) | (X[:, 2] > 6) | (X[:, 2] != np.floor(X[:, 2]))).any():
        problems.append("weekday must be an integer in 0..6 (0 = Monday)")
    if (~np.isin(X[:, 3], (0, 1, 2))).any():
        problems.append("weather must be 0 (clear), 1 (rain) or 2 (snow)")
    if ((X[:, 4] < 0) | (X[:, 4] > 1)).any():
        problems.append("traffic must be in 0..1")
    return problems


def _row_problems(
    distance: float, hour: float, weekday: float, weather: float, traffic: float
) -> list[str]:
    """``_problems`` of one row, on Python floats (numpy's masks cost ~25 us on one row)."""
    problems = []
    if not 0 <= distance <= MAX_DISTANCE_KM:
        problems.append(f"distance_km must be in 0..{MAX_DISTANCE_KM:g}")
    if not (0 <= hour <= 23 and hour == floor(hour)):
        problems.append("hour must be an integer in 0..23")
    if not (0 <= weekday <= 6 and weekday == floor(weekday)):
        problems.append("weekday must be an integer in 0..6 (0 = Monday)")
    if weather not in (0, 1, 2):
        problems.append("weather must be 0 (clear), 1 (rain) or 2 (snow)")
    if not 0 <= traffic <= 1:
        problems.append("traffic must be in 0..1")
    return problems


def true_delay(X: np.ndarray) -> np.ndarray:
    """The synthetic world's expected delay for latent (true) features."""
    D = featurize(X)
    w = np.array([0.22, 4.0, 7.0, 0.15, 0.45, -1.0, -1.5])
    return 0.5 + D @ w


class DelayFamily(ModelFamily):
    name = "delay"
    task = Task.regression
    feature_names = FEATURES
    primary_metric = "rmse"
    higher_is_better = False
    trusted_types = ("ia_continu.families.delay.featurize",)

    alpha = 1.0
    noise_minutes = 1.5

    def __init__(self, tolerance_minutes: float = DELAY_TOLERANCE_MINUTES) -> None:
        # A prediction is accurate when it is off by less than this many minutes.
        self.tolerance_minutes = tolerance_minutes

    @classmethod
    def configured(cls, settings: Settings | None) -> Self:
        return cls() if settings is None else cls(settings.delay_tolerance_minutes)

    def sample(
        self, n: int, *, rng: np.random.Generator, drift: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        distance = np.clip(rng.gamma(2.0, 4.0, n), 0.5, 80.0)
        hour = rng.choice(24, n, p=_HOUR_P).astype(float)
        weekday = rng.integers(0, 7, n).astype(float)
        weather = rng.choice(3, n, p=[0.7, 0.22, 0.08]).astype(float)
        rush = ((hour >= 7) & (hour <= 9)) | ((hour >= 16) & (hour <= 19))
        traffic = np.clip(rng.beta(2, 5, n) + 0.3 * rush, 0.0, 1.0)
        latent = np.column_stack([distance, hour, weekday, weather, traffic])
        y = np.maximum(true_delay(latent) + rng.normal(0, self.noise_minutes, n), -5.0)
        observed = latent.copy()
        # The drifted world: the booking app starts reporting distances in a new unit
        # (scaled by 1 - drift) and the traffic feed under-reads congestion.
        observed[:, 0] *= 1.0 - drift
        observed[:, 4] = np.clip(observed[:, 4] - 0.6 * drift, 0.0, 1.0)
        return observed, y

    def validate(self, X: np.ndarray) -> None:
        super().validate(X)
        problems = _row_problems(*X[0].tolist()) if len(X) == 1 else _problems(X)
        if problems:
            raise InvalidFeatures("; ".join(problems))

    def outcome_problem(self, value: float) -> str | None:
        if -MAX_DELAY_MINUTES <= value <= MAX_DELAY_MINUTES:
            return None
        return f"a delay must be within ±{MAX_DELAY_MINUTES:g} minutes"

    def build_pipeline(self) -> Pipeline:
        # Imported here, not at the top: serving never trains (see ClassificationFamily).
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        return Pipeline(
            [
                ("features", FunctionTransformer(featurize)),
                ("model", Ridge(alpha=self.alpha)),
            ]
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "estimator": "Ridge", "features": ",".join(DESIGN)}

    def check_trainable(self, y: np.ndarray) -> None:
        if len(y) < 10 or float(np.std(y)) == 0.0:
            raise UntrainableDataset("the dataset needs at least 10 rows with varying delays")

    def predict_values(self, pipeline: Any, X: np.ndarray) -> np.ndarray:
        return pipeline.predict(X)

    def evaluate(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        return {
            "mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
            "r2": float(r2_score(y_true, y_pred)),
            "accuracy": float(np.mean(self.accurate(y_pred, y_true))),
        }

    def after_fit(
        self,
        pipeline: Any,
        y_hold: np.ndarray,
        pred_hold: np.ndarray,
        X_hold: np.ndarray | None = None,
        y_train: np.ndarray | None = None,
    ) -> None:
        # The spread of the holdout's residuals: compile_scorer turns it into the confidence.
        pipeline.residual_std_ = float(np.std(y_hold - pred_hold))

    def compile_scorer(
        self, pipeline: Any, *, explain: bool = True
    ) -> Callable[[np.ndarray], Scores]:
        form = self.serving_form(pipeline)
        scorer = None if form is None else self.scorer_from_form(form, explain=explain)
        if scorer is None:
            confidence = self._confidence(float(getattr(pipeline, "residual_std_", 2.0)))
            return lambda X: self._scores(pipeline.predict(X), None, confidence)
        return scorer

    def _confidence(self, residual_std: float) -> float:
        # Confidence = P(|error| < tolerance) under the residuals seen on the holdout.
        return erf(self.tolerance_minutes / (sqrt(2.0) * max(residual_std, 1e-6)))

    def serving_form(self, pipeline: Any) -> ServingForm | None:
        # The family's own pipeline: featurize, then a linear model on the design matrix.
        steps = [step for _, step in pipeline.steps]
        if not (len(steps) == 2 and getattr(steps[0], "func", None) is featurize):
            return None
        model = steps[1]
        if not hasattr(model, "coef_") or np.ndim(model.coef_) != 1:
            return None
        return ServingForm(
            "linear-design/1",
            {"coef": model.coef_.astype(float), "intercept": np.atleast_1d(model.intercept_)},
            {
                "estimator": type(model).__name__,
                "residual_std": float(getattr(pipeline, "residual_std_", 2.0)),
                "design": list(DESIGN),
            },
        )

    def scorer_from_form(
        self, form: ServingForm, *, explain: bool = True
    ) -> Callable[[np.ndarray], Scores] | None:
        if form.kind != "linear-design/1" or list(form.meta.get("design", ())) != list(DESIGN):
            return None  # another release's features: the pipeline from MLflow knows them
        confidence = self._confidence(float(form.meta["residual_std"]))
        coef, intercept = form.arrays["coef"].copy(), float(form.arrays["intercept"][0])

        def score(X: np.ndarray) -> Scores:
            if len(X) == 1:
                return self._score_one(X, coef, intercept, confidence, explain)
            D = featurize(X)
            pred = D @ coef + intercept
            return self._scores(pred, D * coef if explain else None, confidence)

        return score

    @staticmethod
    def _score_one(
        X: np.ndarray, coef: np.ndarray, intercept: float, confidence: float, explain: bool
    ) -> Scores:
        """``score`` of one row (every ``/predict``): the prediction and contributions by the
        same numpy arithmetic, the risk band and the factors picked in Python (``_scores``'
        dozen numpy calls on arrays of one row: 18 us a row against 8.5, in-process)."""
        D = featurize(X)
        pred = D @ coef + intercept
        value = float(pred[0])
        risk = "high" if value >= RISK_HIGH else "medium" if value >= RISK_MEDIUM else "low"
        factors = None
        if explain:
            factors = [_top_factors_one((D[0] * coef).tolist())]
        return Scores(
            prediction=pred,
            confidence=np.array([confidence]),
            risk_level=[risk],
            contributing_factors=factors,
        )

    @staticmethod
    def _scores(pred: np.ndarray, contributions: np.ndarray | None, confidence: float) -> Scores:
        risk = np.where(pred >= RISK_HIGH, "high", np.where(pred >= RISK_MEDIUM, "medium", "low"))
        return Scores(
            prediction=pred,
            confidence=np.full(len(pred), confidence),
            risk_level=risk.tolist(),
            contributing_factors=None if contributions is None else TopFactors(contributions),
        )

    def fallback(self, X: np.ndarray) -> Scores:
        # The heuristic: half a minute of delay per kilometre (distance × 0.5).
        pred = X[:, 0] * 0.5
        scores = self._scores(pred, None, 0.5)
        scores.contributing_factors = [{"distance_km": p} for p in pred.round(3).tolist()]
        return scores

    def accurate(self, prediction: Values, actual: Values) -> Values:
        # |prediction - actual| < tolerance, without abs(): SQL expressions have no __abs__.
        tolerance = self.tolerance_minutes
        return (prediction - actual < tolerance) & (actual - prediction < tolerance)


# More bookings in the day than at night.
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.3, 0.5, 1, 3, 6, 8, 6, 4, 4, 5, 5, 4, 4, 6, 8, 8, 6, 4, 3, 2, 1.5]
)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()


class TopFactors(Sequence[dict[str, float]]):
    """The contributing factors of a batch: each row's three largest contributions (in
    minutes, rounded to 3 decimals, zeros left out), built from the contributions on first use.

    A batch's answer does not carry them; the prediction log does, and builds its rows in the
    writer's thread. Deferred, the argsort, picking and dicts (~6 ms of a 10,000-row call's
    ~21 ms in py-spy, unpinned) leave the request: 48 -> 26 ms a call in ``bench.run`` (one
    core, logging on), and a process with logging off never builds them. Rows a caller
    reads (a mixed rollout, a shadow subset) are built then, in its thread: the same dicts
    either way."""

    __slots__ = ("_contributions", "_rows")

    def __init__(self, contributions: np.ndarray) -> None:
        self._contributions = contributions
        self._rows: list[dict[str, float]] | None = None

    def __len__(self) -> int:
        return len(self._contributions)

    @overload
    def __getitem__(self, index: int) -> dict[str, float]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, float]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, float] | list[dict[str, float]]:
        return self.rows()[index]

    def __iter__(self) -> Iterator[dict[str, float]]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        # Equal to the list it stands for (and to another TopFactors of the same rows).
        if isinstance(other, TopFactors):
            other = other.rows()
        return isinstance(other, list) and self.rows() == other

    def __repr__(self) -> str:
        return f"TopFactors({self.rows()!r})"

    def rows(self) -> list[dict[str, float]]:
        if self._rows is None:
            self._rows = _top_factors(self._contributions)
        return self._rows


def _top_factors_one(contributions: list[float]) -> dict[str, float]:
    """``_top_factors`` of one row (every ``/predict``), in Python: the same dict, in the same
    order, at ~1.2 us against ~3 for numpy's argsort and round on seven values.

    Ties keep the features' order, as the batch's stable argsort does. Rounded as numpy's
    ``round(3)`` rounds: the value times 1000 to the nearest integer, ties to even (Python's
    ``round``), divided by 1000; only a -0.0 would come out 0.0, and zeros are left out."""
    order = [-abs(v) for v in contributions]
    out: dict[str, float] = {}
    for i in sorted(range(len(order)), key=order.__getitem__)[:3]:
        value = contributions[i]
        # round() refuses a NaN or an infinity; numpy keeps it as it is.
        rounded = round(value * 1000.0) / 1000.0 if isfinite(value) else value
        if rounded != 0.0:
            out[DESIGN[i]] = rounded
    return out


def _top_factors(contributions: np.ndarray) -> list[dict[str, float]]:
    # Picked and rounded in numpy: per-row numpy scalars cost ~10 us a row, 100 ms a batch.
    # Stable: ties keep the features' order, whatever sort numpy dispatches to on this CPU
    # (its default is not stable on every one), so a row's factors do not depend on it.
    top = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :3]
    picked = np.take_along_axis(contributions, top, axis=1).round(3)
    values = picked.tolist()
    names = _DESIGN_NAMES[top].tolist()  # the same str objects, not new ones a row
    if len(values) < _FEW_ROWS:
        return [
            {k: v for k, v in zip(ks, vs, strict=True) if v != 0.0}
            for ks, vs in zip(names, values, strict=True)
        ]
    # dict(zip()) a row, then the zeros dropped where a row has one: 10,000 rows 7 ms instead
    # of 20 ms with a comprehension a row (the same dicts).
    factors: list[dict[str, float]] = list(map(dict, map(zip, names, values)))
    for i in np.flatnonzero((picked == 0.0).any(axis=1)).tolist():
        factors[i] = {k: v for k, v in factors[i].items() if v != 0.0}
    return factors
