"""Error answers that cannot fail: whatever a client sent, it gets a 4xx with a ``detail``.

FastAPI's own 422 handler echoes each invalid input back as JSON. That breaks on exactly
the inputs worth refusing: NaN or Infinity (``allow_nan=False``), a lone surrogate (not
encodable as UTF-8), and it copies a 5 MB string into the answer. Here every echoed value
is a short ``repr`` excerpt, so the answer is always small, finite, valid JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import reprlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ia_continu.errors import IaContinuError

log = logging.getLogger("ia_continu.api")

EXCERPT_CHARS = 100  # an echoed input, at most
MESSAGE_CHARS = 500  # a message of ours (they may quote a field name the client chose)
MAX_ERRORS = 20  # listed in one 422; a body with 50,000 bad items gets the first ones
_SAFE_INT = 10**15
FASTAPI_PARSE_FAILED = "There was an error parsing the body"  # its 400 for json.loads errors

_repr = reprlib.Repr()  # bounded in depth and width: repr of a 100,000-deep list is cheap
_repr.maxlevel = 2
_repr.maxstring = _repr.maxother = 60
_repr.maxlong = 40
_repr.maxdict = _repr.maxlist = _repr.maxtuple = _repr.maxset = 4


def _clip(text: str, limit: int) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    # A lone surrogate cannot be encoded as UTF-8: spell it as an escape instead.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short printable repr of anything a client sent (never raises)."""
    try:
        if isinstance(value, bytes | bytearray):
            value = bytes(value[: _repr.maxstring])
        return _clip(_repr.repr(value), limit)
    except Exception:  # a repr that fails must not turn a 422 into a 500
        return f"<{type(value).__name__}>"


def safe_value(value: Any) -> Any:
    """``value`` itself when it is a small finite JSON scalar, else its excerpt."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and -_SAFE_INT < value < _SAFE_INT:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= EXCERPT_CHARS:
        return _clip(value, EXCERPT_CHARS)
    return excerpt(value)


def _error_item(error: Any) -> dict[str, Any]:
    if not isinstance(error, dict):
        return {"type": "value_error", "loc": [], "msg": _clip(str(error), MESSAGE_CHARS)}
    loc = [
        part if isinstance(part, int) and abs(part) < _SAFE_INT else _clip(str(part), 60)
        for part in error.get("loc", ())
    ]
    item: dict[str, Any] = {
        "type": _clip(str(error.get("type", "value_error")), 60),
        "loc": loc,
        "msg": _clip(str(error.get("msg", "")), MESSAGE_CHARS),
    }
    if "input" in error:
        item["input"] = safe_value(error["input"])
    ctx = error.get("ctx")
    if isinstance(ctx, dict) and ctx:
        item["ctx"] = {
            _clip(str(k), 60): (
                safe_value(v) if v is None or isinstance(v, int | float | str) else excerpt(v)
            )
            for k, v in list(ctx.items())[:10]
        }
    return item


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    errors = list(errors)
    detail = [_error_item(e) for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        detail.append(
            {
                "type": "too_many_errors",
                "loc": [],
                "msg": f"{len(errors) - MAX_ERRORS} more errors not listed",
            }
        )
    return detail


def _finite(value: Any, depth: int = 0) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 50:
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, depth + 1) for v in value]
    return value


def finite_json(content: Any) -> bytes:
    """JSON bytes, always valid: NaN and infinities become null, lone surrogates escapes."""
    try:
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except (ValueError, TypeError, RecursionError):
        # Not on the normal path: an answer carrying a non-finite number is a bug worth a
        # log line, and still an answer.
        log.warning("answer needed sanitising (non-finite number or unencodable string)")
        try:
            return json.dumps(
                _finite(content), ensure_ascii=True, allow_nan=False, default=excerpt
            ).encode("ascii")
        except Exception:  # e.g. an int past Python's 4,300-digit str() limit
            return b'{"detail":"the answer could not be encoded"}'


class FiniteJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return finite_json(content)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    try:
        detail: Any = validation_detail(exc.errors())
    except Exception:
        log.exception("could not describe a validation error on %s", request.url.path)
        detail = "invalid request"
    return FiniteJSONResponse({"detail": detail}, status_code=422)


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail
    if exc.status_code == 400 and detail == FASTAPI_PARSE_FAILED:
        # json.loads raised something other than a decode error: RecursionError on deep
        # nesting, ValueError on an integer of 4,300+ digits or on bytes that are not UTF-8.
        # The same 422 as any other body that is not JSON, saying which.
        cause = exc.__cause__
        why = (
            "nested too deeply"
            if isinstance(cause, RecursionError)
            else _clip(str(cause), 200)
            if cause is not None
            else "unreadable"
        )
        return FiniteJSONResponse({"detail": f"body is not valid JSON: {why}"}, status_code=422)
    if isinstance(detail, str):
        detail = _clip(detail, MESSAGE_CHARS)
    headers = getattr(exc, "headers", None)
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=headers)
    return FiniteJSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    # The one place where the domain's errors become HTTP: each class carries its status
    # (ia_continu/errors.py draws the hierarchy), and its message is written for the client.
    status = exc.status_code if isinstance(exc, IaContinuError) else 500
    return FiniteJSONResponse({"detail": _clip(str(exc), MESSAGE_CHARS)}, status_code=status)


class ErrorPublic(BaseModel):
    """An error answer: one sentence written for its reader, or, when FastAPI refuses a
    malformed request (422), the list of field errors."""

    detail: str | list[dict[str, Any]]


def error_responses(*errors: type[IaContinuError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that may raise these domain errors: the status each maps to
    (its ``status_code``, as ``domain_error`` answers it), described by the classes' docs."""
    described: dict[int, list[str]] = {}
    for error in errors:
        doc = (error.__doc__ or "").strip().splitlines() or [error.__name__]
        described.setdefault(error.status_code, []).append(f"{error.__name__}: {doc[0]}")
    return {
        status: {"model": ErrorPublic, "description": " / ".join(lines)}
        for status, lines in described.items()
    }


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Never a traceback to the client; the log has it. Nothing here may raise, so the
    # exception's own text is not used (it can be anything, even unprintable).
    with contextlib.suppress(Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
    return FiniteJSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


def install(app: FastAPI) -> None:
    # Starlette types handlers as taking any Exception; each of ours takes its own class.
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(IaContinuError, domain_error)
    app.add_exception_handler(Exception, unexpected)
