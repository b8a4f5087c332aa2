"""What every CLI command that talks to the API shares: the connection options, the
connection itself (URL and admin key from the options or the settings), one-line errors."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer

ApiUrl = Annotated[
    str | None, typer.Option("--api-url", help="API base URL; default IA_CONTINU_API_URL")
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", help="admin key; default IA_CONTINU_API_KEY")
]


ModelName = Annotated[
    str | None,
    typer.Option("--model", help="the declared model to act on; default: the server's default"),
]


def model_prefix(model: str | None, default: str) -> str:
    """Where a model's routes live: ``/models/NAME`` for a named model, else the default
    model's own paths (``default``), which every server has."""
    from urllib.parse import quote

    return f"/models/{quote(model, safe='')}" if model else default


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def connection(api_url: str | None, api_key: str | None) -> tuple[str, str]:
    from ia_continu.config import get_settings

    settings = get_settings()
    url = (api_url or settings.api_url).rstrip("/")
    if api_key is None:
        try:
            api_key = settings.effective_api_key
        except RuntimeError as exc:
            fail(f"{exc} (or pass --api-key)", 2)
    return url, str(api_key)


def call(
    method: str,
    path: str,
    api_url: str | None,
    api_key: str | None,
    body: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> Any:
    """One admin-keyed JSON call to the API; any failure is a one-line error and exit 1."""
    import httpx

    url, key = connection(api_url, api_key)
    try:
        response = httpx.request(
            method, url + path, json=body, headers={"X-API-Key": key}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the API at {url}: {exc}")
    if response.status_code in (401, 403):
        fail(f"the API refused the key ({response.status_code}): {detail(response)}")
    if response.status_code >= 400:
        fail(f"the API answered {response.status_code}: {detail(response)}")
    return response.json()


def detail(response: Any) -> str:
    try:
        value = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(value, list):  # FastAPI's validation errors: one message per field
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" for e in value
        )
    return str(value)
