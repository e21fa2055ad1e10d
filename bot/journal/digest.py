"""The opt-in weekly digest: when it is due, and the job that sends it.

A person turns it on with a weekday and a local time (default Sunday 19:00) in a time zone
(default ``VOICEMOOD_TZ``). The schedule lives in SQLite (:mod:`bot.storage.journal`) with
the unix time of the next digest, so it survives restarts.

:class:`DigestScheduler` runs per platform. Each pass takes the schedules that are due:

* **Late by a day or more** (the bot was down): skipped, moved to the next week.
  Less late: sent now -- so a digest missed while the bot was down is sent once on start.
  However many weeks were missed, at most one digest goes out, judged by the latest
  missed time.
* **No notes in the last 7 days**: nothing is sent; moved to the next week.
* **The person blocked the bot** (the platform's sender raises :class:`RecipientGone`):
  switched off, never retried.
* **Any other failure** (network, rate limit): the schedule stays due and the next pass
  tries again, which the one-day rule bounds.

Time comes from a :class:`~bot.clock.Clock`, so tests move it a week forward at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from bot.clock import Clock, SystemClock
from bot.storage.journal import DigestSchedule
from bot.trend.summary import build_trend, zone_for

if TYPE_CHECKING:
    from bot.storage.history import HistoryStore
    from bot.trend.summary import TrendReport

log = logging.getLogger(__name__)

DEFAULT_WEEKDAY = 6  # Sunday
DEFAULT_MINUTE = 19 * 60
#: A digest this late (seconds) or later is skipped instead of sent.
LATE_LIMIT_S = 24 * 3600.0
#: The digest covers this many calendar days, today included.
DIGEST_DAYS = 7
#: The scheduler looks for due digests at least this often (seconds), so a schedule set
#: while it sleeps is picked up within a minute.
POLL_S = 60.0

_WEEKDAYS: dict[str, int] = {}
for _i, _names in enumerate((
    ("mon", "monday", "周一", "星期一"), ("tue", "tues", "tuesday", "周二", "星期二"),
    ("wed", "wednesday", "周三", "星期三"), ("thu", "thur", "thurs", "thursday", "周四", "星期四"),
    ("fri", "friday", "周五", "星期五"), ("sat", "saturday", "周六", "星期六"),
    ("sun", "sunday", "周日", "周天", "星期日", "星期天"),
)):
    for _name in _names:
        _WEEKDAYS[_name] = _i

Action = Literal["status", "on", "off", "tz"]
Outcome = Literal["sent", "empty", "late", "gone", "failed"]


class DigestUsage(ValueError):
    """A ``/digest`` argument that makes no sense; ``code`` picks the reply."""

    def __init__(self, code: str, value: str = "") -> None:
        super().__init__(f"{code}: {value}")
        self.code = code
        self.value = value


class RecipientGone(Exception):
    """The person cannot be written to any more (blocked the bot, left, account closed)."""


class DigestSender(Protocol):
    """The front end's half: deliver one digest privately."""

    async def send_digest(self, schedule: DigestSchedule, report: TrendReport) -> None:
        """Send ``report`` (``.text``, ``.png`` may be None) to ``schedule.chat_id``.

        Raises :class:`RecipientGone` when the person blocked the bot.
        """
        ...


@dataclass(frozen=True)
class DigestRequest:
    """A parsed ``/digest`` command."""

    action: Action
    weekday: int | None = None
    minute: int | None = None
    tz: str | None = None


def parse_digest(args: Sequence[str]) -> DigestRequest:
    """``[]`` status; ``on [weekday] [HH:MM]`` (either order); ``off``; ``tz Zone``.

    Raises :class:`DigestUsage` (code ``usage``, ``weekday``, ``time`` or ``tz``).
    """
    words = [a.strip() for a in args if a.strip()]
    if not words or words[0].lower() in ("status", "状态"):
        return DigestRequest("status")
    head, rest = words[0].lower(), words[1:]
    if head in ("off", "stop", "关", "关闭"):
        return DigestRequest("off")
    if head == "tz":
        if len(rest) != 1:
            raise DigestUsage("usage")
        try:
            zone = zone_for(rest[0])
        except ValueError:
            raise DigestUsage("tz", rest[0]) from None
        return DigestRequest("tz", tz=zone.key)
    if head not in ("on", "start", "开", "开启"):
        raise DigestUsage("usage", words[0])
    weekday = minute = None
    for word in rest:
        if ":" in word or "：" in word:
            if minute is not None:
                raise DigestUsage("usage", word)
            minute = _parse_time(word)
        elif word.lower() in _WEEKDAYS:
            if weekday is not None:
                raise DigestUsage("usage", word)
            weekday = _WEEKDAYS[word.lower()]
        else:
            raise DigestUsage("weekday", word)
    return DigestRequest("on", weekday=weekday, minute=minute)


