"""Drift of the served model's inputs and outputs: Evidently compares recent prediction inputs
with the data the champion was trained on, and the result is kept (table, HTML report, MLflow).

Besides the inputs (``dataset_drift``: what retrains with poor metrics), the same check
compares the model's outputs, reported apart and never counted as input drift:

- prediction drift: the champion's answers in the window (the rows it answered itself, not
  the fallback's nor a challenger's) against its predictions on its own training data. The
  training data is the reference the inputs already use, and it exists from the first
  minute of a champion; a logged reference window would be a moving target (the window
  picked may itself be drifted) and a new champion has none;
- target drift: the window's known outcomes against the training labels.

Each is judged by Evidently's ``ValueDrift`` test (its method picked by type and size: a
classifier's answers and labels are categories, a regressor's numbers), or left unjudged
(None) with fewer than ``RecentInputs.min_rows`` rows.

Evidently takes ~5.8 s to import, so it is imported inside ``run_drift_check`` only: the API
process never pays for it (tests/flows/test_loop.py checks that importing this module does
not import evidently).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy import Engine, Select, case, select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.learn import registry
from ia_continu.learn.datasets import LoadedDataset, load_dataset
from ia_continu.learn.realign import realign_mixed
from ia_continu.learn.tracking import tracked_run
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import DriftReport, PredictionLog, utcnow
from ia_continu.vocab import ServedBy, Task
from ia_continu.watch.quality import StoredTime

log = logging.getLogger(__name__)


# The output columns beside the features in Evidently's frames. Feature names are
# identifiers (declared schema), so a name with a space never collides with one.
PREDICTION_COLUMN = "model prediction"
TARGET_COLUMN = "actual outcome"
OUTPUTS = (PREDICTION_COLUMN, TARGET_COLUMN)


@dataclass(slots=True)
class DriftResult:
    status: Literal["checked", "skipped"]
    family: str
    model_version: str | None = None
    dataset_drift: bool = False
    drift_share: float = 0.0  # share of drifted columns
    threshold_share: float = 0.5
    drifted_features: list[str] = field(default_factory=list)
    feature_scores: dict[str, float] = field(default_factory=dict)
    feature_methods: dict[str, str] = field(default_factory=dict)
    reference_rows: int = 0
    current_rows: int = 0
    report_path: str | None = None
    mlflow_run_id: str | None = None
    report_id: int | None = None
    reason: str = ""
    duration_s: float = 0.0
    # The outputs (module docstring), each apart from the inputs.
    prediction: OutputDrift = field(default_factory=lambda: OutputDrift())
    target: OutputDrift = field(default_factory=lambda: OutputDrift())

    @property
    def output_drift(self) -> bool:
        """The predictions or the outcomes drifted (never input drift by itself)."""
        return bool(self.prediction.drifted or self.target.drifted)

    def outputs_summary(self) -> str:
        """ "predictions drifted, outcomes not judged (12 rows)"."""
        return f"{self.prediction.describe('predictions')}, {self.target.describe('outcomes')}"


@dataclass(frozen=True, slots=True)
class OutputDrift:
    """Evidently's verdict on one output column; ``drifted`` None: not judged (too few rows,
    or no reference for it), which is not "no drift"."""

    drifted: bool | None = None
    score: float | None = None  # the test's: a p-value or a distance, see ``method``
    method: str | None = None
    rows: int = 0  # the recent rows it was judged on

    @classmethod
    def judged(cls, found: SnapshotDrift, column: str, rows: int) -> OutputDrift:
        if column not in found.scores:
            return cls(rows=rows)
        return cls(
            column in found.drifted, found.scores[column], found.methods.get(column) or None, rows
        )

    def describe(self, what: str) -> str:
        if self.drifted is None:
            return f"{what} not judged ({self.rows} rows)"
        return f"{what} {'drifted' if self.drifted else 'stable'}"

    def columns(self, prefix: str) -> dict[str, Any]:
        """As the ``drift_reports`` columns of that output (``prediction_drift``...)."""
        return {
            f"{prefix}_drift": self.drifted,
            f"{prefix}_drift_score": self.score,
            f"{prefix}_drift_method": self.method,
            f"{prefix}_rows": self.rows,
        }


def champion_generation_id(settings: Settings, version: str) -> int | None:
    """The dataset the champion was trained on (the ``generation_id`` param of its run)."""
    client = registry.mlflow_client(settings)
    mv = client.get_model_version(settings.registered_model_name, str(version))
    if not mv.run_id:
        return None
    value = client.get_run(mv.run_id).data.params.get("generation_id")
    return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class RecentInputs:
    """The predictions a drift check compares with the training data: the newest ``max_rows``
    of the last ``hours``. Fewer than ``min_rows`` say nothing: the check is skipped."""

    hours: int = 24
    max_rows: int = 100_000
    min_rows: int = 100

    def rows(self, engine: Engine, family: ModelFamily, champion: str | None) -> RecentRows:
        """Their feature vectors, newest first, in the current feature order (rows logged
        under an older declaration realigned by name; those lacking a required feature left
        out), with, aligned, what ``champion`` answered on each (NaN where it did not
        answer: the fallback, a challenger) and the outcome (NaN where unknown)."""
        P = PredictionLog
        since = utcnow() - timedelta(hours=self.hours)
        mine = (P.served_by == ServedBy.ml) & (P.model_version == (champion or ""))
        answered = case((mine, P.prediction), else_=None)
        with session_scope(engine) as session:
            rows = session.execute(
                select(P.features, P.schema_id, answered, P.actual)
                .where(P.family == family.name, P.created_at >= since)
                .order_by(P.id.desc())
                .limit(self.max_rows)
            ).all()
            realigned = realign_mixed(session, [r[0] for r in rows], [r[1] for r in rows], family)
        if realigned.missing:
            log.warning(
                "drift check of %s: %d recent predictions left out, logged without the "
                "required feature(s) %s",
                family.name,
                len(rows) - len(realigned.X),
                realigned.missing,
            )
        outputs = np.array([(r[2], r[3]) for r in rows], dtype=np.float64).reshape(-1, 2)
        kept = outputs[realigned.kept]
        return RecentRows(realigned.X, kept[:, 0], kept[:, 1])


@dataclass(frozen=True, slots=True)
class RecentRows:
    """Recent rows: features, the champion's answers and the outcomes (NaN: none)."""

    X: np.ndarray
    prediction: np.ndarray
    actual: np.ndarray

    def known(self, values: np.ndarray) -> int:
        return int(np.count_nonzero(~np.isnan(values)))


