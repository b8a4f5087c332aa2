"""``ia-continu models``: the declared models, one model's registry, promote, rollback.

Everything goes through the API: ``list`` reads ``/models/declared`` and ``/models`` (or
``/models/NAME`` with ``--model NAME``);
``promote`` and ``rollback`` call the admin routes, so they take the same cross-process
registry lock as every other champion change (and this replica serves the new champion
before answering, the others within a poll). Only httpx and the settings are imported.
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

models_app = typer.Typer(
    no_args_is_help=True,
    help="Declared models and each model's registry (list, promote, rollback).",
)

Reason = Annotated[str | None, typer.Option("--reason", help="recorded in the champion history")]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _estimator(model: dict[str, Any]) -> str:
    return str(model["estimator"]["class"]).removeprefix("sklearn.")


def render_declared(declared: list[dict[str, Any]]) -> list[str]:
    """One line per declared model; the served one marked with ``*``."""
    rows = [
        (
            ("* " if m["served"] else "  ") + m["name"],
            m["task"],
            str(len(m["features"])),
            _estimator(m),
            f"{m['gate']['metric']} ({m['gate']['direction']})",
            m["fallback"]["kind"],
            "built-in" if m["builtin"] else m["source"],
        )
        for m in declared
    ]
    header = ("  NAME", "TASK", "FEATURES", "ESTIMATOR", "GATE", "FALLBACK", "FROM")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)), r[-1]])
        for r in [header, *rows]
    ]


def render_registry(models: dict[str, Any]) -> list[str]:
    """One model's champion and its registered versions, newest first."""
    lines = [
        f"Registry of {models['family']} (registered as {models['registered_model']}):",
        f"   champion          : {models['champion_version'] or 'none'}",
        f"   rollback restores : {models['previous_version'] or 'nothing'}",
        f"   served here       : {models['served_version'] or 'the fallback (no model)'}",
    ]
    if not models["versions"]:
        lines.append("   no version registered yet (POST /retrain trains one)")
        return lines
    lines.append("   versions:")
    for v in models["versions"]:
        metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v["metrics"].items())[:4])
        aliases = ",".join(v["aliases"]) or "-"
        lines.append(f"     {v['version']:>4}  {aliases:<9}  {v['created_at'][:19]}  {metrics}")
    return lines


@models_app.command("list")
def list_models(model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """Declared models (* = the default), then one model's champion and versions."""
    declared = call("GET", "/models/declared", api_url, api_key)
    registry = call("GET", model_prefix(model, "/models"), api_url, api_key)
    typer.echo("Declared models (* = the server's default; --model NAME for another):")
    for line in render_declared(declared):
        typer.echo(line)
    typer.echo("")
    for line in render_registry(registry):
        typer.echo(line)


def _print_change(change: dict[str, Any], action: str) -> None:
    champion = change["champion_version"]
    if not change["changed"]:
        typer.echo(f"version {champion} is already champion: nothing changed")
    else:
        typer.echo(f"{action}: champion is now version {champion}")
    typer.echo(
        f"   rollback restores : {change['previous_version'] or 'nothing'}\n"
        f"   served here       : {change['served_version'] or 'the fallback (no model)'}"
    )


@models_app.command()
def promote(
    version: Annotated[str, typer.Argument(help="the registered version to make champion")],
    reason: Reason = None,
    model: ModelName = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Make a registered version the champion (every replica serves it within a poll)."""
    from urllib.parse import quote

    body = {"reason": reason} if reason is not None else None
    # A version is one path segment.
    path = f"{model_prefix(model, '/models')}/{quote(version, safe='')}/promote"
    _print_change(call("POST", path, api_url, api_key, body), "promoted")


@models_app.command()
def rollback(
    reason: Reason = None, model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None
) -> None:
    """Restore the champion before the current one."""
    body = {"reason": reason} if reason is not None else None
    path = f"{model_prefix(model, '/models')}/rollback"
    _print_change(call("POST", path, api_url, api_key, body), "rolled back")
