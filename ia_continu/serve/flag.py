"""The ML rollout flag: on or off, the share of traffic, fallback on error, shadow rate.

The flag lives in the ``rollout_config`` table (one row per family), so every replica serves
the same flag and a restart remembers it. Each process reads it in the background at most
every ``rollout_cache_seconds`` (``RolloutCache``), so the request path does no I/O for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.store.tables import RolloutConfig, utcnow


@dataclass(frozen=True, slots=True)
class RolloutState:
    enabled: bool
    percentage: float  # share of requests routed to ML, 0..100
    fallback_on_error: bool  # answer with the fallback when ML fails (else 503)
    shadow_rate: float  # share of requests scored by both ML and the fallback, 0..1
    stats_since: datetime  # the rollout stats count the prediction log from here
    updated_at: datetime

    @property
    def ml_percentage(self) -> float:
        """The share actually routed to ML: 0 while ML is disabled."""
        return self.percentage if self.enabled else 0.0

    @classmethod
    def initial(cls, settings: Settings) -> RolloutState:
        """The flag as configured, before the database has a row for it."""
        now = utcnow()
        return cls(
            enabled=settings.ml_enabled,
            percentage=settings.ml_traffic_percentage,
            fallback_on_error=settings.fallback_on_error,
            shadow_rate=settings.shadow_sample_rate,
            stats_since=now,
            updated_at=now,
        )


def _state(row: RolloutConfig) -> RolloutState:
    return RolloutState(
        enabled=row.enabled,
        percentage=row.percentage,
        fallback_on_error=row.fallback_on_error,
        shadow_rate=row.shadow_rate,
        stats_since=row.stats_since,
        updated_at=row.updated_at,
    )


def _row(session: Session, settings: Settings) -> RolloutConfig:
    row = session.get(RolloutConfig, settings.family)
    if row is None:
        initial = RolloutState.initial(settings)
        row = RolloutConfig(
            family=settings.family,
            enabled=initial.enabled,
            percentage=initial.percentage,
            fallback_on_error=initial.fallback_on_error,
            shadow_rate=initial.shadow_rate,
            stats_since=initial.stats_since,
        )
        session.add(row)
        session.flush()
    return row


def read_state(session: Session, settings: Settings) -> RolloutState:
    """The stored flag (created from the settings on first use)."""
    return _state(_row(session, settings))


def update_state(
    session: Session,
    settings: Settings,
    *,
    enabled: bool | None = None,
    percentage: float | None = None,
    fallback_on_error: bool | None = None,
    shadow_rate: float | None = None,
    stats_since: datetime | None = None,
) -> RolloutState:
    """Change the flag; a value left at None keeps the stored one."""
    row = _row(session, settings)
    if enabled is not None:
        row.enabled = enabled
    if percentage is not None:
        row.percentage = percentage
    if fallback_on_error is not None:
        row.fallback_on_error = fallback_on_error
    if shadow_rate is not None:
        row.shadow_rate = shadow_rate
    if stats_since is not None:
        row.stats_since = stats_since
    row.updated_at = utcnow()
    session.flush()
    return _state(row)


def reset_stats(session: Session, settings: Settings) -> RolloutState:
    """Start counting the rollout stats from now."""
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
                self._state = RolloutState.initial(self.settings)
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
