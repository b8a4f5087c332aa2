"""Bench-only ASGI factory: the real app with one HTTP-metrics middleware variant or another.

``uvicorn bench.middleware_app:create --factory`` with ``IA_CONTINU_BENCH_HTTP_METRICS``:

- ``handwritten`` (default): ``api.main.create_app()`` as shipped (``HttpMetricsMiddleware``).
- ``none``: the same app without any HTTP metrics middleware (the floor).
- ``instrumentator``: ``prometheus-fastapi-instrumentator`` in its place, configured to record
  what ours records: a request counter by method, route template and exact status, and a
  latency histogram by method and route template with ``LATENCY_BUCKETS``.

The knob lives here, not in the product: ``bench/middleware.py`` compares the three.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from prometheus_client import REGISTRY

from api import metrics
from api.main import create_app
from api.routes.metrics import router as metrics_route

VARIANTS = ("handwritten", "none", "instrumentator")


def create() -> FastAPI:
    variant = os.environ.get("IA_CONTINU_BENCH_HTTP_METRICS", "handwritten")
    if variant not in VARIANTS:
        raise ValueError(f"IA_CONTINU_BENCH_HTTP_METRICS={variant!r}: expected one of {VARIANTS}")
    app = create_app()
    if variant == "handwritten":
        return app
    app.user_middleware = [
        m for m in app.user_middleware if m.cls is not metrics.HttpMetricsMiddleware
    ]
    if variant == "none":
        return app
    from prometheus_fastapi_instrumentator import Instrumentator
    from prometheus_fastapi_instrumentator import metrics as lib_metrics

    # Same series names as ours: drop ours from the registry so the library can take them.
    REGISTRY.unregister(metrics.http_requests)
    REGISTRY.unregister(metrics.http_duration)
    # The app's /metrics route goes too, so the library's endpoint is the one answering.
    # (FastAPI keeps an included router as one route wrapping it: match on the router.)
    app.router.routes = [
        r for r in app.router.routes if getattr(r, "original_router", None) is not metrics_route
    ]
    instrumentator = Instrumentator(
        should_group_status_codes=False,  # "200", not "2xx", like ours
        should_ignore_untemplated=False,
        should_group_untemplated=True,  # unknown paths share one label, like our "unmatched"
    )
    instrumentator.add(lib_metrics.requests(metric_name="http_requests_total"))
    instrumentator.add(
        lib_metrics.latency(
            metric_name="http_request_duration_seconds",
            should_include_status=False,
            buckets=metrics.LATENCY_BUCKETS,
        )
    )
    # instrument() adds the middleware last, hence outermost: where ours sits.
    instrumentator.instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
    return app
