"""How the ML rollout is doing: stats from the prediction log, a verdict, and an alarm.

The stats are not counters kept in memory: they are aggregated in SQL over the prediction log,
which already records who answered each request and why, since the flag's ``stats_since``
(reset-stats moves it). So every replica reports the same figures, and a restart loses none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.serve.flag import RolloutState
from ia_continu.store.tables import PredictionLog
from ia_continu.vocab import Decision, ServedBy

HealthStatus = Literal["healthy", "degraded", "critical"]


@dataclass(frozen=True, slots=True)
class RolloutStats:
    """What the prediction log says since ``since``, one family."""

    total_requests: int
    ml_requests: int  # routed to ML: answered by it, or failed and fell back
    ml_successes: int
    ml_failures: int
    fallback_requests: int  # answered by the fallback, for any reason
    shadow_requests: int  # scored by both
    since: datetime

    @property
    def ml_success_rate(self) -> float:
        return self.ml_successes / self.ml_requests if self.ml_requests else 0.0

    @property
    def ml_usage_rate(self) -> float:
        return self.ml_requests / self.total_requests if self.total_requests else 0.0


@dataclass(frozen=True, slots=True)
class RolloutHealth:
    status: HealthStatus
    reason: str
    success_rate: float  # of the ML requests; 0 when there were none
    error_rate: float
    ml_requests: int


def rollout_stats(session: Session, family: str, since: datetime) -> RolloutStats:
    """The rollout's figures, aggregated in SQL over the prediction log since ``since``."""
    P = PredictionLog
    d = P.decision
    shadow = P.ml_prediction.is_not(None) & P.fallback_prediction.is_not(None)
    row = session.execute(
        select(
            func.count(),
            func.sum(case((d.in_((Decision.ml, Decision.fallback_error)), 1), else_=0)),
            func.sum(case((d == Decision.ml, 1), else_=0)),
            func.sum(case((d == Decision.fallback_error, 1), else_=0)),
            func.sum(case((P.served_by == ServedBy.fallback, 1), else_=0)),
            func.sum(case((shadow, 1), else_=0)),
        ).where(P.family == family, P.created_at >= since)
    ).one()
    total, ml, ok, failed, fallback, shadowed = (int(v or 0) for v in row)
    return RolloutStats(
        total_requests=total,
        ml_requests=ml,
        ml_successes=ok,
        ml_failures=failed,
        fallback_requests=fallback,
        shadow_requests=shadowed,
        since=since,
    )


def verdict(stats: RolloutStats, state: RolloutState, settings: Settings) -> RolloutHealth:
    """healthy / degraded / critical, with the reason.

    Critical once at least ``rollout_error_alert_min_requests`` ML requests failed at more than
    ``rollout_error_alert_rate`` (too few requests say nothing yet); degraded above a quarter
    of that rate, or before ML answered anything.
    """
    ml, failed = stats.ml_requests, stats.ml_failures
    threshold = settings.rollout_error_alert_rate
    error_rate = failed / ml if ml else 0.0
    status: HealthStatus
    if not state.enabled:
        status, reason = "healthy", "ML disabled: the fallback answers every request"
    elif ml == 0:
        status, reason = "degraded", "no ML requests yet"
    elif ml >= settings.rollout_error_alert_min_requests and error_rate > threshold:
        status, reason = "critical", f"ML error rate {error_rate:.1%} above {threshold:.0%}"
    elif error_rate > threshold / 4:
        status, reason = "degraded", f"ML error rate {error_rate:.1%}"
    else:
        status, reason = "healthy", "ML answering"
    return RolloutHealth(
        status=status,
        reason=reason,
        success_rate=1 - error_rate if ml else 0.0,
        error_rate=error_rate,
        ml_requests=ml,
    )


# (error rate, ML requests, failures) -> None
AlertHook = Callable[[float, int, int], None]


class ErrorRateAlarm:
    """This process's alert hook: fires once when the ML error rate passes the threshold after
    enough ML requests, and re-arms when it falls back under it.

    Counted in memory, per process, as requests are answered: it must fire within the request
    that crosses the line, not at the next read of the prediction log.
    """

    def __init__(self, settings: Settings, on_alert: AlertHook) -> None:
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
