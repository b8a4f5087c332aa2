"""A Discord outage never fails a flow: the alert is dropped with a log line, the flow
completes (issue 6's resilience list). The failures are real HTTP answers or a dead port."""

from __future__ import annotations

import pytest

from flows.health_check import health_check
from notifications.receiver import Reply
from tests.flows.conftest import free_port


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500, body=b"internal error", headers={"Content-Type": "text/plain"}),
        Reply(status=429, body=b"{}", headers={"Content-Type": "application/json"}),
        Reply(status=200, body=b"<html>not json</html>", headers={"Content-Type": "text/html"}),
        None,  # nothing listens on the webhook's port
    ],
    ids=["500", "429-without-headers", "non-json", "unreachable"],
)
def test_flow_completes_when_discord_fails(flow_settings, receiver, monkeypatch, reply, caplog):
    from ia_continu.config import get_settings

    if reply is None:
        monkeypatch.setenv("IA_CONTINU_DISCORD_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/x")
        get_settings.cache_clear()
    else:
        receiver.reply = reply
    # The API is down (nothing on this port): the flow wants to alert "API down".
    state = health_check(
        url=f"http://127.0.0.1:{free_port()}/health", timeout=1.0, return_state=True
    )
    assert state.is_completed(), state
    result = state.result()
    assert result["state"] == "down"
    assert "discord alert dropped" in caplog.text or "alert could not be delivered" in caplog.text
