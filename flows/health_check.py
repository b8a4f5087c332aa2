"""health_check: ping the API's ``/health`` and alert on a change of state, as Uptime Kuma.

The last state is kept in a Prefect Variable, so every run (a new process under a worker)
knows it: up -> down is one critical alert, down -> down is silence, down -> up is one
recovery alert. "degraded" (serving the fallback) counts as up: the API answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx
from prefect import flow, get_run_logger, task

from flows.common import alert_flow_failure, state_key, swap_state
from ia_continu.config import Settings
from notifications import Alert, Severity, notify

State = Literal["up", "down"]


@dataclass(frozen=True, slots=True)
class Probe:
    up: bool
    detail: str  # the API's reason or status, or the connection error
    status_code: int | None = None  # None when nothing answered


@dataclass(frozen=True, slots=True)
class Transition:
    previous: State | None  # None the first time this URL is watched
    current: State

    @property
    def news(self) -> bool:
        """A change worth an alert. First sight of an up API is not news; of a down one is."""
        return self.previous != self.current and not (
            self.previous is None and self.current == "up"
        )


def state_variable(url: str) -> str:
    return state_key("health", url)  # one state per watched URL


@task(retries=2, retry_delay_seconds=2)
def probe(url: str, timeout: float) -> Probe:
    """One GET; a refused connection or a 5xx is "down" (not an exception: it is the answer)."""
    try:
        r = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return Probe(up=False, detail=f"{type(exc).__name__}: {exc}")
    detail = r.text[:300]
    try:
        body = r.json()
        detail = str(body.get("reason") or body.get("status") or detail)
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        pass
    return Probe(up=r.status_code < 500, detail=detail, status_code=r.status_code)


@task
def transition(variable: str, up: bool) -> Transition:
    current: State = "up" if up else "down"
    return Transition(previous=swap_state(variable, current), current=current)


def incident_alert(url: str, probed: Probe, change: Transition) -> Alert:
    if change.current == "down":
        return Alert(
            "API down",
            f"{url} is not answering: {probed.detail}",
            Severity.critical,
            {"url": url},
            key=f"health-down-{url}",
        )
    return Alert(
        "API back up",
        f"{url} answers again",
        Severity.info,
        {"url": url, "status": probed.status_code},
        key=f"health-up-{url}",
    )


@flow(name="health_check", on_failure=[alert_flow_failure], log_prints=True)
def health_check(url: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    settings = Settings()
    url = url or settings.api_url.rstrip("/") + "/health"
    probed = probe(url, timeout)
    change = transition(state_variable(url), probed.up)
    alerted = False
    if change.news:
        # cooldown=0: the state machine already makes one alert per incident.
        alerted = notify(incident_alert(url, probed, change), settings, cooldown=0)
    get_run_logger().info("health %s -> %s (%s)", change.previous, change.current, probed.detail)
    return {
        "url": url,
        "previous": change.previous,
        "state": change.current,
        "alerted": alerted,
        **asdict(probed),
    }


if __name__ == "__main__":
    health_check()
