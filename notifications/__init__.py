"""Alerts behind one small interface: ``notify(Alert(...), settings)``. It never raises.

Discord (a plain HTTP POST of an embed) when the settings hold a webhook URL
(``IA_CONTINU_DISCORD_WEBHOOK_URL``), the log otherwise. A cooldown per alert key makes one
incident one message.
"""

from notifications.alerts import Alert, Severity, notify, reset_cooldowns

__all__ = ["Alert", "Severity", "notify", "reset_cooldowns"]
