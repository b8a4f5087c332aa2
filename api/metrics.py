"""Prometheus metrics (predictions, latency, rollout, prediction log) and ``/metrics``.

With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``scripts/run.sh`` does): the
client then writes each process's samples to that folder and ``/metrics`` aggregates them, so
counters add up across workers whichever worker answers the scrape.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ia_continu.vocab import Decision, ServedBy

if TYPE_CHECKING:
    from ia_continu.config import Settings
    from ia_continu.log.writer import PredictionLogWriter
    from ia_continu.serve.champion import ModelHolder
    from ia_continu.serve.flag import RolloutState

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

predictions_total = Counter(
    "predictions_total", "Predictions answered", ["model_type", "served_by", "decision"]
)
prediction_latency = Histogram(
    "prediction_latency_seconds",
    "Time to score one /predict call (model work only)",
    ["model_type"],
    buckets=LATENCY_BUCKETS,
)
active_models = Gauge(
    "active_models_count",
    "Models loaded and serving (0 = fallback only)",
    multiprocess_mode="livemax",
)
training_total = Counter("training_total", "Training runs", ["model_type", "status"])
rollout_percentage = Gauge(
    "ml_rollout_percentage", "Share of traffic routed to ML (0-100)", multiprocess_mode="livemax"
)
rollout_enabled = Gauge(
    "ml_rollout_enabled", "1 when the ML flag is on", multiprocess_mode="livemax"
)
log_pending = Gauge(
    "prediction_log_pending_rows",
    "Answered predictions not yet in the DB",
    multiprocess_mode="livesum",
)
log_written = Counter("prediction_log_written_rows", "Prediction rows written to the DB")
log_dead_lettered = Gauge(
    "prediction_log_dead_lettered_rows",
    "Prediction rows the DB refused, set aside in the dead-letter folder (shared by workers)",
    multiprocess_mode="livemax",
)
model_info = Gauge(
    "champion_version", "Champion version served by this process", multiprocess_mode="livemax"
)

challenger_percentage = Gauge(
    "challenger_canary_percentage",
    "Share of a model's ML traffic (0-100) its live canary challenger answers in this "
    "process (0: no challenger, or one in shadow)",
    ["model"],
    multiprocess_mode="livemax",
)

_bound: dict[str, Any] = {}
_lock = threading.Lock()


def bind_runtime(holder: ModelHolder, writer: PredictionLogWriter, settings: Settings) -> None:
    _bound.update(holder=holder, writer=writer, settings=settings, written=0)


def observe_predictions(decisions: np.ndarray, seconds: float, version: str | None) -> None:
    """The default model's observer (its name is read from the bound settings)."""
    settings = _bound.get("settings")
    _observe(settings.family if settings else "unknown", decisions, seconds)


def observer(model: str) -> Callable[[np.ndarray, float, str | None], None]:
    """The observer of another served model: the same series, labelled with its name."""
    return lambda decisions, seconds, version: _observe(model, decisions, seconds)


# Labelled children by their labels: ``labels()`` validates and looks its arguments up on
# every call, a cost paid per request on /predict's path (py-spy, bench/profile_predict.py).
_counters: dict[tuple[str, str], Any] = {}
_latencies: dict[str, Any] = {}


def _counter(family: str, decision: str) -> Any:
    child = _counters.get((family, decision))
    if child is None:
        served_by = ServedBy.ml if decision == Decision.ml else ServedBy.fallback
        child = _counters[family, decision] = predictions_total.labels(family, served_by, decision)
    return child


def _observe(family: str, decisions: np.ndarray, seconds: float) -> None:
    if len(decisions) == 1:  # one row (/predict): no np.unique over a one-element array
        _counter(family, str(decisions[0])).inc()
    else:
        values, counts = np.unique(decisions.astype(str), return_counts=True)
        for decision, count in zip(values.tolist(), counts.tolist(), strict=True):
            _counter(family, decision).inc(count)
    latency = _latencies.get(family)
    if latency is None:
        latency = _latencies[family] = prediction_latency.labels(family)
    latency.observe(seconds)


def refresh_gauges(rollout_state: RolloutState | None = None) -> None:
    holder, writer = _bound.get("holder"), _bound.get("writer")
    if holder is not None:
        active_models.set(1 if holder.current is not None else 0)
        with contextlib.suppress(ValueError):  # versions are numbers in MLflow's registry
            model_info.set(float(holder.current.version) if holder.current else 0)
    if writer is not None:
        log_pending.set(writer.pending)
        log_dead_lettered.set(writer.dead_lettered)
        with _lock:
            delta = writer.written - _bound.get("written", 0)
            _bound["written"] = writer.written
        if delta > 0:
            log_written.inc(delta)
    if rollout_state is not None:
        rollout_percentage.set(rollout_state.ml_percentage)
        rollout_enabled.set(1 if rollout_state.enabled else 0)


def refresh_challenger_gauges(holders: dict[str, ModelHolder]) -> None:
    """The canary share of each served model, as this process serves it (its poller's)."""
    for name, holder in holders.items():
        live = holder.challenger
        challenger_percentage.labels(name).set(live.arm.percentage if live is not None else 0.0)


def exposition() -> tuple[bytes, str]:
    if MULTIPROCESS:
        from api.metrics_db import COLLECTOR  # read from the DB once per scrape, not summed

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(COLLECTOR)
    else:
        registry = DEFAULT_REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


http_requests = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
http_duration = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


# Labelled children by their labels, as for the prediction series above.
_http_counts: dict[tuple[str, str, int], Any] = {}
_http_durations: dict[tuple[str, str], Any] = {}


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request under its route template (also api/fastpath.py's)."""
    count = _http_counts.get((method, route, status))
    if count is None:
        count = _http_counts[method, route, status] = http_requests.labels(
            method, route, str(status)
        )
    count.inc()
    duration = _http_durations.get((method, route))
    if duration is None:
        duration = _http_durations[method, route] = http_duration.labels(method, route)
    duration.observe(seconds)


class HttpMetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would cost a task per request).

    Labels use the route template (``/models/{version}/promote``), never the raw path, so
    a scan of random URLs cannot blow up the number of series.

    Kept rather than prometheus-fastapi-instrumentator: recording the same series, it cost
    /predict 5 % of its requests/s against the library's 16 % (``python -m bench.middleware``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            record_http(scope.get("method", "GET"), path, status, time.perf_counter() - started)
