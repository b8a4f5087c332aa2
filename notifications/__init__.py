"""Alerts behind one small interface: ``notify(Alert(...))``. It never raises.

Discord (through discord-webhook) when ``IA_CONTINU_DISCORD_WEBHOOK_URL`` is set, the log
otherwise. A cooldown per alert key makes one incident one message.
"""

from notifications.alerts import Alert, Severity, notify, reset_cooldowns

__all__ = ["Alert", "Severity", "notify", "reset_cooldowns"]
