"""ORM tables. The schema itself is owned by the Alembic migrations in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ia_continu.store.engine import Base


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# Timestamps are naive UTC everywhere: SQLite has no time zones, and mixing aware and naive
# values across the two backends is the classic source of off-by-hours metric windows.
Timestamp = DateTime(timezone=False)


class FeatureSchema(Base):
    """An ordered list of feature names a model stored rows under (migration 0003).

    Rows keep features as lists of encoded numbers; ``schema_id`` on a row says which name
    each position is, so a declaration that changes its features never misreads old rows."""

    __tablename__ = "feature_schemas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    names: Mapped[list[str]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the names, in order
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (
        UniqueConstraint("family", "fingerprint", name="uq_feature_schemas_family_fingerprint"),
    )


class Dataset(Base):
    """A batch of labelled rows: drawn by /generate, imported from a file, or ingested."""

    __tablename__ = "datasets"

    generation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    samples_count: Mapped[int] = mapped_column(Integer)
    drift: Mapped[bool] = mapped_column(Boolean, default=False)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hour_generated: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    # simulator, import, ingest, predictions (labelled predictions: truth.snapshot_labelled);
    # NULL on rows from before migration 0003: "simulator".
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    source_name: Mapped[str | None] = mapped_column(Text, nullable=True)  # file name or query
    # SHA-256 of the imported content: the ingestion flow loads each file once per model.
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    schema_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # FeatureSchema.id

    __table_args__ = (
        Index("ux_datasets_family_fingerprint", "family", "fingerprint", unique=True),
    )


class DatasetSample(Base):
    __tablename__ = "dataset_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.generation_id", ondelete="CASCADE"), index=True
    )
    # Feature vectors are stored as JSON lists so that both families share one table;
    # training and drift read whole datasets at once, never filter on a single feature.
    features: Mapped[list[float]] = mapped_column(JSON)
    target: Mapped[float] = mapped_column(Float)


class PredictionLog(Base):
    """Every answered prediction, joined later to its outcome."""

    __tablename__ = "prediction_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100))
    booking_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    driver_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    family: Mapped[str] = mapped_column(String(64))
    features: Mapped[list[float]] = mapped_column(JSON)

    prediction: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    risk_level: Mapped[str | None] = mapped_column(String(20), nullable=True)
    contributing_factors: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)

    model_version: Mapped[str] = mapped_column(String(50))
    latency_ms: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(32))  # why it was answered so: vocab.Decision
    served_by: Mapped[str] = mapped_column(String(16))  # who answered: vocab.ServedBy
    rollout_percentage: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Shadow mode: both answers kept, so the lift of ML over the heuristic can be measured.
    ml_prediction: Mapped[float | None] = mapped_column(Float, nullable=True)
    fallback_prediction: Mapped[float | None] = mapped_column(Float, nullable=True)

    actual: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[float | None] = mapped_column(Float, nullable=True)  # |prediction - actual|
    is_accurate: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    # FeatureSchema.id: which feature each position of ``features`` is (NULL: the built-in
    # families' original order, rows from before migration 0003).
    schema_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    # While a challenger is live (migration 0004): the arm an ML-routed row was assigned to
    # (vocab.Arm), the challenger's version, and its answer on the champion's rows it scored
    # in shadow (both answers on one row: the paired comparison).
    arm: Mapped[str | None] = mapped_column(String(16), nullable=True)
    challenger_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    challenger_prediction: Mapped[float | None] = mapped_column(Float, nullable=True)

    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    actual_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # Every monitoring query is "one family since t": a range of this index (migration 0002).
        Index("ix_prediction_log_family_created", "family", "created_at"),
        # Windowed metrics read only rows with an outcome: (created_at, actual) covers them,
        # and any range on created_at alone (its own index went in migration 0007).
        Index("ix_prediction_log_created_actual", "created_at", "actual"),
        Index("ix_prediction_log_request_id", "request_id"),
        Index("ix_prediction_log_booking_id", "booking_id"),
    )


class ModelEvent(Base):
    """Audit log of the model lifecycle; ``event`` is an ``ia_continu.vocab.ModelEventKind``."""

    __tablename__ = "model_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    previous_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (Index("ix_model_events_family_created", "family", "created_at"),)


class ChampionHistory(Base):
    """Every change of champion. MLflow aliases keep only the present; this keeps the past."""

    __tablename__ = "champion_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # vocab.ChampionAction
    version: Mapped[str] = mapped_column(String(50))
    previous_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (Index("ix_champion_history_family_id", "family", "id"),)


class RolloutConfig(Base):
    """The ML rollout flag, shared by every replica and kept across restarts."""

    __tablename__ = "rollout_config"

    family: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    percentage: Mapped[float] = mapped_column(Float, default=100.0)
    fallback_on_error: Mapped[bool] = mapped_column(Boolean, default=True)
    shadow_rate: Mapped[float] = mapped_column(Float, default=0.0)
    # Stats are derived from the prediction log since this instant; reset-stats moves it.
    stats_since: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)


class ChallengerArm(Base):
    """A version judged live against the champion: in shadow, or answering a canary share.

    At most one arm per model is ``active`` (a partial unique index); ended arms stay, with
    how they ended, for the audit and the dashboard. Every replica reads the active arm (the
    champion poller, ``serve.champion``), so a step reaches all of them within a poll."""

    __tablename__ = "challenger_arms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(50))
    champion_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    policy: Mapped[str] = mapped_column(String(24))  # the policy it was started under
    mode: Mapped[str] = mapped_column(String(16))  # vocab.ArmMode
    step: Mapped[int] = mapped_column(Integer, default=-1)  # canary step index; -1 in shadow
    percentage: Mapped[float] = mapped_column(Float, default=0.0)  # share of ML traffic, %
    shadow_rate: Mapped[float] = mapped_column(Float, default=0.0)  # of the champion's rows
    status: Mapped[str] = mapped_column(String(16))  # vocab.ArmStatus
    reason: Mapped[str] = mapped_column(Text, default="")  # why it started, then how it ended
    last_verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    step_started_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_challenger_arms_family_id", "family", "id"),
        Index(
            "ux_challenger_arms_active",
            "family",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )


class DriftReport(Base):
    """The result of each drift check, so the dashboard and the retrain decision can read it."""

    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    dataset_drift: Mapped[bool] = mapped_column(Boolean)
    drift_share: Mapped[float] = mapped_column(Float)
    drifted_features: Mapped[list[str]] = mapped_column(JSON)
    feature_scores: Mapped[dict[str, float]] = mapped_column(JSON)
    reference_rows: Mapped[int] = mapped_column(Integer)
    current_rows: Mapped[int] = mapped_column(Integer)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The model's outputs (migration 0006): its predictions and the outcomes, each compared
    # with the training data's. NULL: not judged (too few rows), never "no drift".
    prediction_drift: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    prediction_drift_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    prediction_drift_method: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prediction_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_drift: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    target_drift_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_drift_method: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (Index("ix_drift_reports_family_created", "family", "created_at"),)


class SyntheticOutcome(Base):
    """The synthetic world's ground truth: what really happened for a request, and from when
    it may be known (a ride's delay is known once the ride has ended). Written by the traffic
    simulator, read by the built-in ground-truth source of the backfill flow."""

    __tablename__ = "synthetic_outcomes"

    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    actual: Mapped[float] = mapped_column(Float)
    available_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class EstimatorRecord(Base):
    """A version's performance estimator, fitted on its holdout at training (migration 0005):
    CBPE's isotonic map (JSON in ``params``) or DLE's error model (skops bytes in ``model``).
    See ``ia_continu.learn.estimators``."""

    __tablename__ = "performance_estimators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(50))
    method: Mapped[str] = mapped_column(String(8))  # "cbpe" or "dle"
    metric: Mapped[str] = mapped_column(String(32))  # what it estimates: "accuracy", "mae"
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    holdout: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    model: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (
        UniqueConstraint("family", "version", name="uq_performance_estimators_family_version"),
    )


class ServingFormRecord(Base):
    """A version as an API process serves it: its scorer's arrays (``.npz`` bytes, read
    without pickle) and a little JSON (migration 0008). See ``ia_continu.serve.forms``."""

    __tablename__ = "serving_forms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(40))  # what the arrays mean, e.g. "logistic/1"
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    arrays: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (
        UniqueConstraint("family", "version", name="uq_serving_forms_family_version"),
    )


class EstimateRecord(Base):
    """One window's estimated and realised metric for one version, as the performance
    monitor computed it (migration 0005): the history of estimates and of their errors."""

    __tablename__ = "performance_estimates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(50))
    method: Mapped[str] = mapped_column(String(8))
    metric: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime] = mapped_column(Timestamp)
    window_end: Mapped[datetime] = mapped_column(Timestamp)
    rows: Mapped[int] = mapped_column(Integer)
    pending_rows: Mapped[int] = mapped_column(Integer)
    labelled_rows: Mapped[int] = mapped_column(Integer)
    estimated: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimated_pending: Mapped[float | None] = mapped_column(Float, nullable=True)
    realised: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimation_error: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (Index("ix_performance_estimates_family_created", "family", "created_at"),)
