"""notifications/: real HTTP to a pytest-httpserver standing in for Discord, answering as
Discord does (204, 429 with ``retry_after``) and as it fails (4xx, 5xx, non-JSON, dead port)."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from ia_continu.config import Settings
from notifications import Alert, Severity, notify, reset_cooldowns
from notifications.discord import COLOURS, send_discord

PATH = "/api/webhooks/123/hook-token-for-tests"


@pytest.fixture(autouse=True)
def fresh_cooldowns() -> Iterator[None]:
    reset_cooldowns()
    yield
    reset_cooldowns()


@pytest.fixture
def discord(httpserver: HTTPServer) -> HTTPServer:
    """Discord's happy path: 204 No Content for every POST."""
    httpserver.expect_request(PATH, method="POST").respond_with_data(b"", status=204)
    return httpserver


def url(server: HTTPServer) -> str:
    return server.url_for(PATH)


def posted(server: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _ in server.log]


def embeds(server: HTTPServer) -> list[dict[str, Any]]:
    return [e for body in posted(server) for e in body["embeds"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer(server: HTTPServer, status: int, body: bytes, headers: dict[str, str] | None = None):
    server.expect_request(PATH, method="POST").respond_with_data(
        body, status=status, headers=headers or {}
    )


@pytest.mark.parametrize("severity", list(Severity))
def test_embed_colour_follows_severity(discord, severity):
    assert notify(Alert("t", "m", severity, {"k": 1}), webhook_url=url(discord), cooldown=0)
    (body,) = posted(discord)
    assert body["username"] == "ia-continu"
    (embed,) = body["embeds"]
    assert embed["color"] == COLOURS[severity]
    assert embed["title"] == "t" and embed["fields"][0] == {
        "name": "k",
        "value": "1",
        "inline": True,
    }
    assert embed["footer"] == {"text": f"ia-continu · {severity.value}"}
    assert embed["timestamp"]


def test_colours_are_green_orange_red():
    assert {
        Severity.info: 0x28A745,
        Severity.warning: 0xFFA500,
        Severity.critical: 0xD73A49,
    } == COLOURS


def test_cooldown_makes_one_alert_per_incident(discord):
    sent = [
        notify(Alert("API down", "x", key="incident-1"), webhook_url=url(discord), cooldown=600)
        for _ in range(5)
    ]
    assert sent == [True, False, False, False, False]
    # Another incident is not silenced by the first one's cooldown.
    assert notify(Alert("Other", "y", key="incident-2"), webhook_url=url(discord), cooldown=600)
    assert [e["title"] for e in embeds(discord)] == ["API down", "Other"]


def test_webhook_and_cooldown_come_from_the_settings_given(discord):
    settings = Settings(
        environment="test", discord_webhook_url=url(discord), alert_cooldown_seconds=600
    )
    sent = [notify(Alert("From settings", "m", key="s"), settings) for _ in range(3)]
    assert sent == [True, False, False]
    assert [e["title"] for e in embeds(discord)] == ["From settings"]
    # An explicit cooldown wins over the settings' one.
    assert notify(Alert("From settings", "m", key="s"), settings, cooldown=0)
    assert len(posted(discord)) == 2


def test_unreachable_url_does_not_raise():
    assert (
        notify(Alert("t", "m"), webhook_url=f"http://127.0.0.1:{free_port()}/x", cooldown=0)
        is False
    )


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (
            400,
            b'{"message": "Invalid Form Body", "code": 50035}',
            {"Content-Type": "application/json"},
        ),
        (404, b"not found", {}),  # 4xx, non-JSON
        (500, b"<html>oops</html>", {"Content-Type": "text/html"}),
        (200, b"this is not json", {"Content-Type": "text/plain"}),
        (429, b"slow down", {}),  # without Discord's body or headers
    ],
    ids=["400-json", "404-text", "500", "200-non-json", "429-bare"],
)
def test_bad_answers_never_raise(httpserver, status, body, headers):
    answer(httpserver, status, body, headers)
    result = notify(Alert("t", "m"), webhook_url=url(httpserver), cooldown=0)
    assert posted(httpserver), "the request reached the server"
    # Discord's answer body is not read on success: 2xx is delivered, anything else is not.
    assert result is (status < 400)


def test_429_is_retried_once_after_retry_after(httpserver):
    # Discord's rate-limit answer: JSON body with retry_after, and the X-RateLimit headers.
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_json(
        {"message": "You are being rate limited.", "retry_after": 0.3, "global": False},
        status=429,
        headers={"X-RateLimit-Remaining": "0", "Retry-After": "1"},
    )
    httpserver.expect_request(PATH, method="POST").respond_with_data(b"", status=204)
    started = time.monotonic()
    assert notify(Alert("t", "m"), webhook_url=url(httpserver), cooldown=0) is True
    assert time.monotonic() - started >= 0.3  # the body's retry_after, not the header's 1 s
    assert len(posted(httpserver)) == 2


