"""flows/health_check.py: one alert per change of state, through a real receiver."""

from __future__ import annotations

from flows.health_check import health_check


def test_alerts_once_per_state_change(flow_settings, live_server, receiver):
    url = live_server.url + "/health"
    live_server.start()
    first = health_check(url=url)
    assert first["state"] == "up" and first["alerted"] is False  # first sight of "up": no news

    live_server.stop()
    down = [health_check(url=url) for _ in range(3)]
    assert [r["state"] for r in down] == ["down"] * 3
    assert [r["alerted"] for r in down] == [True, False, False]  # one incident, one alert

    live_server.start()
    up = health_check(url=url)
    assert up["state"] == "up" and up["alerted"] is True
    assert health_check(url=url)["alerted"] is False

    embeds = receiver.embeds()
    assert [e["title"] for e in embeds] == ["API down", "API back up"]
    assert [e["color"] for e in embeds] == [0xD73A49, 0x28A745]  # red, then green
