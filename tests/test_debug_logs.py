"""``VOICEMOOD_LOG_LEVEL=DEBUG`` shows our own detail, never a person's words.

At DEBUG, python-telegram-bot logs every Bot API call with its parameters (a reply's text
is the transcript), aiosqlite logs every statement with its arguments (the transcript
stored), and slack_sdk logs request bodies: also for people with ``/privacy transcripts
off``. ``setup_logging`` keeps those libraries at INFO or above whatever the level.
The real libraries run here: a real ``telegram.Bot`` against the fake Bot API on
127.0.0.1, a real history file.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.analysis import Sender
from bot.ops.logs import setup_logging
from bot.storage.history import HistoryStore
from tests.fake_telegram import FakeTelegram
from tests.test_store import make_analysis

TOKEN = "123456789:AAH-fake-token-for-voicemood-tests-0123456789"
#: A transcript no log line could contain by chance.
WORDS = "zebra-quartz-marmalade-4411 I have not told anyone about the divorce"


@pytest.fixture
def debug_logging() -> Iterator[io.StringIO]:
    """``setup_logging("DEBUG")`` for one test, its handler writing to the StringIO yielded
    (what would reach stderr); the logging configuration before it (pytest's capture
    handlers, every logger's level) is put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level
              for name in list(logging.root.manager.loggerDict)}
    setup_logging("DEBUG")
    out = io.StringIO()
    [ours] = root.handlers
    assert isinstance(ours, logging.StreamHandler)
    ours.setStream(out)
    try:
        yield out
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API, stopped at the end."""
    fake = FakeTelegram(TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_debug_logs_carry_no_transcript(
        tmp_path: Path, debug_logging: io.StringIO, telegram_api: FakeTelegram) -> None:
    logging.getLogger("bot.core.service").debug("our own debug line")

    store = await HistoryStore.open(tmp_path / "history.db")
    try:
        await store.add(Sender("telegram", "7", "42", "100"), make_analysis(transcript=WORDS))
        [stored] = await store.recent("telegram", "7")
    finally:
        await store.close()
    assert stored.transcript == WORDS

    bot = Bot(TOKEN, base_url=telegram_api.api_base,
              request=HTTPXRequest(connection_pool_size=2))
    async with bot:
        await bot.send_message(chat_id=42, text=f"Transcript (4.2 s, en):\n{WORDS}")
    assert [c.params["text"] for c in telegram_api.sent(42)] == [
        f"Transcript (4.2 s, en):\n{WORDS}"]

    err = debug_logging.getvalue()
    assert "DEBUG bot.core.service: our own debug line" in err  # DEBUG is really on
    assert "zebra-quartz" not in err
    # The libraries still speak at INFO and above.
    assert logging.getLogger("telegram").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("aiosqlite").getEffectiveLevel() == logging.INFO


def test_at_warning_the_quietened_libraries_follow_the_configured_level(
        debug_logging: io.StringIO) -> None:
    setup_logging("WARNING")
    for name in ("telegram", "aiosqlite", "slack_sdk", "slack_bolt"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
