"""Discord delivery: an embed coloured by severity (seed 001's green, orange, red)."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime

from ia_continu.redact import redact
from notifications.alerts import Alert, Severity

log = logging.getLogger("ia_continu.alerts")

COLOURS = {Severity.info: "28a745", Severity.warning: "ffa500", Severity.critical: "d73a49"}


def build_embed_payload(alert: Alert) -> dict:
    """The embed as plain data (what tests read), independent of the HTTP client.

    Texts are redacted: an alert often quotes an error, and an error may quote a URL with its
    password; a Discord channel is read by more people than the server's environment."""
    return {
        "title": redact(alert.title)[:256],
        "description": redact(alert.message)[:4000],
        "color": COLOURS[alert.severity],
        "fields": [
            {"name": redact(str(k))[:256], "value": redact(str(v))[:1024], "inline": True}
            for k, v in list(alert.fields.items())[:25]
        ],
        "footer": f"ia-continu · {alert.severity.value}",
    }


def send_discord(
    url: str, alert: Alert, *, timeout: float = 5.0, max_retry_wait: float = 5.0
) -> bool:
    from discord_webhook import DiscordEmbed, DiscordWebhook

    payload = build_embed_payload(alert)
    embed = DiscordEmbed(
        title=payload["title"], description=payload["description"], color=payload["color"]
    )
    for f in payload["fields"]:
        embed.add_embed_field(name=f["name"], value=f["value"], inline=f["inline"])
    embed.set_footer(text=payload["footer"])
    embed.set_timestamp(datetime.now(UTC).timestamp())
    # rate_limit_retry stays off: discord-webhook 1.4 retries a 429 in an unbounded loop
    # (an alert could hang a flow for ever) and raises on a 429 without Discord's "Via"
    # header. One bounded retry is done here instead.
    hook = DiscordWebhook(url=url, rate_limit_retry=False, timeout=timeout, username="ia-continu")
    hook.add_embed(embed)
    for attempt in range(2):
        try:
            response = hook.execute()
        except Exception as exc:  # dead URL, non-JSON body
            # requests puts the URL, hence the webhook token, in its exception text.
            log.warning(
                "discord alert dropped (%s: %s): %s",
                type(exc).__name__,
                redact(str(exc)),
                redact(alert.title),
            )
            return False
        status = getattr(response, "status_code", 0)
        if 200 <= status < 300:
            return True
        if status == 429 and attempt == 0:
            time.sleep(_retry_after(response, cap=max_retry_wait))
            continue
        break
    log.warning("discord alert dropped (HTTP %s): %s", status, redact(alert.title))
    return False


def _retry_after(response, *, cap: float) -> float:
    """Seconds Discord asks us to wait (body ``retry_after`` or header), capped."""
    wait = 1.0
    try:
        wait = float(response.json().get("retry_after", wait))
    except Exception:
        with contextlib.suppress(TypeError, ValueError):
            wait = float(response.headers.get("Retry-After", wait))
    return min(max(wait, 0.0), cap)
