"""The alert type, the cooldown, and the dispatch to a channel."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ia_continu.config import Settings

log = logging.getLogger("ia_continu.alerts")


class Severity(StrEnum):
    info = "info"  # green
    warning = "warning"  # orange
    critical = "critical"  # red


@dataclass(frozen=True, slots=True)
class Alert:
    title: str
    message: str
    severity: Severity = Severity.warning
    fields: dict[str, Any] = field(default_factory=dict)
    # Alerts with the same key inside the cooldown are one incident: only the first is sent.
    key: str | None = None


_last_sent: dict[str, float] = {}
_lock = threading.Lock()


def reset_cooldowns() -> None:
    with _lock:
        _last_sent.clear()


def _cooled_down(key: str, cooldown: float) -> bool:
    now = time.monotonic()
    with _lock:
        last = _last_sent.get(key)
        if last is not None and now - last < cooldown:
            return False
        _last_sent[key] = now
        return True


def notify(
    alert: Alert,
    settings: Settings | None = None,
    *,
    webhook_url: str | None = None,
    cooldown: float | None = None,
) -> bool:
    """Send ``alert``; True if it went out (or was logged), False if suppressed or failed.

    The Discord webhook and the cooldown come from ``settings`` (the caller's, built once per
    process or flow run); ``webhook_url`` and ``cooldown`` override them. Without a webhook
    the alert is logged. Without settings nor ``cooldown`` there is no cooldown.

    Never raises: an alert must not fail the flow or the request that raised it.
    """
    try:
        from ia_continu.redact import install_logging, protect, register, url_secrets

        # Flows and the CLI send alerts without starting the API: the redaction of log lines
        # is installed here too, and the URL given by the caller is a secret as well.
        if settings is not None:
            protect(settings)
            if webhook_url is None and settings.discord_webhook_url is not None:
                webhook_url = settings.discord_webhook_url.get_secret_value() or None
            if cooldown is None:
                cooldown = settings.alert_cooldown_seconds
        else:
            install_logging()
        if webhook_url:
            register(*url_secrets(webhook_url))
        key = alert.key or alert.title
        if cooldown and cooldown > 0 and not _cooled_down(key, cooldown):
            log.info("alert suppressed by cooldown: %s", alert.title)
            return False
        if not webhook_url:
            _log_alert(alert)
            return True
        from notifications.discord import send_discord

        return send_discord(webhook_url, alert)
    except Exception:  # the last line of defence: nothing escapes notify()
        log.exception("alert could not be delivered: %s", alert.title)
        return False


_LEVELS = {
    Severity.info: logging.INFO,
    Severity.warning: logging.WARNING,
    Severity.critical: logging.ERROR,
}


def _log_alert(alert: Alert) -> None:
    log.log(
        _LEVELS[alert.severity],
        "ALERT [%s] %s: %s %s",
        alert.severity,
        alert.title,
        alert.message,
        alert.fields or "",
    )
