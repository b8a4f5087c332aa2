"""``POST /predict`` (one row) answered in front of FastAPI's router, for the common case.

A pure ASGI middleware, outermost of the app's own. It takes a request to ``/predict`` or
``/models/{model}/predict`` only when everything about it is ordinary: ``Content-Type:
application/json``, a ``Content-Length`` within ``max_body_bytes``, a body that is a valid
``PredictRequest`` (checked here by the same rules: api/schemas.py), a model that is served.
Such a request gets the route's own answer (``api.routes.predict.answer_one``), with the same
rate limit (the route's dependency, called as is), error handlers (api/errors.py) and HTTP
metrics, at a fraction of the cost: no routing over every mounted route, no dependency
solving, no pydantic model, no middleware layers in between (``python -m bench.run``).

Anything else, from an odd Content-Type to a number out of bounds, a lone surrogate, an
unknown model or an unread chunked body, goes to FastAPI untouched (the body already read is
handed on as it came): its validation writes the 4xx, and the route stays declared in the
OpenAPI schema. The fast path never answers a request differently from the route; it only
declines the ones it would have to think about.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import msgspec
from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, metrics
from api.deps import PredictLimit
from api.guards import DEFAULT_MAX_BODY_BYTES
from api.routes.predict import answer_one
from api.schemas import FEATURE_LIMIT, IDENTIFIER_MAX
from ia_continu.errors import IaContinuError, UnknownModel

DEFAULT_ROUTE, MODEL_ROUTE = "/predict", "/models/{model}/predict"
_MODEL_PREFIX, _SUFFIX = "/models/", "/predict"
_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")  # api.deps.model_in_path's pattern
_TOP_KEYS = frozenset({"features", "request_id", "booking_id", "driver_id", "context"})
_CONTEXT_KEYS = frozenset({"booking_id", "driver_id"})
# api/schemas.py: ids refuse control characters and lone surrogates; feature text is left to
# FastAPI when it holds a lone surrogate (pydantic's JSON parser and json.loads disagree there).
_BAD_IN_ID = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
FEATURE_TEXT_MAX = 200  # api.schemas.FeatureValue's str max_length
_decode = msgspec.json.Decoder().decode
_rate_limit = PredictLimit.dependency
assert _rate_limit is not None


class _Decline(Exception):
    """Not a request the fast path answers: FastAPI takes it."""


def _identifier(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not 0 < len(value) <= IDENTIFIER_MAX or _BAD_IN_ID.search(value):
        raise _Decline
    return value


def _feature_ok(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value) and -FEATURE_LIMIT <= value <= FEATURE_LIMIT
    if kind is int:
        return -FEATURE_LIMIT <= value <= FEATURE_LIMIT
    if kind is str:
        return len(value) <= FEATURE_TEXT_MAX and _SURROGATE.search(value) is None
    return kind is bool


def parse(body: bytes) -> tuple[Any, str | None, str | None, str | None]:
    """features, request_id, booking_id, driver_id of a body ``PredictRequest`` accepts as
    it is; raises ``_Decline`` for anything it would refuse, coerce or need to explain."""
    try:
        # msgspec: strict UTF-8 (json.loads of bytes would also guess UTF-16/32, pydantic does
        # not), no BOM, no lone surrogate, no NaN; floats and duplicate keys read as json.loads
        # reads them (300,000 random floats compared). ~0.3 us against json.loads' ~2.
        payload = _decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        raise _Decline from None
    if type(payload) is not dict or "features" not in payload or not payload.keys() <= _TOP_KEYS:
        raise _Decline
    features = payload["features"]
    if type(features) is dict:
        if not all(map(_feature_ok, features.values())):
            raise _Decline
    elif type(features) is not list or not all(map(_feature_ok, features)):
        raise _Decline
    request_id = _identifier(payload.get("request_id"))
    booking_id = _identifier(payload.get("booking_id"))
    driver_id = _identifier(payload.get("driver_id"))
    context = payload.get("context")
    if context is not None:
        # The route's rule: a context's ids win, the top-level ones fill what it leaves out.
        if type(context) is not dict or not context.keys() <= _CONTEXT_KEYS:
            raise _Decline
        booking_id = _identifier(context.get("booking_id")) or booking_id
        driver_id = _identifier(context.get("driver_id")) or driver_id
    return features, request_id, booking_id, driver_id


def _model_in(path: str) -> tuple[str | None, str] | None:
    """(model name or None for the default, route template) of a prediction path, else None."""
    if path == DEFAULT_ROUTE:
        return None, DEFAULT_ROUTE
    if path.startswith(_MODEL_PREFIX) and path.endswith(_SUFFIX):
        name = path[len(_MODEL_PREFIX) : -len(_SUFFIX)]
        if _MODEL_NAME.fullmatch(name):
            return name, MODEL_ROUTE
    return None


class PredictFastPath:
    """Pure ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # requests this path answered itself (tests check it is taken)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        target = _model_in(scope["path"])
        runtime = getattr(scope["app"].state, "runtime", None)
        if target is None or runtime is None:
            await self.app(scope, receive, send)
            return
        length = content_type = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
        if (
            content_type != b"application/json"
            or length is None
            or not length.isdigit()
            or int(length) > getattr(runtime.settings, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        ):
            # Other media types, chunked bodies and oversized ones: FastAPI and BodySizeLimit.
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        received: list[Message] = []
        body = b""
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            if message["type"] != "http.request":
                raise _Decline
            features, request_id, booking_id, driver_id = parse(body)
            name, route = target
            try:
                model = runtime.model(name)
            except UnknownModel:
                raise _Decline from None  # FastAPI's 404, after its own checks
        except _Decline:
            await self.app(scope, _replay(received, receive), send)
            return
        status = 500  # what an exception escaping here becomes (ServerErrorMiddleware)
        try:
            request = Request(scope)
            try:
                await _rate_limit(request)
                answer = answer_one(model, features, request_id, booking_id, driver_id)
            except HTTPException as exc:  # 429 from the rate limit
                response = await errors.http_error(request, exc)
            except IaContinuError as exc:  # 422 invalid features, 503 model failure
                response = await errors.domain_error(request, exc)
            else:
                status = 200
                headers = [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", b"application/json"),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": answer})
                self.answered += 1
                return
            status = response.status_code
            await response(scope, receive, send)
            self.answered += 1
        finally:
            metrics.record_http("POST", route, status, time.perf_counter() - started)


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives the messages already read first, then the connection's own."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
