"""A Discord outage never fails a flow: the alert is dropped with a log line and the flow
completes, since an alert is a side effect of the loop, not its job. The failures are real
HTTP answers or a dead port."""

from __future__ import annotations

import pytest

from flows.health_check import health_check
from tests.flows.conftest import free_port


@pytest.mark.parametrize(
    "reply",
    [
        (500, b"internal error", {"Content-Type": "text/plain"}),
        (429, b"{}", {"Content-Type": "application/json"}),
        (
            400,
            b'{"message": "Invalid Form Body", "code": 50035}',
            {"Content-Type": "application/json"},
        ),
        None,  # nothing listens on the webhook's port
    ],
    ids=["500", "429-without-retry-after", "400", "unreachable"],
)
def test_flow_completes_when_discord_fails(flow_settings, receiver, monkeypatch, reply, caplog):
    if reply is None:
        # The flow builds its settings when it runs: the environment is what it reads.
        monkeypatch.setenv("IA_CONTINU_DISCORD_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/x")
    else:
        receiver.answer(*reply)
    # The API is down (nothing on this port): the flow wants to alert "API down".
    state = health_check(
        url=f"http://127.0.0.1:{free_port()}/health", timeout=1.0, return_state=True
    )
    assert state.is_completed(), state
    result = state.result()
    assert result["state"] == "down"
    assert "discord alert dropped" in caplog.text or "alert could not be delivered" in caplog.text
