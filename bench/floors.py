"""The floors of the serving bench: how fast can ``POST /predict`` be before any model work?

Two bench-only ASGI apps answer the same one-row ``/predict`` body as ia-continu with a
constant prediction, served by uvicorn with the same options, on the same core, loaded by
the same wrk settings (``bench/serving.py``):

- ``raw_app``: plain ASGI: read the body, ``json.loads`` it, answer constant JSON. What
  uvicorn and the event loop cost on their own.
- ``fastapi_app``: FastAPI with a pydantic request model shaped like the app's
  ``PredictRequest`` (``features`` as a list of numbers or a mapping, ``request_id``),
  answering a constant. FastAPI's own floor: routing, body parsing and validation, JSON out.

ia-continu's throughput divided by ``fastapi_app``'s says how much of the framework's budget
the request path spends on its own work; ``bench/run.py`` reports it in the same run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from bench import serving

# The shape of ia-continu's answer to a one-row classification /predict, with fixed values.
PREDICTION: dict[str, Any] = {
    "prediction": 1,
    "model_version": "1",
    "confidence": 0.87,
    "timestamp": "2026-01-01T00:00:00+00:00",
    "request_id": "floor",
    "served_by": "ml",
    "decision": "champion",
    "latency_ms": 0.1,
    "probability": 0.87,
    "risk_level": None,
}
_PREDICTION_BYTES = json.dumps(PREDICTION).encode()
_JSON_HEADERS = [(b"content-type", b"application/json")]


async def _reply(send: Any, status: int, body: bytes) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI floor: /health for the bench's readiness poll, POST /predict, 404 otherwise."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await _reply(send, 200, b'{"status": "ok"}')
        return
    if scope["path"] != "/predict" or scope["method"] != "POST":
        await _reply(send, 404, b'{"detail": "not found"}')
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        json.loads(b"".join(chunks))
    except ValueError:
        await _reply(send, 422, b'{"detail": "body is not JSON"}')
        return
    await _reply(send, 200, _PREDICTION_BYTES)


class FloorPredictRequest(BaseModel):
    """The part of ``api.schemas.PredictRequest`` a one-row bench body exercises."""

    model_config = ConfigDict(extra="forbid")
    features: list[float] | dict[str, float]
    request_id: str | None = None


fastapi_app = FastAPI(title="FastAPI floor", docs_url=None, redoc_url=None, openapi_url=None)


@fastapi_app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@fastapi_app.post("/predict")
async def predict(body: FloorPredictRequest) -> dict[str, Any]:
    return PREDICTION


FLOORS = {"floor_raw_asgi": "bench.floors:raw_app", "floor_fastapi": "bench.floors:fastapi_app"}


def start_floors(env: dict[str, str], *, log_dir: Path, suffix: str) -> dict[str, serving.Server]:
    """Both floors, with the options ``serving.start_app`` gives ia-continu (asyncio loop)."""
    started: dict[str, serving.Server] = {}
    for name, target in FLOORS.items():
        started[name] = serving.start_app(
            env, loop="asyncio", log_dir=log_dir, name=f"{name}-{suffix}", target=target
        )
    return started
