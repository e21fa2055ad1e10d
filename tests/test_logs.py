"""bot.ops.logs: no token reaches a log line, not even inside a traceback."""

from __future__ import annotations

import io
import logging

from bot.ops.logs import RedactingFilter, RedactingFormatter, add_secrets_from, redact
from bot.ops.settings import Settings

TG_TOKEN = "123456789:AAHk3xYzSecretTokenValue0123456789abcd"
SLACK_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"


def test_redact_tokens() -> None:
    text = f"GET https://api.telegram.org/bot{TG_TOKEN}/getMe and {SLACK_TOKEN}"
    clean = redact(text)
    assert TG_TOKEN not in clean and SLACK_TOKEN not in clean
    assert clean.count("[redacted]") == 2


def test_tracebacks_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"request to /bot{TG_TOKEN}/sendMessage failed")
        except RuntimeError:
            log.exception("send failed for %s", SLACK_TOKEN)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    out = stream.getvalue()
    assert "RuntimeError" in out and "send failed" in out
    assert TG_TOKEN not in out and SLACK_TOKEN not in out


def test_configured_secrets_are_redacted_by_value_whatever_their_length() -> None:
    # Too short for the token patterns: only the configured values can catch these.
    settings = Settings(_env_file=None, telegram_bot_token="42:short",  # type: ignore[call-arg]
                        slack_bot_token="xoxb-9", slack_signing_secret="s1gn")
    add_secrets_from(settings)
    clean = redact("GET /bot42:short/getMe, Bearer xoxb-9, secret s1gn; 42:other stays")
    assert clean == ("GET /bot[redacted]/getMe, Bearer [redacted], secret [redacted]; "
                     "42:other stays")
