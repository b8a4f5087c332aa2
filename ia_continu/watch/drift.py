"""Data drift of the served model's inputs: Evidently compares recent prediction inputs with
the data the champion was trained on, and the result is kept (table, HTML report, MLflow).

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
from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.learn import registry
from ia_continu.learn.datasets import load_dataset
from ia_continu.learn.realign import realign_mixed
from ia_continu.learn.tracking import tracked_run
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import DriftReport, PredictionLog, utcnow
from ia_continu.watch.quality import StoredTime

log = logging.getLogger(__name__)


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

    def load(self, engine: Engine, family: ModelFamily) -> np.ndarray:
        """Their feature vectors, newest first, in the current feature order (rows logged
        under an older declaration realigned by name; those lacking a required feature left
        out)."""
        since = utcnow() - timedelta(hours=self.hours)
        with session_scope(engine) as session:
            rows = session.execute(
                select(PredictionLog.features, PredictionLog.schema_id)
                .where(PredictionLog.family == family.name, PredictionLog.created_at >= since)
                .order_by(PredictionLog.id.desc())
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
        return realigned.X


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
    family: ModelFamily, reference: np.ndarray, current: np.ndarray
) -> tuple[Any, Any]:
    """The two sides of the comparison as Evidently reads them.

    A declared model's matrix holds category codes and booleans as numbers: Evidently would
    test a code's "mean" with a numeric test. So its rows go in as the declared values
    (``decode``: category texts, booleans) with each column's type declared, categories and
    booleans tested as categories, numbers and integers as numbers. The built-in families'
    features are all numbers: their frames go in as they are, typed by Evidently.
    """
    import pandas as pd
    from evidently import DataDefinition, Dataset

    from ia_continu.declared.family import DeclaredFamily

    if not isinstance(family, DeclaredFamily):
        columns = list(family.feature_names)
        return pd.DataFrame(reference, columns=columns), pd.DataFrame(current, columns=columns)
    features = family.declaration.features
    definition = DataDefinition(
        numerical_columns=[f.name for f in features if f.type in ("number", "integer")],
        categorical_columns=[f.name for f in features if f.type in ("category", "boolean")],
    )
    return (
        Dataset.from_pandas(family.decode(reference), data_definition=definition),
        Dataset.from_pandas(family.decode(current), data_definition=definition),
    )


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
    current = recent.load(engine, family)
    result.reference_rows, result.current_rows = len(reference.X), len(current)
    if len(current) < recent.min_rows:
        result.reason = (
            f"only {len(current)} predictions in the last {recent.hours} h (need {recent.min_rows})"
        )
        return result

    from evidently import Report
    from evidently.presets import DataDriftPreset

    columns = list(family.feature_names)
    ref_data, cur_data = drift_datasets(family, reference.X, current)
    snapshot = Report([DataDriftPreset(drift_share=settings.drift_share)], include_tests=True).run(
        current_data=cur_data, reference_data=ref_data
    )
    found = parse_snapshot(snapshot.dict())
    scores, drifted, share = found.scores, found.drifted, found.share
    result.status = "checked"
    result.feature_scores, result.feature_methods = scores, found.methods
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
        f" threshold {settings.drift_share})"
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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Literal["drift", "ok"]:
        return "drift" if self.dataset_drift else "ok"


class NoDriftCheck(BaseModel):
    """No drift check has run yet: a normal state for a new deployment, not an error."""

    status: Literal["none"] = "none"


def latest_status(session: Session, family: str) -> DriftStatus | NoDriftCheck:
    """The newest drift check of ``family``, or NoDriftCheck before the first one."""
    row = session.scalars(_latest(family)).first()
    return NoDriftCheck() if row is None else DriftStatus.model_validate(row)
