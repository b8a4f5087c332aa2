"""The admin API key: every state-changing route depends on ``require_api_key``."""

from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Admin key (IA_CONTINU_API_KEY)"
)


def require_api_key(request: Request, key: str | None = Depends(api_key_header)) -> None:
    expected = request.app.state.runtime.settings.effective_api_key
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing X-API-Key header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    # Constant time: the comparison must not leak how many leading characters were right.
    if not secrets.compare_digest(key.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid API key")
