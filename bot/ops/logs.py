"""Logging set-up, with secrets kept out of every line."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pydantic import SecretStr

_TOKEN_PATTERNS = [
    re.compile(r"\d{6,}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token (also inside URLs)
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack bot/user tokens
    re.compile(r"xapp-[A-Za-z0-9-]{10,}"),  # Slack app-level token
]


#: Libraries whose DEBUG lines carry message text or SQL arguments (transcripts): kept at
#: INFO or above by :func:`setup_logging`.
CONTENT_LOGGERS = ("telegram", "aiosqlite", "slack_sdk", "slack_bolt")

#: The configured secrets, redacted by value whatever they look like (longest first).
_SECRETS: list[str] = []


def add_secrets(*values: str | SecretStr | None) -> None:
    """Redact these exact values from every log line from now on (empty ones are skipped)."""
    for value in values:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text and text not in _SECRETS:
            _SECRETS.append(text)
    _SECRETS.sort(key=len, reverse=True)  # a token that contains another goes first


def add_secrets_from(settings: Any) -> None:
    """Redact every secret setting (each ``SecretStr`` field: bot tokens, signing secret)."""
    add_secrets(*(v for v in vars(settings).values() if isinstance(v, SecretStr)))


def redact(text: str) -> str:
    """Replace the configured secrets, and anything shaped like a Telegram or Slack token,
    with ``[redacted]``."""
    for secret in _SECRETS:
        text = text.replace(secret, "[redacted]")
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts tokens from the final message (libraries log request URLs with tokens)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts tokens from the whole formatted record, tracebacks included.

    Libraries log exceptions whose text holds request URLs (and so the Telegram token); the
    traceback is only formatted here, after every filter has run.
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", settings: Any = None) -> None:
    """Log to stderr at ``level``; quieten chatty libraries; redact tokens (by value, those
    of ``settings``)."""
    if settings is not None:
        add_secrets_from(settings)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL, which carries the Telegram token.
    for noisy in ("httpx", "httpcore", "faster_whisper", "jieba", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # At DEBUG these log what people said: python-telegram-bot every Bot API call with its
    # parameters (a reply's text), aiosqlite every statement with its arguments (the stored
    # transcript), slack_sdk/slack_bolt request and response bodies; also for people with
    # transcripts off. They never go below INFO, whatever VOICEMOOD_LOG_LEVEL says.
    floor = max(logging.INFO, root.level)
    for talkative in CONTENT_LOGGERS:
        logging.getLogger(talkative).setLevel(floor)
