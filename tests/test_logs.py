"""bot.logs: no token reaches a log line, not even inside a traceback."""

from __future__ import annotations

import io
import logging

from bot.logs import RedactingFilter, RedactingFormatter, redact

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
    out = stream.getvalue()
    assert "RuntimeError" in out and "send failed" in out
    assert TG_TOKEN not in out and SLACK_TOKEN not in out