@dataclass(frozen=True, slots=True)
class SnapshotDrift:
    """What an Evidently report says: each feature's drift score and test method, the
    features whose drift test failed (sorted), and the share of drifted features."""

    scores: dict[str, float]
    methods: dict[str, str]
    drifted: list[str]
    share: float


def parse_snapshot(snapshot: dict[str, Any]) -> SnapshotDrift:
    """Read an Evidently (0.7) snapshot's ``dict()``. Its reports carry no "drifted" boolean:
    a column drifted when its ValueDrift test FAILed, and the dataset's share of drifted
    columns is the DriftedColumnsCount metric's ``share``."""
    scores: dict[str, float] = {}
    methods: dict[str, str] = {}
    share = 0.0
    for metric in snapshot.get("metrics", []):
        config = metric.get("config", {})
        kind = config.get("type", "")
        if kind.endswith("ValueDrift"):
            scores[config["column"]] = float(metric["value"])
            methods[config["column"]] = str(config.get("method", ""))
        elif kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    drifted = []
    for test in snapshot.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith("ValueDrift") and test.get("status") == "FAIL":
            drifted.append(params["column"])
    return SnapshotDrift(scores, methods, sorted(drifted), share)


def drift_datasets(
    family: ModelFamily,
    reference: np.ndarray,
    current: np.ndarray,
    outputs: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {}),
) -> tuple[Any, Any]:
    """The two sides of the comparison as Evidently reads them.

    A declared model's matrix holds category codes and booleans as numbers: Evidently would
    test a code's "mean" with a numeric test. So its rows go in as the declared values
    (``decode``: category texts, booleans) with each column's type declared, categories and
    booleans tested as categories, numbers and integers as numbers. The built-in families'
    features are all numbers: their frames go in as they are, typed by Evidently.

    ``outputs`` (reference, current): extra columns by name (``PREDICTION_COLUMN``,
    ``TARGET_COLUMN``), one value per row, NaN where unknown; a classifier's are categories
    (class indices), a regressor's numbers.
    """
    import pandas as pd
    from evidently import DataDefinition, Dataset

    from ia_continu.declared.family import DeclaredFamily

    names = list(outputs[0])
    as_categories = family.task != Task.regression
    out_num, out_cat = ([], names) if as_categories else (names, [])
    if isinstance(family, DeclaredFamily):
        features = family.declaration.features
        definition = DataDefinition(
            numerical_columns=[f.name for f in features if f.type in ("number", "integer")]
            + out_num,
            categorical_columns=[f.name for f in features if f.type in ("category", "boolean")]
            + out_cat,
        )
        ref, cur = family.decode(reference), family.decode(current)
    else:
        # Only the outputs are typed: the features keep Evidently's own typing.
        definition = DataDefinition(categorical_columns=out_cat) if out_cat else None
        columns = list(family.feature_names)
        ref, cur = pd.DataFrame(reference, columns=columns), pd.DataFrame(current, columns=columns)
        if definition is None and not names:
            return ref, cur
    for frame, values in ((ref, outputs[0]), (cur, outputs[1])):
        for name, column in values.items():
            frame[name] = column
    return (
        Dataset.from_pandas(ref, data_definition=definition),
        Dataset.from_pandas(cur, data_definition=definition),
    )


