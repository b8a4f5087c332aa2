"""Prometheus series read from the database at scrape time: the model lifecycle and quality.

Counters kept in the API process only see what that process did: a retrain run by the Prefect
worker, or by another replica, never reached ``training_total``. The database sees everything,
so these series are derived from it when ``/metrics`` is scraped:

- ``model_events_total{model_type, event}``: rows of the audit table ``model_events`` (retrain,
  promote, reject, rollback, failed, retrain_skipped), wherever they were written. Every kind
  is exported for the served family, at 0 until one happens, so a panel shows 0 rather than
  "No data". It is a counter: the table only grows.
- ``model_quality_24h{model_type, metric}``: accuracy rate, MAE, RMSE, R² (and a classifier's
  precision, recall, F1) over the last 24 h of logged predictions whose outcome is known, as
  ``/api/ml-monitoring/metrics`` computes them. NaN while no outcome is known, and always for
  a classifier's MAE, RMSE and R² (errors between labels mean nothing): a figure that does
  not exist is not a 0, and an alert rule such as ``< 0.8`` stays quiet on NaN (the series
  stay, so a dashboard panel reading them still has its series).
- ``model_quality_labeled_rows_24h{model_type}``: how many rows those figures cover.

Each is one aggregate query, cached for a few seconds, so Prometheus, a second Prometheus and
a curl scraping together cost one query. Every replica exports the same values: dashboards
read them with ``max``, not ``sum``. With several uvicorn workers (multiprocess mode) the
collector is added to the registry ``/metrics`` builds, so whichever worker answers reads the
database once and the values are not added up across workers.

A scrape never fails because of these series: if the database does not answer, they are left
out of that scrape (Prometheus marks them stale) and a warning is logged once per outage.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ia_continu.store.tables import ModelEvent
from ia_continu.vocab import ModelEventKind

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ia_continu.config import Settings

log = logging.getLogger(__name__)

EVENTS_TTL_SECONDS = 5.0
QUALITY_TTL_SECONDS = 10.0
QUALITY_WINDOW_HOURS = 24
QUALITY_FIGURES = ("accuracy_rate", "mae", "rmse", "r2", "precision", "recall", "f1")


class _Cached:
    """A value computed at most once per ``ttl`` seconds, by one thread at a time."""

    def __init__(self, compute: Callable[[], Any], ttl: float) -> None:
        self._compute, self._ttl = compute, ttl
        self._lock = threading.Lock()
        self._at = -math.inf
        self._value: Any = None

    def get(self) -> Any:
        with self._lock:
            if time.monotonic() - self._at >= self._ttl:
                self._value = self._compute()
                self._at = time.monotonic()
            return self._value


class DatabaseCollector(Collector):
    """The series above, for the engine and settings of the running app (``bind``)."""

    def __init__(self) -> None:
        self._bound: tuple[Engine, Settings, _Cached, _Cached] | None = None
        self._failing = False

    def bind(self, engine: Engine, settings: Settings) -> None:
        self._bound = (
            engine,
            settings,
            _Cached(lambda: _event_counts(engine), EVENTS_TTL_SECONDS),
            _Cached(lambda: _quality(engine, settings), QUALITY_TTL_SECONDS),
        )

    def unbind(self, engine: Engine) -> None:
        if self._bound is not None and self._bound[0] is engine:
            self._bound = None

    def describe(self) -> Iterable[Metric]:
        # No samples: registering must not query a database that may not be bound yet.
        return [
            CounterMetricFamily("model_events", _EVENTS_HELP, labels=["model_type", "event"]),
            GaugeMetricFamily("model_quality_24h", _QUALITY_HELP, labels=["model_type", "metric"]),
            GaugeMetricFamily("model_quality_labeled_rows_24h", _ROWS_HELP, labels=["model_type"]),
        ]

    def collect(self) -> Iterator[Metric]:
        bound = self._bound
        if bound is None:
            return
        _engine, settings, events, quality = bound
        family = settings.family
        try:
            counts, figures = events.get(), quality.get()
        except Exception as exc:
            if not self._failing:
                log.warning("model series left out of /metrics: database error: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("model series back in /metrics")
        self._failing = False

        counter = CounterMetricFamily("model_events", _EVENTS_HELP, labels=["model_type", "event"])
        for key in sorted({(family, kind.value) for kind in ModelEventKind} | set(counts)):
            counter.add_metric(list(key), counts.get(key, 0))
        yield counter

        gauge = GaugeMetricFamily(
            "model_quality_24h", _QUALITY_HELP, labels=["model_type", "metric"]
        )
        for name in QUALITY_FIGURES:
            if name in figures:
                value = figures[name]
                gauge.add_metric([family, name], math.nan if value is None else float(value))
        yield gauge
        rows = GaugeMetricFamily(
            "model_quality_labeled_rows_24h", _ROWS_HELP, labels=["model_type"]
        )
        rows.add_metric([family], float(figures.get("labeled_count") or 0))
        yield rows


_EVENTS_HELP = "Model lifecycle events recorded in the audit table, by whoever ran them"
_QUALITY_HELP = (
    f"Quality of the served family over the last {QUALITY_WINDOW_HOURS} h of predictions with a "
    "known outcome (NaN while none is known)"
)
_ROWS_HELP = f"Predictions of the last {QUALITY_WINDOW_HOURS} h whose outcome is known"


def _event_counts(engine: Engine) -> dict[tuple[str, str], int]:
    with Session(engine) as session:
        rows = session.execute(
            select(ModelEvent.family, ModelEvent.event, func.count()).group_by(
                ModelEvent.family, ModelEvent.event
            )
        ).all()
    return {(family, event): int(n) for family, event, n in rows}


def _quality(engine: Engine, settings: Settings) -> dict[str, Any]:
    from ia_continu.families import get_family
    from ia_continu.watch.quality import window_metrics

    # The family from the settings: the default model may be declared in IA_CONTINU_MODELS_DIR.
    family = get_family(settings.family, settings)
    with Session(engine) as session:
        return window_metrics(session, family, QUALITY_WINDOW_HOURS).model_dump()


COLLECTOR = DatabaseCollector()
REGISTRY.register(COLLECTOR)


def bind(engine: Engine, settings: Settings) -> None:
    """Export the series of this app's database (the last app started in the process wins,
    as ``api.metrics.bind_runtime`` does)."""
    COLLECTOR.bind(engine, settings)