def _parse_time(word: str) -> int:
    hours, _, minutes = word.replace("：", ":").partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise DigestUsage("time", word)
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise DigestUsage("time", word)
    return h * 60 + m


def _local_slot(day: datetime, minute: int) -> datetime:
    return day.replace(hour=minute // 60, minute=minute % 60, second=0, microsecond=0)


def next_occurrence(weekday: int, minute: int, tz: str, after: datetime) -> datetime:
    """The first ``weekday`` at ``minute`` past local midnight in ``tz`` strictly after
    ``after`` (aware). Wall-clock time: 19:00 stays 19:00 across DST changes."""
    zone = zone_for(tz)
    local = after.astimezone(zone)
    for days in range(8):
        day = local + timedelta(days=days)
        if day.weekday() != weekday:
            continue
        slot = _local_slot(day, minute)
        if slot.timestamp() > after.timestamp():
            return slot
    raise AssertionError("a weekday recurs within 8 days")  # pragma: no cover


def latest_occurrence(weekday: int, minute: int, tz: str, at: datetime) -> datetime:
    """The last ``weekday`` at ``minute`` in ``tz`` at or before ``at``."""
    zone = zone_for(tz)
    local = at.astimezone(zone)
    for days in range(8):
        day = local - timedelta(days=days)
        if day.weekday() != weekday:
            continue
        slot = _local_slot(day, minute)
        if slot.timestamp() <= at.timestamp():
            return slot
    raise AssertionError("a weekday recurs within 8 days")  # pragma: no cover


def switched_on(platform: str, user_id: str, chat_id: str, request: DigestRequest,
                current: DigestSchedule | None, default_tz: str, lang: str,
                now: datetime) -> DigestSchedule:
    """The schedule after ``/digest on …``: given fields win, then the current ones, then
    the defaults (Sunday 19:00 in ``default_tz``)."""
    weekday = request.weekday if request.weekday is not None else (
        current.weekday if current else DEFAULT_WEEKDAY)
    minute = request.minute if request.minute is not None else (
        current.minute if current else DEFAULT_MINUTE)
    tz = current.tz if current else zone_for(default_tz).key
    nxt = next_occurrence(weekday, minute, tz, now)
    return DigestSchedule(platform, str(user_id), str(chat_id), weekday, minute, tz, lang,
                          enabled=True, next_at=nxt.timestamp())


class DigestScheduler:
    """Sends the due digests of one platform; :meth:`run` until cancelled."""

    def __init__(self, store: HistoryStore, platform: str, sender: DigestSender, *,
                 clock: Clock | None = None, poll_s: float = POLL_S) -> None:
        self.store = store
        self.journal = store.journal
        self.platform = platform
        self.sender = sender
        self.clock = clock or SystemClock()
        self.poll_s = poll_s

    async def run(self) -> None:
        """Send what is due now (catching up after a restart), then keep watching."""
        while True:
            wait = self.poll_s
            try:
                await self.run_due()
                due = await self.journal.next_due_at(self.platform)
                if due is not None:
                    wait = min(wait, max(0.0, due - self.clock.now().timestamp()))
            except Exception:  # the database was busy: try again at the next poll
                log.exception("digest pass failed")
            # Never spin: a due digest that keeps failing waits a second between tries.
            await self.clock.sleep(max(wait, 1.0))

    async def run_due(self) -> dict[str, Outcome]:
        """One pass over the due digests; returns what happened per user id."""
        now = self.clock.now()
        outcomes: dict[str, Outcome] = {}
        for schedule in await self.journal.due(self.platform, now.timestamp()):
            outcomes[schedule.user_id] = await self._one(schedule, now)
        return outcomes

    async def _one(self, s: DigestSchedule, now: datetime) -> Outcome:
        latest = latest_occurrence(s.weekday, s.minute, s.tz, now)
        following = next_occurrence(s.weekday, s.minute, s.tz, now).timestamp()
        if (now - latest).total_seconds() >= LATE_LIMIT_S:
            log.info("digest for a %s user is %.0f h late: skipped", s.platform,
                     (now - latest).total_seconds() / 3600)
            await self.journal.set_next(s.platform, s.user_id, following)
            return "late"
        report = await build_trend(self.store, s.platform, s.user_id, days=DIGEST_DAYS,
                                   tz=s.tz, lang=s.lang, now=now)
        if report.notes == 0:
            await self.journal.set_next(s.platform, s.user_id, following)
            return "empty"
        try:
            await self.sender.send_digest(s, report)
        except RecipientGone:
            log.info("a %s user blocked the bot: weekly digest switched off", s.platform)
            await self.journal.switch_off(s.platform, s.user_id)
            return "gone"
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sending a weekly digest failed; will try again")
            return "failed"
        await self.journal.set_next(s.platform, s.user_id, following)
        return "sent"
