"""``ia-continu challenger``: the live challenger arm (status) and an operator's steps
(start, abort, advance), through the API.

The arm lives in the database behind the API, and every change of it takes the registry lock
and writes its audit row: the command goes through the admin routes like any operator would.
Only httpx and the settings are imported.
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

challenger_app = typer.Typer(
    no_args_is_help=True,
    help="The challenger judged live against the champion (status, start, abort, advance).",
)

Why = Annotated[str, typer.Option("--reason", help="why, for the audit log")]


def register(app: typer.Typer) -> None:
    app.add_typer(challenger_app, name="challenger")


def _call(
    method: str,
    model: str | None,
    path: str,
    api_url: str | None,
    api_key: str | None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    answer: dict[str, Any] = call(
        method, model_prefix(model, "") + "/challenger" + path, api_url, api_key, body
    )
    return answer


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def share(arm: dict[str, Any]) -> str:
    """Where an arm stands: ``shadow`` or ``canary 25%``."""
    return "shadow" if arm["mode"] == "shadow" else f"canary {arm['percentage']:g}%"


def render_status(status: dict[str, Any]) -> str:
    """The arm, champion and challenger side by side, the test and the verdict, the steps."""
    policy = status["policy"]
    steps = ", ".join(f"{s:g}" for s in policy["steps"])
    lines = [
        f"CHALLENGER ({status['model']}): policy {policy['name']}, canary steps [{steps}] %,"
        f" {policy['min_labelled']} outcomes per arm, alpha {policy['alpha']:g}",
    ]
    arm = status["active"]
    if arm is None:
        lines.append(f"no challenger live; champion {status['champion_version'] or '-'}")
    else:
        lines.append(
            f"version {arm['version']} against champion {arm['champion_version']}:"
            f" {share(arm)} (since {arm['step_started_at']})"
        )
        comparison = status.get("comparison")
        if comparison is not None:
            lines += _comparison(comparison)
        elif status.get("comparison_error"):
            lines.append(f"comparison failed: {status['comparison_error']}")
    verdict = status.get("last_verdict")
    if verdict:
        p = verdict.get("p_value")
        lines.append(
            f"last verdict: {verdict.get('verdict')}"
            + (f" (p={_num(p, 3)})" if p is not None else "")
            + f": {verdict.get('reason', '')}"
        )
    if status["steps"]:
        lines.append("steps (newest first):")
        for step in status["steps"][:10]:
            metrics = step.get("metrics") or {}
            where = "shadow" if metrics.get("mode") == "shadow" else f"{metrics.get('percentage')}%"
            lines.append(
                f"  {step['at'][:19]}  {step['event']:<20} v{step['version']} {where}:"
                f" {step['reason']}"
            )
    return "\n".join(lines)


def _comparison(c: dict[str, Any]) -> list[str]:
    champion, challenger = c["champion"], c["challenger"]
    rows = [
        ("", "champion", "challenger"),
        ("version", str(champion["version"]), str(challenger["version"])),
        ("rows", str(champion["rows"]), str(challenger["rows"])),
        ("labelled", str(champion["labelled"]), str(challenger["labelled"])),
        (c["metric"], _num(champion["metric"]), _num(challenger["metric"])),
        ("error rate", _pct(champion["error_rate"]), _pct(challenger["error_rate"])),
        ("latency ms", _num(champion["latency_ms"], 3), _num(challenger["latency_ms"], 3)),
    ]
    out = [f"   {a:<12}{b:>12}{d:>12}" for a, b, d in rows]
    if c.get("test"):
        out.append(
            f"   test {c['test']}: difference {_num(c['difference'])}"
            f" [{_num(c['ci_low'])}, {_num(c['ci_high'])}], p={_num(c['p_value'], 3)},"
            f" p(not worse)={_num(c['p_not_worse'], 3)},"
            f" sequential p={_num(c.get('p_sequential'), 3)} (what the verdict reads)"
        )
    out.append(f"   verdict now: {c['verdict'].upper()}: {c['reason']}")
    return out


@challenger_app.command()
def status(model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None) -> None:
    """The live arm with both arms' figures, the test and its verdict, the recent steps."""
    typer.echo(render_status(_call("GET", model, "", api_url, api_key)))


def _change(answer: dict[str, Any]) -> None:
    typer.echo(answer["message"])
    typer.echo(render_status(answer["status"]))


@challenger_app.command()
def start(
    version: Annotated[str, typer.Argument(help="a registered version (ia-continu models list)")],
    reason: Why = "started by an operator",
    model: ModelName = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Put a version live against the champion, under the model's policy."""
    body = {"version": version, "reason": reason}
    _change(_call("POST", model, "", api_url, api_key, body))


@challenger_app.command()
def abort(
    reason: Why, model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None
) -> None:
    """Back to the champion alone: the live arm is cleared."""
    _change(_call("POST", model, "/abort", api_url, api_key, {"reason": reason}))


@challenger_app.command()
def advance(
    reason: Why, model: ModelName = None, api_url: ApiUrl = None, api_key: ApiKey = None
) -> None:
    """An operator's override: the next step now (past the last, champion)."""
    _change(_call("POST", model, "/advance", api_url, api_key, {"reason": reason}))
