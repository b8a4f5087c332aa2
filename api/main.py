"""The ASGI app (``api.main:app``): joins the routers and owns the process's lifecycle."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from api import errors
from api.deps import model_in_path
from api.fastpath import PredictFastPath
from api.guards import BodySizeLimit
from api.metrics import HttpMetricsMiddleware
from api.routes import (
    actuals,
    challenger,
    dashboard,
    datasets,
    declared,
    drift,
    feature_flags,
    generate,
    health,
    models,
    monitoring,
    predict,
    retrain,
)
from api.routes import metrics as metrics_route
from api.runtime import Runtime
from ia_continu import __version__
from ia_continu.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.start(settings or get_settings())
        app.state.runtime = runtime
        # Everything imported and loaded so far (FastAPI, sklearn, MLflow, the model) lives
        # for the whole process: move it out of the cyclic GC's sight. Without this, every
        # full collection walks millions of long-lived objects, and a 10,000-row batch
        # spent 3/4 of its time in the GC (bench/).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            # Drains the prediction log: an answered prediction survives a clean shutdown.
            runtime.stop()

    app = FastAPI(
        title="ia-continu",
        version=__version__,
        description="Continuous ML: serve, roll out, measure, detect drift, retrain, alert.",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry instrumentation stays off: the service exports its
        # Prometheus series (api/metrics.py), and FastAPI asks on every request whether an
        # OpenTelemetry provider has been configured (three provider lookups: ~5-9 us, more
        # than the rest of the ASGI stack in front of /predict's fast path).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Added first, so it runs inside the metrics middleware: a 413 is counted too.
    app.add_middleware(BodySizeLimit)
    app.add_middleware(HttpMetricsMiddleware)
    # Outermost: answers the ordinary one-row /predict itself (metrics included) and hands
    # everything else on, untouched, to the two above and FastAPI (api/fastpath.py).
    app.add_middleware(PredictFastPath)
    # The default model (IA_CONTINU_FAMILY) at the first API's paths...
    for router, prefix in (
        (health.router, ""),
        (generate.router, ""),
        (datasets.router, ""),
        (predict.router, ""),
        (retrain.router, ""),
        (declared.router, ""),  # before /models/{model}: "declared" is not a model name
        (models.router, "/models"),
        (challenger.router, ""),
        (metrics_route.router, ""),
        (drift.router, "/api/drift"),
        (dashboard.router, ""),
        (feature_flags.router, "/api/feature-flags"),
        (actuals.router, "/api"),
        (monitoring.router, "/api/ml-monitoring"),
    ):
        app.include_router(router, prefix=prefix)
    # ...and every declared model under /models/{model}: the same handlers, the model taken
    # from the path (api.deps.get_model), so both shapes answer alike by construction.
    per_model = [Depends(model_in_path)]
    for router, prefix in (
        (predict.router, ""),
        (predict.model_router, ""),
        (retrain.router, ""),
        (generate.router, ""),
        (datasets.router, ""),
        (models.router, ""),
        (challenger.router, ""),
        (feature_flags.router, "/rollout"),
        (actuals.router, ""),
        (monitoring.router, "/monitoring"),
        (drift.router, "/drift"),
    ):
        app.include_router(
            router, prefix=f"/models/{{model}}{prefix}", dependencies=per_model, tags=["per model"]
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            # Our own 422s carry one sentence ("expected 2 features ..."), FastAPI's carry a
            # list of field errors: document both, so clients and fuzzers know either comes.
            error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if error is not None:
                listed = error["properties"]["detail"]
                error["properties"]["detail"] = {
                    "anyOf": [listed, {"type": "string"}],
                    "title": "Detail",
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override

    # 4xx answers that cannot fail on what the client sent (NaN, lone surrogates, 5 MB).
    errors.install(app)
    return app


app = create_app()
