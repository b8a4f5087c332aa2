"""Data drift of the served model's inputs: Evidently compares recent prediction inputs with
the data the champion was trained on, and the result is kept (table, HTML report, MLflow).

Evidently takes ~5.8 s to import, so it is imported inside ``run_drift_check`` only: the API
process never pays for it (tests/flows/test_drift.py checks that importing this module does
not import evidently).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.learn import registry
from ia_continu.learn.datasets import load_dataset
from ia_continu.learn.tracking import tracked_run
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import DriftReport, PredictionLog, utcnow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DriftResult:
    status: str  # "checked" or "skipped"
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def champion_generation_id(settings: Settings, version: str) -> int | None:
    """The dataset the champion was trained on (the ``generation_id`` param of its run)."""
    client = registry.mlflow_client(settings)
    mv = client.get_model_version(settings.registered_model_name, str(version))
    if not mv.run_id:
        return None
    value = client.get_run(mv.run_id).data.params.get("generation_id")
    return int(value) if value is not None else None


def recent_inputs(engine: Engine, family: ModelFamily, *, hours: int, max_rows: int) -> np.ndarray:
    """Feature vectors of the newest predictions (at most ``max_rows`` within ``hours``)."""
    since = utcnow() - timedelta(hours=hours)
    with session_scope(engine) as session:
        rows = session.scalars(
            select(PredictionLog.features)
            .where(PredictionLog.family == family.name, PredictionLog.created_at >= since)
            .order_by(PredictionLog.id.desc())
            .limit(max_rows)
        ).all()
    return np.asarray(rows, dtype=float).reshape(len(rows), family.n_features)


def parse_snapshot(
    snapshot: dict[str, Any],
) -> tuple[dict[str, float], dict[str, str], list[str], float]:
    """Evidently 0.7 has no boolean: per-column drift is a FAILed ValueDrift test and the
    dataset's share comes from DriftedColumnsCount (../shared/STACK.md)."""
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
    return scores, methods, sorted(drifted), share


def run_drift_check(
    settings: Settings,
    engine: Engine,
    *,
    hours: int = 24,
    max_rows: int = 100_000,
    min_rows: int = 100,
    log_to_mlflow: bool = True,
) -> DriftResult:
    """Compare the champion's training data with recent inputs; record and return the result.

    Skips (status "skipped", with a reason, nothing written) when there is no champion, its
    training data is gone, or fewer than ``min_rows`` recent predictions exist: a drift test
    on a handful of rows says nothing.
    """
    started = time.perf_counter()
    family = get_family(settings.family)
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
    current = recent_inputs(engine, family, hours=hours, max_rows=max_rows)
    result.reference_rows, result.current_rows = len(reference.X), len(current)
    if len(current) < min_rows:
        result.reason = f"only {len(current)} predictions in the last {hours} h (need {min_rows})"
        return result

    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    columns = list(family.feature_names)
    ref_df = pd.DataFrame(reference.X, columns=columns)
    cur_df = pd.DataFrame(current, columns=columns)
    snapshot = Report([DataDriftPreset(drift_share=settings.drift_share)], include_tests=True).run(
        current_data=cur_df, reference_data=ref_df
    )
    scores, methods, drifted, share = parse_snapshot(snapshot.dict())
    result.status = "checked"
    result.feature_scores, result.feature_methods = scores, methods
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

    if log_to_mlflow:
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


def latest_report(
    engine: Engine, family: str, *, max_age_hours: int | None = None
) -> DriftReport | None:
    """The newest drift row of a family (what the retrain decision and the dashboard read)."""
    with session_scope(engine) as session:
        query = select(DriftReport).where(DriftReport.family == family)
        if max_age_hours is not None:
            query = query.where(DriftReport.created_at >= utcnow() - timedelta(hours=max_age_hours))
        return session.scalars(query.order_by(DriftReport.id.desc()).limit(1)).first()
