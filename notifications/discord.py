"""Discord delivery: one embed, coloured by severity (green, orange, red), posted with httpx.

A plain POST of the embed payload rather than the ``discord-webhook`` library: that library
retries a 429 in an unbounded loop when asked to retry (an alert could hang a flow for ever),
raises on a 429 lacking Discord's own headers when not, and puts the webhook URL (its token)
in its exception texts. Here an answer is one of: delivered (2xx), rate limited (one retry
after Discord's ``retry_after``, capped), or dropped with a redacted log line. Nothing raises.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from ia_continu.redact import redact
from notifications.alerts import Alert, Severity

log = logging.getLogger("ia_continu.alerts")

COLOURS = {Severity.info: 0x28A745, Severity.warning: 0xFFA500, Severity.critical: 0xD73A49}
USERNAME = "ia-continu"


def build_embed_payload(alert: Alert, *, now: datetime | None = None) -> dict[str, Any]:
    """The embed as Discord's API takes it (``{"embeds": [this]}``).

    Texts are redacted: an alert often quotes an error, and an error may quote a URL with its
    password; a Discord channel is read by more people than the server's environment.
    Lengths are cut to Discord's limits, or Discord refuses the whole message."""
    return {
        "title": redact(alert.title)[:256],
        "description": redact(alert.message)[:4000],
        "color": COLOURS[alert.severity],
        "fields": [
            {"name": redact(str(k))[:256], "value": redact(str(v))[:1024], "inline": True}
            for k, v in list(alert.fields.items())[:25]
        ],
        "footer": {"text": f"ia-continu · {alert.severity.value}"},
        "timestamp": (now or datetime.now(UTC)).isoformat(),
    }


def send_discord(
    url: str, alert: Alert, *, timeout: float = 5.0, max_retry_wait: float = 5.0
) -> bool:
    """POST the alert; True when Discord accepted it. At most two requests, never raises."""
    body = {"username": USERNAME, "embeds": [build_embed_payload(alert)]}
    for attempt in range(2):
        try:
            response = httpx.post(url, json=body, timeout=timeout)
        except httpx.HTTPError as exc:  # refused, timed out, invalid URL
            # httpx puts the URL, hence the webhook token, in some of its texts.
            _dropped(f"{type(exc).__name__}: {exc}", alert)
            return False
        if response.is_success:
            return True
        if response.status_code == 429 and attempt == 0:
            time.sleep(retry_after(response, cap=max_retry_wait))
            continue
        break
    _dropped(f"HTTP {response.status_code}", alert)
    return False


def _dropped(why: str, alert: Alert) -> None:
    log.warning("discord alert dropped (%s): %s", redact(why), redact(alert.title))


def retry_after(response: httpx.Response, *, cap: float) -> float:
    """Seconds Discord asks us to wait (JSON ``retry_after``, else ``Retry-After``), capped.

    One second when the answer says nothing usable (a 429 from a proxy, not Discord)."""
    wait = 1.0
    try:
        wait = float(response.json()["retry_after"])
    except (ValueError, KeyError, TypeError):
        with contextlib.suppress(TypeError, ValueError):
            wait = float(response.headers.get("Retry-After", wait))
    if wait != wait:  # NaN from a hostile or broken answer
        wait = 1.0
    return min(max(wait, 0.0), cap)
