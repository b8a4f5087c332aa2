"""health_check: ping the API's ``/health`` and alert on a change of state, as Uptime Kuma.

The last state is kept in a Prefect Variable, so every run (a new process under a worker)
knows it: up -> down is one critical alert, down -> down is silence, down -> up is one
recovery alert. "degraded" (serving the fallback) counts as up: the API answers.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect import flow, get_run_logger, task

from flows.common import alert_flow_failure, settings_and_engine, state_key, swap_state
from notifications import Alert, Severity, notify


def state_variable(url: str) -> str:
    return state_key("health", url)  # one state per watched URL


@task(retries=2, retry_delay_seconds=2)
def probe(url: str, timeout: float) -> dict[str, Any]:
    """One GET; a refused connection or a 5xx is "down" (not an exception: it is the answer)."""
    try:
        r = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return {"up": False, "detail": f"{type(exc).__name__}: {exc}"}
    detail = r.text[:300]
    try:
        body = r.json()
        detail = body.get("reason") or body.get("status") or detail
    except ValueError:
        pass
    return {"up": r.status_code < 500, "status_code": r.status_code, "detail": detail}


@task
def transition(variable: str, up: bool) -> tuple[str | None, str]:
    current = "up" if up else "down"
    return swap_state(variable, current), current


@flow(name="health_check", on_failure=[alert_flow_failure], log_prints=True)
def health_check(url: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    settings, _ = settings_and_engine()
    url = url or settings.api_url.rstrip("/") + "/health"
    result = probe(url, timeout)
    previous, current = transition(state_variable(url), result["up"])
    alerted = False
    # First sight of an up API is not news; first sight of a down one is.
    if previous != current and not (previous is None and current == "up"):
        if current == "down":
            alert = Alert(
                "API down",
                f"{url} is not answering: {result['detail']}",
                Severity.critical,
                {"url": url},
                key=f"health-down-{url}",
            )
        else:
            alert = Alert(
                "API back up",
                f"{url} answers again",
                Severity.info,
                {"url": url, "status": result.get("status_code")},
                key=f"health-up-{url}",
            )
        alerted = notify(alert, cooldown=0)  # the state machine already makes one per incident
    get_run_logger().info("health %s -> %s (%s)", previous, current, result["detail"])
    return {"url": url, "previous": previous, "state": current, "alerted": alerted, **result}


if __name__ == "__main__":
    health_check()
