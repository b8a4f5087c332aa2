"""``ia-continu rollout``: turn ML on or off and set its share of traffic, through the API.

The flag lives in the database behind the API, so the command goes through the API (with
the admin key) like any operator would: the same validation, audit and cache invalidation.
Only httpx and the settings are imported: the command answers in well under a second.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ia_continu.cli.api import (
    ApiKey,
    ApiUrl,
    ModelName,
    call,
    model_prefix,
)

rollout_app = typer.Typer(
    no_args_is_help=True, help="Progressive rollout of the ML model (status, enable, disable)."
)

PREFIX = "/api/feature-flags"  # the default model's; a named model's is /models/NAME/rollout

DryRun = Annotated[bool, typer.Option("--dry-run", help="print the request, send nothing")]
Pct = Annotated[float, typer.Argument(min=0, max=100, help="share of traffic to ML, 0..100")]


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")


def _prefix(model: str | None) -> str:
    return f"{model_prefix(model, '')}/rollout" if model else PREFIX


def _call(
    method: str,
    path: str,
    api_url: str | None,
    api_key: str | None,
    body: dict | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    answer: dict[str, Any] = call(
        method, _prefix(model) + path, api_url, api_key, body, timeout=10.0
    )
    return answer


def _dry_run(
    method: str, path: str, api_url: str | None, body: dict | None = None, model: str | None = None
) -> None:
    from ia_continu.config import get_settings

    url = (api_url or get_settings().api_url).rstrip("/")
    shown = f" {body}" if body is not None else ""
    typer.echo(f"[dry-run] would send {method} {url}{_prefix(model)}{path}{shown}; nothing sent")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def render_status(status: dict[str, Any]) -> str:
    """The status as a readable block: configuration, counters since the last reset, health."""
    config, stats, health = status["config"], status["stats"], status["health"]
    line = "=" * 60
    return "\n".join(
        [
            f"ML ROLLOUT STATUS ({status.get('family', '?')})",
            line,
            "Configuration:",
            f"   ML enabled        : {_yes(config['ML_ENABLED'])}",
            f"   ML traffic        : {config['ML_TRAFFIC_PERCENTAGE']:g}%",
            f"   Fallback on error : {_yes(config['FALLBACK_ON_ERROR'])}",
            f"   Shadow rate       : {config.get('SHADOW_RATE', 0) * 100:g}%",
            f"Statistics (since {stats.get('since', '?')}):",
            f"   Total requests    : {stats['total_requests']}",
            f"   ML requests       : {stats['ml_requests']} ({stats['ml_usage_rate']:.1%})",
            f"   ML successes      : {stats['ml_successes']}",
            f"   ML failures       : {stats['ml_failures']}",
            f"   Success rate      : {stats['ml_success_rate']:.1%}",
            f"   Fallback requests : {stats['fallback_requests']}",
            "Health:",
            f"   Status            : {health['status'].upper()} ({health['reason']})",
            f"   Error rate        : {health['error_rate']:.1%}",
            line,
        ]
    )


def _change(
    path: str,
    body: dict | None,
    dry_run: bool,
    api_url: str | None,
    key: str | None,
    model: str | None,
) -> None:
    if dry_run:
        _dry_run("POST", path, api_url, body, model)
        return
    answer = _call("POST", path, api_url, key, body, model)
    typer.echo(answer.get("message", "done"))
    typer.echo(render_status(answer["status"]))


@rollout_app.command()
def status(
    model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None, dry_run: DryRun = False
) -> None:
    """Print the rollout configuration, its stats and the health verdict."""
    if dry_run:
        _dry_run("GET", "/status", api_url, model=model)
        return
    typer.echo(render_status(_call("GET", "/status", api_url, api_key, model=model)))


@rollout_app.command()
def enable(
    percentage: Annotated[
        float | None, typer.Option(min=0, max=100, help="share to ML; keep the current if absent")
    ] = None,
    model: ModelName = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    dry_run: DryRun = False,
) -> None:
    """Turn ML on, optionally at a share of the traffic."""
    body = {"percentage": percentage} if percentage is not None else {}
    _change("/ml/enable", body, dry_run, api_url, api_key, model)


@rollout_app.command()
def percentage(
    value: Pct,
    model: ModelName = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    dry_run: DryRun = False,
) -> None:
    """Change the share of traffic routed to ML (ids already in keep their answer)."""
    _change("/ml/percentage", {"percentage": value}, dry_run, api_url, api_key, model)


@rollout_app.command()
def disable(
    model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None, dry_run: DryRun = False
) -> None:
    """Turn ML off: the fallback answers every request."""
    _change("/ml/disable", None, dry_run, api_url, api_key, model)


@rollout_app.command("reset-stats")
def reset_stats(
    model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None, dry_run: DryRun = False
) -> None:
    """Start counting the stats from now."""
    _change("/reset-stats", None, dry_run, api_url, api_key, model)
