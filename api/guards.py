"""Refuse a request before paying for its body: the size limit and the admin key.

Both run before FastAPI reads the body (it reads and parses the whole body before it
resolves any dependency), so a 50 MB upload costs neither 50 MB of memory nor the parse.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import finite_json
from api.security import api_key_header, require_api_key
from ia_continu.config import Settings

DEFAULT_MAX_BODY_BYTES: int = Settings.model_fields["max_body_bytes"].default
DEFAULT_MAX_DATASET_BYTES: int = Settings.model_fields["max_dataset_bytes"].default
DATASET_SUFFIX = "/datasets"  # uploads of whole files (api/routes/datasets.py)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit.

    An HTTPException on purpose: FastAPI re-raises those from its body reading (any other
    exception there becomes a 400 "error parsing the body"), and its handler answers 413.
    """

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            _too_large(limit, setting),
            headers={"Connection": "close"},
        )


def _too_large(limit: int, setting: str) -> str:
    return f"request body larger than {limit} bytes (IA_CONTINU_{setting.upper()})"


class BodySizeLimit:
    """Pure ASGI middleware: a body over ``max_body_bytes`` gets a 413, on every route but
    dataset uploads (paths ending in ``/datasets``), held to ``max_dataset_bytes`` instead.

    A declared Content-Length over the limit is refused at once, nothing read. A body
    without one (chunked) is counted as it arrives and refused as soon as it passes the
    limit, so at most ``max_body_bytes`` of it is ever held.
    """

    def __init__(self, app: ASGIApp, default_limit: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.default_limit = default_limit

    def _limit(self, scope: Scope) -> tuple[int, str]:
        """The limit for this request and the setting that sets it."""
        # The settings live on the runtime, created by the lifespan after the middleware.
        runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
        settings = getattr(runtime, "settings", None)
        if scope.get("path", "").rstrip("/").endswith(DATASET_SUFFIX):
            return getattr(settings, "max_dataset_bytes", DEFAULT_MAX_DATASET_BYTES), (
                "max_dataset_bytes"
            )
        return getattr(settings, "max_body_bytes", self.default_limit), "max_body_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:  # the server rejects those first; be safe anyway
                    declared = limit + 1
                break
        if declared is not None:
            # The server holds the client to its Content-Length: no counting needed.
            if declared > limit:
                await _send_413(send, limit, setting)
                return
            await self.app(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            # Normally answered by the app's HTTPException handler; this covers a body
            # read outside it.
            if started:
                raise
            await _send_413(send, limit, setting)


async def _send_413(send: Send, limit: int, setting: str) -> None:
    body = finite_json({"detail": _too_large(limit, setting)})
    await send(
        {
            "type": "http.response.start",
            "status": status.HTTP_413_CONTENT_TOO_LARGE,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The unread body must not be taken for the next request on this connection.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def requires_api_key(dependant: Dependant) -> bool:
    return any(d.call is require_api_key or requires_api_key(d) for d in dependant.dependencies)


class KeyFirstRoute(APIRoute):
    """An admin route that checks the API key before reading the body.

    A route class rather than a check in the ASGI middleware: the route knows its own
    dependencies, where the middleware would have to repeat FastAPI's routing to learn
    which path needs a key (and would drift from it when a route is added). The
    ``require_api_key`` dependency still runs afterwards, and still documents the key in
    the OpenAPI schema; this only makes the same check happen first.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not requires_api_key(self.dependant):
            return handler

        async def key_then_body(request: Request) -> Response:
            require_api_key(request, request.headers.get(api_key_header.model.name))
            return await handler(request)

        return key_then_body
