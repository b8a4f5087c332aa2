"""The rollout's verdict and its alarm, on figures given directly (no database)."""

from __future__ import annotations

from datetime import datetime

import pytest

from ia_continu.config import Settings
from ia_continu.serve.flag import RolloutState
from ia_continu.watch.rollout_health import ErrorRateAlarm, RolloutStats, verdict

NOW = datetime(2026, 1, 1)
SETTINGS = Settings(
    environment="test", rollout_error_alert_rate=0.2, rollout_error_alert_min_requests=100
)


def _state(enabled: bool = True) -> RolloutState:
    return RolloutState(enabled, 100.0, True, 0.0, NOW, NOW)


def _stats(ml: int, failures: int) -> RolloutStats:
    return RolloutStats(ml + 10, ml, ml - failures, failures, 10 + failures, 0, NOW)


@pytest.mark.parametrize(
    ("enabled", "ml", "failures", "status", "reason"),
    [
        (False, 0, 0, "healthy", "ML disabled"),
        (True, 0, 0, "degraded", "no ML requests yet"),
        (True, 99, 99, "degraded", "ML error rate 100.0%"),  # too few to be critical
        (True, 100, 21, "critical", "ML error rate 21.0% above 20%"),
        (True, 100, 6, "degraded", "ML error rate 6.0%"),  # above a quarter of 20%
        (True, 100, 5, "healthy", "ML answering"),
    ],
)
def test_verdict(enabled, ml, failures, status, reason):
    health = verdict(_stats(ml, failures), _state(enabled), SETTINGS)
    assert health.status == status and reason in health.reason
    assert health.ml_requests == ml
    if ml:
        assert health.error_rate == pytest.approx(failures / ml)
        assert health.success_rate == pytest.approx(1 - failures / ml)


def test_rates_are_zero_without_requests():
    stats = RolloutStats(0, 0, 0, 0, 0, 0, NOW)
    assert (stats.ml_success_rate, stats.ml_usage_rate) == (0.0, 0.0)
    stats = _stats(ml=30, failures=3)
    assert stats.ml_success_rate == pytest.approx(0.9)
    assert stats.ml_usage_rate == pytest.approx(30 / 40)


def test_alarm_fires_once_past_the_threshold_and_rearms_below_it():
    fired: list[tuple[float, int, int]] = []
    alarm = ErrorRateAlarm(SETTINGS, lambda *args: fired.append(args))
    alarm.record(99, 99)
    assert not fired  # not enough requests to judge
    alarm.record(1, 1)
    assert fired == [(1.0, 100, 100)] and alarm.firing
    alarm.record(10, 10)
    assert len(fired) == 1  # still firing: no second alert
    alarm.record(1000, 0)
    assert not alarm.firing
    alarm.record(500, 500)
    assert len(fired) == 2
