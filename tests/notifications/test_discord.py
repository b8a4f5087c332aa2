"""notifications/: real HTTP to a local receiver standing in for Discord."""

from __future__ import annotations

import logging
import socket

import pytest

from notifications import Alert, Severity, notify, reset_cooldowns
from notifications.discord import COLOURS
from notifications.receiver import Reply, WebhookReceiver


@pytest.fixture
def receiver():
    reset_cooldowns()
    with WebhookReceiver() as r:
        yield r
    reset_cooldowns()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("severity", list(Severity))
def test_embed_colour_follows_severity(receiver, severity):
    assert notify(Alert("t", "m", severity, {"k": 1}), webhook_url=receiver.url, cooldown=0)
    (embed,) = receiver.embeds()
    assert embed["color"] == int(COLOURS[severity], 16)
    assert embed["title"] == "t" and embed["fields"][0] == {
        "name": "k",
        "value": "1",
        "inline": True,
    }


def test_colours_are_seed_001_green_orange_red():
    assert {
        Severity.info: "28a745",
        Severity.warning: "ffa500",
        Severity.critical: "d73a49",
    } == COLOURS


def test_cooldown_makes_one_alert_per_incident(receiver):
    sent = [
        notify(Alert("API down", "x", key="incident-1"), webhook_url=receiver.url, cooldown=600)
        for _ in range(5)
    ]
    assert sent == [True, False, False, False, False]
    # Another incident is not silenced by the first one's cooldown.
    assert notify(Alert("Other", "y", key="incident-2"), webhook_url=receiver.url, cooldown=600)
    assert [e["title"] for e in receiver.embeds()] == ["API down", "Other"]


def test_unreachable_url_does_not_raise():
    assert (
        notify(Alert("t", "m"), webhook_url=f"http://127.0.0.1:{free_port()}/x", cooldown=0)
        is False
    )


@pytest.mark.parametrize(
    "reply",
    [
        Reply(
            400,
            b'{"message": "Invalid Form Body", "code": 50035}',
            {"Content-Type": "application/json"},
        ),
        Reply(404, b"not found"),  # 4xx, non-JSON
        Reply(500, b"<html>oops</html>", {"Content-Type": "text/html"}),
        Reply(200, b"this is not json", {"Content-Type": "text/plain"}),
        Reply(429, b"slow down"),  # without Discord's headers
    ],
    ids=["400-json", "404-text", "500", "200-non-json", "429-bare"],
)
def test_bad_answers_never_raise(receiver, reply):
    receiver.reply = reply
    result = notify(Alert("t", "m"), webhook_url=receiver.url, cooldown=0)
    assert result in (True, False)  # 200 non-JSON may count as delivered; it must not raise
    assert receiver.received, "the request reached the receiver"
    if reply.status >= 400:
        assert result is False


def test_429_with_discord_headers_is_retried_once(receiver):
    # Discord's rate-limit answer: JSON body with retry_after and the X-RateLimit headers.
    limited = Reply(
        429,
        b'{"message": "You are being rate limited.", "retry_after": 0.05, "global": false}',
        {
            "Content-Type": "application/json",
            "Via": "1.1 google",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": "0.05",
            "Retry-After": "0.05",
        },
    )
    receiver.queue = [limited]
    assert notify(Alert("t", "m"), webhook_url=receiver.url, cooldown=0) is True
    assert len(receiver.received) == 2


def test_429_for_ever_gives_up_instead_of_hanging(receiver):
    # discord-webhook's own retry loops while the answer is 429: ours retries once.
    receiver.reply = Reply(
        429,
        b'{"message": "rate limited", "retry_after": 0.05}',
        {"Content-Type": "application/json", "Via": "1.1 google"},
    )
    assert notify(Alert("t", "m"), webhook_url=receiver.url, cooldown=0) is False
    assert len(receiver.received) == 2


def test_no_url_logs_instead(caplog, monkeypatch):
    monkeypatch.delenv("IA_CONTINU_DISCORD_WEBHOOK_URL", raising=False)
    from ia_continu.config import get_settings

    get_settings.cache_clear()
    caplog.set_level("WARNING", logger="ia_continu.alerts")
    assert notify(Alert("Logged only", "m", Severity.critical), cooldown=0)
    assert "Logged only" in caplog.text
    get_settings.cache_clear()


# --- secrets never logged ----------------------------------------------------------------------

TOKEN = "SECRETTOKEN-k3Jd9xQ2"


def test_failed_send_logs_nothing_of_the_webhook_token(caplog):
    # A webhook URL whose host refuses: requests' error text carries the whole URL.
    url = f"http://127.0.0.1:{free_port()}/api/webhooks/123456/{TOKEN}"
    caplog.set_level("DEBUG")  # urllib3 and discord-webhook included
    assert notify(Alert("t", "m"), webhook_url=url, cooldown=0) is False
    assert "discord alert dropped" in caplog.text
    assert "/api/webhooks/123456/***" in caplog.text, "the id stays, for debugging"
    assert TOKEN not in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(record.args)


def test_unexpected_error_traceback_is_redacted_too(caplog, monkeypatch):
    import notifications.discord as discord

    url = f"https://discord.com/api/webhooks/987654/{TOKEN}"

    def boom(url_: str, alert: Alert, **_) -> bool:
        raise RuntimeError(f"could not post to {url_}")

    monkeypatch.setattr(discord, "send_discord", boom)
    caplog.set_level("WARNING")
    assert notify(Alert("t", "m"), webhook_url=url, cooldown=0) is False
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


def test_alert_texts_sent_to_discord_are_redacted(receiver):
    alert = Alert(
        "Champion failed",
        "cannot reach postgresql+psycopg://ia:alert-pass-zz9@db/mlflow",
        Severity.critical,
        {"url": f"https://discord.com/api/webhooks/1/{TOKEN}"},
    )
    assert notify(alert, webhook_url=receiver.url, cooldown=0)
    (embed,) = receiver.embeds()
    text = str(embed)
    assert "alert-pass-zz9" not in text and TOKEN not in text
    assert "ia:***@db/mlflow" in embed["description"]


def test_blank_webhook_setting_means_no_discord(settings_factory):
    assert settings_factory(discord_webhook_url="").discord_webhook_url is None
    assert settings_factory(discord_webhook_url="   ").discord_webhook_url is None