def reference_outputs(
    settings: Settings, family: ModelFamily, version: str, reference: LoadedDataset
) -> dict[str, np.ndarray]:
    """The champion's predictions on its training data and the training labels; without the
    predictions when the champion cannot be loaded (the labels still judge the outcomes)."""
    out = {TARGET_COLUMN: np.asarray(reference.y, dtype=np.float64)}
    try:
        pipeline = registry.load_pipeline(settings, version)
        predicted = family.predict_values(pipeline, reference.X)
    except Exception:
        log.warning("drift check: champion %s not loaded, predictions not judged", version)
        return out
    return {PREDICTION_COLUMN: np.asarray(predicted, dtype=np.float64), **out}


def run_drift_check(
    settings: Settings, engine: Engine, recent: RecentInputs = RecentInputs()
) -> DriftResult:
    """Compare the champion's training data with recent inputs; record and return the result
    (a drift_reports row, an HTML report, an MLflow run).

    Skips (status "skipped", with a reason, nothing written) when there is no champion, its
    training data is gone, or fewer than ``recent.min_rows`` recent predictions exist: a drift
    test on a handful of rows says nothing.
    """
    started = time.perf_counter()
    family = get_family(settings.family, settings)
    result = DriftResult(status="skipped", family=family.name, threshold_share=settings.drift_share)
    with session_scope(engine) as session:
        version = registry.champion_version(session, family.name)
    result.model_version = version
    if version is None:
        result.reason = "no champion model yet: nothing to compare against"
        return result
    try:
        generation_id = champion_generation_id(settings, version)
        with session_scope(engine) as session:
            reference = load_dataset(session, family, generation_id)
    except Exception as exc:  # missing run, param or dataset: all mean "cannot check"
        result.reason = f"training data of champion {version} unavailable: {exc}"
        return result
    recent_rows = recent.rows(engine, family, version)
    current = recent_rows.X
    result.reference_rows, result.current_rows = len(reference.X), len(current)
    if len(current) < recent.min_rows:
        result.reason = (
            f"only {len(current)} predictions in the last {recent.hours} h (need {recent.min_rows})"
        )
        return result

    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = list(family.feature_names)
    ref_outputs = reference_outputs(settings, family, version, reference)
    cur_outputs = {PREDICTION_COLUMN: recent_rows.prediction, TARGET_COLUMN: recent_rows.actual}
    counts = {name: recent_rows.known(values) for name, values in cur_outputs.items()}
    # An output is judged with as many rows as the inputs need; fewer say nothing.
    judged = [n for n in ref_outputs if counts[n] >= recent.min_rows]
    ref_data, cur_data = drift_datasets(
        family,
        reference.X,
        current,
        ({n: ref_outputs[n] for n in judged}, {n: cur_outputs[n] for n in judged}),
    )
    # The preset tests the features only: the outputs are judged apart, so they never count
    # in the share of drifted features, which alone means input drift.
    report = Report(
        [
            DataDriftPreset(columns=columns, drift_share=settings.drift_share),
            *(ValueDrift(column=n) for n in judged),
        ],
        include_tests=True,
    )
    # Evidently computes a correlation matrix of the numeric features for its report; a
    # constant one (a feature every recent request left at its default) divides 0 by 0
    # there. That matrix is only drawn, never tested: its NaN is harmless, the warning noise.
    with np.errstate(divide="ignore", invalid="ignore"):
        snapshot = report.run(current_data=cur_data, reference_data=ref_data)
    found = parse_snapshot(snapshot.dict())
    result.prediction = OutputDrift.judged(found, PREDICTION_COLUMN, counts[PREDICTION_COLUMN])
    result.target = OutputDrift.judged(found, TARGET_COLUMN, counts[TARGET_COLUMN])
    scores = {k: v for k, v in found.scores.items() if k not in OUTPUTS}
    drifted = [c for c in found.drifted if c not in OUTPUTS]
    share = found.share
    result.status = "checked"
    result.feature_scores = scores
    result.feature_methods = {k: v for k, v in found.methods.items() if k not in OUTPUTS}
    result.drifted_features, result.drift_share = drifted, share
    # Evidently's own test fails at share >= drift_share; keep the same rule here.
    result.dataset_drift = share >= settings.drift_share

    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_%f")
    reports_dir = Path(settings.reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"drift_{family.name}_{stamp}.html"
    snapshot.save_html(str(path))
    result.report_path = str(path)
    result.reason = (
        f"{len(drifted)}/{len(columns)} features drifted (share {share:.2f},"
        f" threshold {settings.drift_share}); {result.outputs_summary()}"
    )

    result.mlflow_run_id = _log_to_mlflow(settings, result, stamp)

    with session_scope(engine) as session:
        row = DriftReport(
            family=family.name,
            model_version=version,
            dataset_drift=result.dataset_drift,
            drift_share=share,
            drifted_features=drifted,
            feature_scores=scores,
            reference_rows=result.reference_rows,
            current_rows=result.current_rows,
            report_path=result.report_path,
            **result.prediction.columns("prediction"),
            **result.target.columns("target"),
        )
        session.add(row)
        session.flush()
        result.report_id = row.id
    result.duration_s = round(time.perf_counter() - started, 3)
    return result


def _log_to_mlflow(settings: Settings, result: DriftResult, stamp: str) -> str | None:
    # MLflow is a record, not a dependency of the check: a failing store must not lose the
    # drift result (the DB row is what the retrain decision reads).
    try:
        with tracked_run(settings, f"drift_check_{stamp}") as run:
            run.log(
                tags={
                    "ia_continu.kind": "drift_check",
                    "ia_continu.model_version": result.model_version or "",
                },
                params={
                    "family": result.family,
                    "threshold_share": result.threshold_share,
                    "reference_rows": result.reference_rows,
                    "current_rows": result.current_rows,
                },
                metrics={
                    "drift_share": result.drift_share,
                    "dataset_drift": float(result.dataset_drift),
                    **{f"drift_score_{k}": v for k, v in result.feature_scores.items()},
                    **{
                        f"{name}_{key}": float(value)
                        for name, output in (
                            ("prediction", result.prediction),
                            ("target", result.target),
                        )
                        for key, value in (("drift", output.drifted), ("drift_score", output.score))
                        if value is not None
                    },
                },
            )
            if result.report_path:
                run.log_artifact(result.report_path, artifact_path="drift")
            return run.run_id
    except Exception:
        log.exception("drift check not logged to MLflow")
        return None


def _latest(family: str, max_age_hours: int | None = None) -> Select[tuple[DriftReport]]:
    query = select(DriftReport).where(DriftReport.family == family)
    if max_age_hours is not None:
        query = query.where(DriftReport.created_at >= utcnow() - timedelta(hours=max_age_hours))
    return query.order_by(DriftReport.created_at.desc(), DriftReport.id.desc()).limit(1)


def latest_report(
    engine: Engine, family: str, *, max_age_hours: int | None = None
) -> DriftReport | None:
    """The newest drift row of a family, if not older than ``max_age_hours`` (what the retrain
    decision reads)."""
    with session_scope(engine) as session:
        return session.scalars(_latest(family, max_age_hours)).first()


class DriftStatus(BaseModel):
    """The newest drift check of a family, as the dashboard shows it (read from its row)."""

    model_config = ConfigDict(from_attributes=True)

    dataset_drift: bool
    drift_share: float  # share of drifted features
    drifted_features: list[str]
    feature_scores: dict[str, float]
    reference_rows: int
    current_rows: int
    model_version: str | None
    created_at: StoredTime
    report_path: str | None
    # The outputs, apart from the inputs: None when not judged (too few rows, or a check
    # from before they were).
    prediction_drift: bool | None = Field(
        None, description="the champion's answers moved away from its answers on its training data"
    )
    prediction_drift_score: float | None = Field(
        None, description="the test's score (a p-value or a distance: see the method)"
    )
    prediction_drift_method: str | None = None
    prediction_rows: int | None = Field(None, description="recent answers of the champion judged")
    target_drift: bool | None = Field(
        None, description="the known outcomes moved away from the training labels"
    )
    target_drift_score: float | None = None
    target_drift_method: str | None = None
    target_rows: int | None = Field(None, description="recent outcomes judged")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Literal["drift", "ok"]:
        """Input drift only: drifted predictions or outcomes have their own fields."""
        return "drift" if self.dataset_drift else "ok"


class NoDriftCheck(BaseModel):
    """No drift check has run yet: a normal state for a new deployment, not an error."""

    status: Literal["none"] = "none"


def latest_status(session: Session, family: str) -> DriftStatus | NoDriftCheck:
    """The newest drift check of ``family``, or NoDriftCheck before the first one."""
    row = session.scalars(_latest(family)).first()
    return NoDriftCheck() if row is None else DriftStatus.model_validate(row)
