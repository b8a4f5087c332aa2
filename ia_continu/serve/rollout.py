"""Progressive rollout of the ML model (seed 000's feature flag), shared by every replica.

The flag lives in the ``rollout_config`` table, so replicas agree and a restart remembers.
Each process reads it at most every ``rollout_cache_seconds``, so the hot path does no I/O.

The decision is sticky per request id, as Unleash does it: the id is hashed into one of
10,000 buckets and the request goes to ML when its bucket is below ``percentage x 100``. The
same id lands in the same bucket in every process, forever; raising the share only adds ids.

Stats are not counters in memory: they are derived from the prediction log (which already
records who answered and why), since ``stats_since``. Reset moves that instant.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.store.tables import PredictionLog, RolloutConfig, utcnow

BUCKETS = 10_000

# Why a prediction was answered the way it was.
ML = "ml"
FALLBACK_DISABLED = "fallback_disabled"
FALLBACK_SHARE = "fallback_share"
FALLBACK_ERROR = "fallback_error"
FALLBACK_NO_MODEL = "fallback_no_model"


def bucket(request_id: str, salt: str = "ml-rollout") -> int:
    digest = hashlib.blake2b(f"{salt}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def in_share(request_id: str, percentage: float) -> bool:
    return bucket(request_id) < percentage * (BUCKETS // 100)


def in_shadow_sample(request_id: str, rate: float) -> bool:
    # A different salt: the shadow sample must not be correlated with the rollout share.
    return rate > 0 and bucket(request_id, "shadow") < rate * BUCKETS


@dataclass(frozen=True, slots=True)
class RolloutState:
    enabled: bool
    percentage: float
    fallback_on_error: bool
    shadow_rate: float
    stats_since: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stats_since"] = self.stats_since.isoformat()
        d["updated_at"] = self.updated_at.isoformat()
        return d


def _state(row: RolloutConfig) -> RolloutState:
    return RolloutState(
        row.enabled,
        row.percentage,
        row.fallback_on_error,
        row.shadow_rate,
        row.stats_since,
        row.updated_at,
    )


def _row(session: Session, settings: Settings) -> RolloutConfig:
    row = session.get(RolloutConfig, settings.family.value)
    if row is None:
        row = RolloutConfig(
            family=settings.family.value,
            enabled=settings.ml_enabled,
            percentage=settings.ml_traffic_percentage,
            fallback_on_error=settings.fallback_on_error,
            shadow_rate=settings.shadow_sample_rate,
            stats_since=utcnow(),
        )
        session.add(row)
        session.flush()
    return row


def read_state(session: Session, settings: Settings) -> RolloutState:
    return _state(_row(session, settings))


def update_state(session: Session, settings: Settings, **changes: Any) -> RolloutState:
    """Change the flag (enabled, percentage, fallback_on_error, shadow_rate)."""
    row = _row(session, settings)
    for key, value in changes.items():
        if value is not None:
            setattr(row, key, value)
    row.updated_at = utcnow()
    session.flush()
    return _state(row)


def reset_stats(session: Session, settings: Settings) -> RolloutState:
    return update_state(session, settings, stats_since=utcnow())


class RolloutCache:
    """This process's view of the flag, refreshed in the background every ``ttl`` seconds.

    ``get`` never touches the DB once started, so the request path does no I/O and a DB
    outage leaves predictions answered with the last known flag.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.ttl = max(settings.rollout_cache_seconds, 0.05)
        self._state: RolloutState | None = None
        self._stale = True
        self._generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self) -> RolloutState:
        if self._stale or self._state is None:
            self.refresh()
        assert self._state is not None
        return self._state

    def refresh(self) -> None:
        # A read that started before an invalidate() may carry the old flag: it must not
        # clear the stale mark that the newer change set (the background refresher raced
        # the admin route that way, and this process served the old flag for one period).
        generation = self._generation
        try:
            with Session(self.engine) as session, session.begin():
                state = read_state(session, self.settings)
            if generation == self._generation:
                self._state, self._stale = state, False
            elif self._state is None:
                self._state = state
        except Exception:
            if self._state is None:  # DB down from the start: the settings' initial flag
                s = self.settings
                self._state = RolloutState(
                    s.ml_enabled,
                    s.ml_traffic_percentage,
                    s.fallback_on_error,
                    s.shadow_sample_rate,
                    utcnow(),
                    utcnow(),
                )
            self._stale = False

    def invalidate(self) -> None:
        """Re-read on next use (after this process changed the flag)."""
        self._generation += 1
        self._stale = True

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="rollout-refresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl):
            self.refresh()


