"""The ASGI app (``api.main:app``): joins the routers and owns the process's lifecycle."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.routes import (
    actuals,
    dashboard,
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

log = logging.getLogger("ia_continu.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime = Runtime.start(settings or get_settings())
        app.state.runtime = runtime
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
    )
    for module in (health, generate, predict, retrain, models, metrics_route, drift, dashboard,
                   feature_flags, actuals, monitoring):
        app.include_router(module.router)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never a traceback to the client; the log has it.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    return app


app = create_app()
