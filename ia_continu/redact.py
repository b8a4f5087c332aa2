"""Secrets never reach a log line, an alert or an error text we build.

``redact(text)`` replaces with ``***``:

- every registered secret: the admin key, the Discord webhook URL and its token, the passwords
  of the configured database, MLflow and rate-limit store URLs (``register`` / ``protect``);
- any webhook token in a Discord-style path, ``.../api/webhooks/<id>/<token>``, whatever the
  host (Discord, discordapp, a proxy, the local receiver), so an unregistered URL is covered too;
- the password of any URL, ``scheme://user:password@host`` -> ``scheme://user:***@host``.

``protect(settings)`` registers the settings' secrets and installs the logging hook once per
process. The hook is a log-record factory, not only a handler filter: a filter on a handler
misses every handler added later (pytest's caplog, Prefect's, a user's logging config), while
the factory runs when *any* record is created, whichever logger or handler it goes to. A
``RedactingFilter`` is also put on the handlers that exist at that moment (root, uvicorn), as
a second line for records made by a factory someone installs after ours without chaining.

What it cannot do: a secret split across two log calls, or one re-encoded (base64, JSON
escapes) is not recognised; bare secrets shorter than ``MIN_SECRET_LENGTH`` are not registered
(they would blank common words out of every line) and rely on the URL patterns instead.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
MIN_SECRET_LENGTH = 8

# .../api/webhooks/<id>/<token> (also /api/v10/webhooks/...): keep the id, hide the token.
_WEBHOOK = re.compile(r"(/api/(?:v\d+/)?webhooks/[^/\s?#'\"]+/)([^/\s?#'\"]+)")
# scheme://user:password@host: hide the password, keep the user and host (useful to debug).
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"]*:)([^@\s/'\"]+)@")

_secrets: tuple[str, ...] = ()
_lock = threading.Lock()
_installed = False


def register(*secrets: str | None) -> None:
    """Add strings that must never be shown; short or empty ones are ignored."""
    global _secrets
    new = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
    if not new - set(_secrets):
        return
    with _lock:
        # Longest first, so a URL is replaced whole before its token alone.
        _secrets = tuple(sorted(set(_secrets) | new, key=len, reverse=True))


def url_secrets(url: str | None) -> list[str]:
    """The password of a URL, as written and decoded; the URL itself when it is a webhook."""
    if not url:
        return []
    found = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if parts.password:
        found += [parts.password, unquote(parts.password), quote(unquote(parts.password), safe="")]
    if _WEBHOOK.search(url):
        found.append(url)
        found.append(parts.path.rstrip("/").rsplit("/", 1)[-1])
    return found


def settings_secrets(settings: Any) -> list[str]:
    """Every secret a Settings object holds (duck-typed: this module imports no config)."""

    def plain(value: Any) -> str | None:
        if value is None:
            return None
        getter = getattr(value, "get_secret_value", None)
        return getter() if getter else str(value)

    found: list[str] = []
    key = plain(getattr(settings, "api_key", None))
    if key and key.strip():
        found.append(key)
    webhook = plain(getattr(settings, "discord_webhook_url", None))
    if webhook and webhook.strip():
        found.append(webhook)
        found += url_secrets(webhook)
    for name in ("database_url", "mlflow_tracking_uri", "rate_limit_storage_uri"):
        found += url_secrets(plain(getattr(settings, name, None)))
    return found


def redact(text: str) -> str:
    """``text`` with every known secret, webhook token and URL password replaced by ***."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if "webhooks/" in text:
        text = _WEBHOOK.sub(rf"\1{MASK}", text)
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
    return text


# --- logging ---------------------------------------------------------------------------------

_PLAIN_TYPES = (int, float, bool, type(None))


def _clean_arg(arg: Any) -> Any:
    # Keep the argument itself when it holds no secret: a "%d" or "%.2f" must still format,
    # and uvicorn's access formatter unpacks record.args as a tuple.
    if isinstance(arg, _PLAIN_TYPES):
        return arg
    try:
        text = arg if isinstance(arg, str) else str(arg)
    except Exception:
        return arg
    cleaned = redact(text)
    return arg if cleaned == text else cleaned


def scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record in place: message template, arguments, exception and stack text."""
    if getattr(record, "_ia_redacted", False):
        return record
    record._ia_redacted = True
    try:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        elif record.msg is not None and not isinstance(record.msg, _PLAIN_TYPES):
            # log.warning(exc): the message is an object whose str() may hold the secret.
            text = str(record.msg)
            cleaned = redact(text)
            if cleaned != text:
                record.msg = cleaned
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(_clean_arg(a) for a in args)
        elif isinstance(args, dict) and args:
            record.args = {k: _clean_arg(v) for k, v in args.items()}
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            cleaned = redact(text)
            if cleaned != text:
                # Formatter.format appends exc_text as it is; a handler rendering exc_info
                # itself (rich) would show the raw text, so the exception object goes. Without
                # a secret, nothing changes and the handler's own formatter does its work.
                record.exc_info = None
                record.exc_text = cleaned
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
    except Exception:  # logging must never fail because of the redaction
        pass
    return record


class RedactingFilter(logging.Filter):
    """A handler filter doing what the record factory does (cheap when it already ran)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


_FILTER = RedactingFilter("ia_continu.redact")


def install_logging(handler_loggers: Iterable[str] = ("", "uvicorn", "uvicorn.access")) -> None:
    """The record factory (once per process) and the filter on today's handlers."""
    global _installed
    with _lock:
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                return scrub(previous(*args, **kwargs))

            logging.setLogRecordFactory(factory)
            _installed = True
    handlers = [logging.lastResort] if logging.lastResort else []
    for name in handler_loggers:
        handlers += logging.getLogger(name).handlers
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def protect(settings: Any) -> None:
    """Register the secrets of ``settings`` and make sure the logging hook is installed."""
    register(*settings_secrets(settings))
    install_logging()


def redact_tree(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with ``redact`` applied to every string."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value