def test_429_for_ever_gives_up_instead_of_hanging(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"message": "rate limited", "retry_after": 0.05}, status=429
    )
    assert notify(Alert("t", "m"), webhook_url=url(httpserver), cooldown=0) is False
    assert len(posted(httpserver)) == 2


def test_a_long_retry_after_is_capped(httpserver):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"retry_after": 3600}, status=429
    )
    started = time.monotonic()
    assert send_discord(url(httpserver), Alert("t", "m"), max_retry_wait=0.2) is False
    assert time.monotonic() - started < 5
    assert len(posted(httpserver)) == 2


def test_no_url_logs_instead(caplog):
    caplog.set_level("WARNING", logger="ia_continu.alerts")
    assert notify(Alert("Logged only", "m", Severity.critical), Settings(environment="test"))
    assert "Logged only" in caplog.text


# --- secrets never logged ----------------------------------------------------------------------

TOKEN = "SECRETTOKEN-k3Jd9xQ2"


def test_failed_send_logs_nothing_of_the_webhook_token(caplog):
    url_ = f"http://127.0.0.1:{free_port()}/api/webhooks/123456/{TOKEN}"
    caplog.set_level("DEBUG")  # httpx and httpcore included
    assert notify(Alert("t", "m"), webhook_url=url_, cooldown=0) is False
    assert "discord alert dropped" in caplog.text
    assert TOKEN not in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(record.args)


def test_exception_texts_naming_the_url_are_redacted(caplog, monkeypatch):
    # An exception whose text quotes the URL, token included, as some of httpx's do.
    import httpx

    url_ = f"https://discord.com/api/webhooks/987654/{TOKEN}"

    def refuse(target: str, **_: Any) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {target}")

    monkeypatch.setattr(httpx, "post", refuse)
    caplog.set_level("WARNING")
    assert notify(Alert("t", "m"), webhook_url=url_, cooldown=0) is False
    assert "discord alert dropped (ConnectError" in caplog.text
    assert TOKEN not in caplog.text


def test_unexpected_error_traceback_is_redacted_too(caplog, monkeypatch):
    import notifications.discord as discord

    url_ = f"https://discord.com/api/webhooks/987654/{TOKEN}"

    def boom(target: str, alert: Alert, **_: Any) -> bool:
        raise RuntimeError(f"could not post to {target}")

    monkeypatch.setattr(discord, "send_discord", boom)
    caplog.set_level("WARNING")
    assert notify(Alert("t", "m"), webhook_url=url_, cooldown=0) is False
    assert "alert could not be delivered" in caplog.text and "Traceback" in caplog.text
    assert TOKEN not in caplog.text


def test_unregistered_discord_urls_and_url_passwords_are_masked_in_any_log_line(caplog):
    from ia_continu.redact import install_logging

    install_logging()
    caplog.set_level("INFO")
    log = logging.getLogger("some.library")
    log.info("posting to %s", "https://discordapp.com/api/v10/webhooks/42/tok-abcdefgh-123")
    log.info("db at postgresql+psycopg://ia:pg-pass-zz9@db:5432/x and redis://:r-pass-zz9@r:6379")
    try:
        raise ValueError("https://ptb.discord.com/api/webhooks/7/exc-token-zz9 refused")
    except ValueError:
        log.exception("failed")
    for secret in ("tok-abcdefgh-123", "pg-pass-zz9", "r-pass-zz9", "exc-token-zz9"):
        assert secret not in caplog.text, secret
    assert "postgresql+psycopg://ia:***@db:5432/x" in caplog.text


def test_uvicorn_access_records_keep_their_tuple_arguments(caplog):
    # uvicorn's access formatter unpacks record.args: redaction must keep their shape.
    from ia_continu.redact import install_logging

    install_logging()
    caplog.set_level("INFO", logger="uvicorn.access")
    path = f"/x?hook=https://discord.com/api/webhooks/1/{TOKEN}"
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200
    )
    (record,) = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert isinstance(record.args, tuple) and len(record.args) == 5 and record.args[4] == 200
    assert TOKEN not in record.getMessage()


def test_alert_texts_sent_to_discord_are_redacted(discord):
    alert = Alert(
        "Champion failed",
        "cannot reach postgresql+psycopg://ia:alert-pass-zz9@db/mlflow",
        Severity.critical,
        {"url": f"https://discord.com/api/webhooks/1/{TOKEN}"},
    )
    assert notify(alert, webhook_url=url(discord), cooldown=0)
    (embed,) = embeds(discord)
    text = str(embed)
    assert "alert-pass-zz9" not in text and TOKEN not in text
    assert "ia:***@db/mlflow" in embed["description"]


def test_blank_webhook_setting_means_no_discord(settings_factory):
    assert settings_factory(discord_webhook_url="").discord_webhook_url is None
    assert settings_factory(discord_webhook_url="   ").discord_webhook_url is None