# --- stats and health --------------------------------------------------------------------


def stats(session: Session, family: str, since: datetime) -> dict[str, Any]:
    """Seed 000's stats, aggregated in SQL over the prediction log."""
    d = PredictionLog.decision
    row = session.execute(
        select(
            func.count(),
            func.sum(case((d.in_((ML, FALLBACK_ERROR)), 1), else_=0)),
            func.sum(case((d == ML, 1), else_=0)),
            func.sum(case((d == FALLBACK_ERROR, 1), else_=0)),
            func.sum(case((PredictionLog.served_by == "fallback", 1), else_=0)),
            func.sum(
                case(
                    (
                        PredictionLog.ml_prediction.is_not(None)
                        & PredictionLog.fallback_prediction.is_not(None),
                        1,
                    ),
                    else_=0,
                )
            ),
        ).where(PredictionLog.family == family, PredictionLog.created_at >= since)
    ).one()
    total, ml, ok, failed, fallback, shadow = (int(v or 0) for v in row)
    return {
        "total_requests": total,
        "ml_requests": ml,
        "ml_successes": ok,
        "ml_failures": failed,
        "fallback_requests": fallback,
        "shadow_requests": shadow,
        "ml_success_rate": ok / ml if ml else 0.0,
        "ml_usage_rate": ml / total if total else 0.0,
        "since": since.isoformat(),
    }


def health(stats_: dict[str, Any], state: RolloutState, settings: Settings) -> dict[str, Any]:
    """healthy / degraded / critical, with the reason."""
    ml, failed = stats_["ml_requests"], stats_["ml_failures"]
    error_rate = failed / ml if ml else 0.0
    if not state.enabled:
        status, reason = "healthy", "ML disabled: the fallback answers every request"
    elif ml == 0:
        status, reason = "degraded", "no ML requests yet"
    elif (
        ml >= settings.rollout_error_alert_min_requests
        and error_rate > settings.rollout_error_alert_rate
    ):
        status, reason = (
            "critical",
            f"ML error rate {error_rate:.1%} above {settings.rollout_error_alert_rate:.0%}",
        )
    elif error_rate > settings.rollout_error_alert_rate / 4:
        status, reason = "degraded", f"ML error rate {error_rate:.1%}"
    else:
        status, reason = "healthy", "ML answering"
    return {
        "status": status,
        "reason": reason,
        "success_rate": 1 - error_rate if ml else 0.0,
        "error_rate": error_rate,
        "ml_requests": ml,
    }


class ErrorRateAlarm:
    """This process's alert hook: fires once when the ML error rate passes the threshold after
    enough ML requests, and re-arms when it falls back under it."""

    def __init__(self, settings: Settings, on_alert) -> None:
        self.rate = settings.rollout_error_alert_rate
        self.min_requests = settings.rollout_error_alert_min_requests
        self.on_alert = on_alert
        self.ml_requests = 0
        self.failures = 0
        self.firing = False
        self._lock = threading.Lock()

    def record(self, ml_requests: int, failures: int) -> None:
        with self._lock:
            self.ml_requests += ml_requests
            self.failures += failures
            if self.ml_requests < self.min_requests:
                return
            rate = self.failures / self.ml_requests
            fire = rate > self.rate and not self.firing
            self.firing = rate > self.rate
        if fire:
            self.on_alert(rate, self.ml_requests, self.failures)
