"""The weekly digest (bot/digest.py, bot/journal.py): schedules in a real SQLite file, a
fake clock moved by the test (no sleeping for a week), and a recording sender in place of
a platform. Telegram and Slack delivery are in tests/test_journal_telegram.py / _slack.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.journal.digest import DigestScheduler, RecipientGone, next_occurrence
from bot.journal.operations import Journal
from bot.storage.history import HistoryStore
from bot.storage.journal import DigestSchedule
from tests.conftest import make_settings
from tests.journal_seed import FakeClock, row, seed

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WEDNESDAY_NOON = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SUNDAY_7PM = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai
NEXT_SUNDAY_7PM = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)


def _at(day: int, hour: int = 2) -> float:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC).timestamp()


class Recorder:
    """Stands in for a front end: records digests, or fails as told."""

    def __init__(self) -> None:
        self.sent: list[tuple[DigestSchedule, object]] = []
        self.attempts = 0
        self.fail: list[BaseException] = []

    async def send_digest(self, schedule, report) -> None:
        self.attempts += 1
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((schedule, report))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "voicemood.db"


@pytest.fixture
async def open_journal(db: Path) -> AsyncIterator[Callable[[FakeClock], Awaitable[Journal]]]:
    """Opens a :class:`Journal` over ``db`` (once per simulated bot run); every store it
    opened is closed at teardown, after a failed assertion too: aiosqlite's thread is not a
    daemon, so a store left open would keep pytest from ever exiting."""
    stores: list[HistoryStore] = []

    async def open_(clock: FakeClock) -> Journal:
        store = await HistoryStore.open(db)
        stores.append(store)
        settings = make_settings(db.parent, tz="Asia/Shanghai")
        return Journal(SimpleNamespace(store=store, settings=settings), clock=clock)

    yield open_
    for store in stores:
        await store.close()  # a second close (the test closed it already) does nothing


async def _alice_notes(store: HistoryStore, days: tuple[int, ...] = (19, 20, 21)) -> None:
    await seed(store, [row("telegram", "1001", f"n{d}", _at(d), f"note on the {d}th",
                           "positive", valence=0.6) for d in days])


@pytest.fixture
async def running(open_journal):
    """Start ``DigestScheduler.run`` as a task; cancelled at the end of the test, before
    ``open_journal`` closes the stores the schedulers read."""
    tasks: list[asyncio.Task] = []

    def start(scheduler: DigestScheduler) -> asyncio.Task:
        tasks.append(asyncio.create_task(scheduler.run()))
        return tasks[-1]

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_digest_fires_at_its_local_time_and_only_then(open_journal, running):
    clock = FakeClock(WEDNESDAY_NOON)
    journal = await open_journal(clock)
    await _alice_notes(journal.store)
    reply = await journal.digest("telegram", "1001", "1001", ["on", "sun", "19:00"], "en")
    assert reply == ("Weekly digest on: every Sunday at 19:00 (Asia/Shanghai), starting "
                     "2026-11-22 19:00. Weeks without voice notes are skipped. /digest tz "
                     "Area/City changes the time zone.")
    sender = Recorder()
    running(journal.scheduler("telegram", sender))
    await clock.settled()
    await clock.advance(datetime(2026, 11, 22, 10, 59, tzinfo=UTC))  # 18:59 local
    await clock.settled()
    assert sender.sent == []

    await clock.advance(SUNDAY_7PM)
    await clock.settled()
    [(schedule, report)] = sender.sent
    assert (schedule.user_id, schedule.chat_id) == ("1001", "1001")
    assert (report.notes, report.days, report.start, report.end) == (
        3, 7, date(2026, 11, 16), date(2026, 11, 22))
    assert report.png[:8] == PNG_MAGIC
    assert report.text.startswith("Your mood, last 7 days (Nov 16 - Nov 22, Asia/Shanghai)\n"
                                  "3 notes, 0.2 min in total.")
    stored = await journal.store.journal.schedule("telegram", "1001")
    assert stored.next_at == NEXT_SUNDAY_7PM.timestamp()

    await clock.advance(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))
    await clock.settled()
    assert len(sender.sent) == 1


async def test_schedule_survives_restart_and_a_missed_digest_goes_out_once(open_journal, running):
    clock = FakeClock(WEDNESDAY_NOON)
    journal = await open_journal(clock)
    await _alice_notes(journal.store)
    await journal.digest("telegram", "1001", "1001", ["on", "sun", "19:00"], "en")
    await journal.store.close()  # the bot goes down before Sunday...

    # ...and comes back on Monday 10:00 local, 15 hours after the digest was due.
    await clock.advance(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    journal = await open_journal(clock)
    sender = Recorder()
    task = running(journal.scheduler("telegram", sender))
    await clock.settled()
    assert len(sender.sent) == 1
    await clock.advance(datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
    await clock.settled()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await journal.store.close()

    journal = await open_journal(clock)  # another restart: nothing is sent twice
    running(journal.scheduler("telegram", sender))
    await clock.settled()
    assert len(sender.sent) == 1


async def test_a_day_late_is_skipped_and_next_week_still_comes(open_journal):
    clock = FakeClock(WEDNESDAY_NOON)
    journal = await open_journal(clock)
    await _alice_notes(journal.store, days=(19, 20, 25))
    await journal.digest("telegram", "1001", "1001", ["on"], "en")  # Sunday 19:00 default
    sender = Recorder()
    scheduler = journal.scheduler("telegram", sender)

    await clock.advance(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))  # exactly 24 h late
    assert await scheduler.run_due() == {"1001": "late"}
    assert sender.attempts == 0
    await clock.advance(datetime(2026, 11, 29, 10, 59, tzinfo=UTC))
    assert await scheduler.run_due() == {}
    await clock.advance(NEXT_SUNDAY_7PM)
    assert await scheduler.run_due() == {"1001": "sent"}
    assert sender.sent[0][1].notes == 1  # only the 25th lies in Nov 23 – Nov 29


async def test_nothing_is_sent_for_a_week_without_notes(open_journal):
    clock = FakeClock(WEDNESDAY_NOON)
    journal = await open_journal(clock)
    await _alice_notes(journal.store, days=(10, 14))  # both before Nov 16
    await journal.digest("telegram", "1001", "1001", ["on"], "en")
    await journal.digest("telegram", "1002", "1002", ["on"], "en")  # Bob has no notes at all
    sender = Recorder()
    scheduler = journal.scheduler("telegram", sender)
    await clock.advance(SUNDAY_7PM)
    assert await scheduler.run_due() == {"1001": "empty", "1002": "empty"}
    assert sender.attempts == 0
    # Moved on to next week, not retried every minute.
    assert await scheduler.run_due() == {}
    bob = await journal.store.journal.schedule("telegram", "1002")
    assert (bob.enabled, bob.next_at) == (True, NEXT_SUNDAY_7PM.timestamp())


async def test_a_blocked_person_is_switched_off_and_never_retried(open_journal):
    clock = FakeClock(WEDNESDAY_NOON)
    journal = await open_journal(clock)
    await _alice_notes(journal.store, days=(19, 20, 21, 24, 25))
    await journal.digest("telegram", "1001", "1001", ["on"], "en")
    sender = Recorder()
    sender.fail = [RecipientGone("blocked")]
    scheduler = journal.scheduler("telegram", sender)
    await clock.advance(SUNDAY_7PM)
    assert await scheduler.run_due() == {"1001": "gone"}
    await clock.advance(NEXT_SUNDAY_7PM)
    assert await scheduler.run_due() == {}
    assert sender.attempts == 1
    assert await journal.digest("telegram", "1001", "1001", [], "en") == (
        "Your weekly digest is off. Turn it on with /digest on [weekday] [HH:MM], e.g. "
        "/digest on sun 19:00.")


async def test_a_passing_failure_is_tried_again(open_journal):
    clock = FakeClock(WEDNESDAY_NOON)
    journal = await open_journal(clock)
    await _alice_notes(journal.store)
    await journal.digest("telegram", "1001", "1001", ["on"], "en")
    sender = Recorder()
    sender.fail = [ConnectionError("network down")]
    scheduler = journal.scheduler("telegram", sender)
    await clock.advance(SUNDAY_7PM)
    assert await scheduler.run_due() == {"1001": "failed"}
    await clock.advance(datetime(2026, 11, 22, 11, 1, tzinfo=UTC))
    assert await scheduler.run_due() == {"1001": "sent"}


async def test_digest_command_replies(open_journal):
    clock = FakeClock(WEDNESDAY_NOON)
    journal = await open_journal(clock)

    async def say(*args: str, lang: str = "en") -> str:
        return await journal.digest("telegram", "1001", "1001", list(args), lang)

    assert await say("off") == "Your weekly digest was already off."
    assert await say("tz", "Europe/Berlin") == "Digest time zone set to Europe/Berlin."
    assert await say("on", "18:30", "mon") == (
        "Weekly digest on: every Monday at 18:30 (Europe/Berlin), starting 2026-11-23 18:30. "
        "Weeks without voice notes are skipped. /digest tz Area/City changes the time zone.")
    assert await say() == ("Your weekly digest comes every Monday at 18:30 (Europe/Berlin); "
                           "the next one is due 2026-11-23 18:30. /digest off stops it.")
    assert await say("tz", "Asia/Shanghai") == (
        "Digest time zone set to Asia/Shanghai. Your weekly digest comes every Monday at "
        "18:30 (Asia/Shanghai); the next one is due 2026-11-23 18:30. /digest off stops it.")
    assert await say(lang="zh") == ("每周摘要：每周一 18:30（Asia/Shanghai），下一次在 "
                                    "2026-11-23 18:30。/digest off 可关闭。")
    assert await say("on", "someday") == (
        "I don't know the day 'someday'. Use mon, tue, wed, thu, fri, sat or sun.")
    assert await say("on", "25:00") == (
        "I don't understand the time '25:00'. Use 24-hour HH:MM, e.g. 19:00.")
    assert await say("tz", "Mars/Olympus") == (
        "I don't know the time zone 'Mars/Olympus'. Use a name like Asia/Shanghai or "
        "Europe/Berlin.")
    assert await say("sometimes") == (
        "Use /digest on [weekday] [HH:MM], /digest off, /digest tz Area/City, or /digest "
        "alone to see your setting.")
    assert await say("off") == "Weekly digest off."


def test_local_time_holds_across_a_dst_change():
    # Europe/Berlin leaves summer time on Sunday 2026-10-25.
    before = next_occurrence(6, 19 * 60, "Europe/Berlin", datetime(2026, 10, 17, tzinfo=UTC))
    after = next_occurrence(6, 19 * 60, "Europe/Berlin", before)
    assert before.astimezone(UTC) == datetime(2026, 10, 18, 17, 0, tzinfo=UTC)
    assert after.astimezone(UTC) == datetime(2026, 10, 25, 18, 0, tzinfo=UTC)
