"""The mood-journal operations every front end calls: export, weekly digest, privacy, and
whether a note in a group is analysed on arrival.

Front ends translate only: they pass the person's platform ids, the command's words and
language, and send back the plain-text replies (escaping them for their markup) or the
export file. Every decision -- defaults, validation, what each reply says -- is made here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.clock import Clock, SystemClock
from bot.journal.digest import (
    DEFAULT_MINUTE,
    DEFAULT_WEEKDAY,
    DigestRequest,
    DigestScheduler,
    DigestSender,
    DigestUsage,
    parse_digest,
    switched_on,
)
from bot.journal.export import ExportFile, open_export, parse_format
from bot.storage.journal import DigestSchedule
from bot.trend.summary import parse_period, zone_for
from bot.wording import human_bytes
from bot.wording.journal import journal_text, weekday_name

if TYPE_CHECKING:
    from bot.core.service import AnalysisService
    from bot.trend.summary import TrendReport


class ExportUsage(ValueError):
    """Bad ``/export`` arguments; the message is the reply."""


class Journal:
    """Export, digest and privacy for one service (one per front end is fine)."""

    def __init__(self, service: AnalysisService, clock: Clock | None = None) -> None:
        self.service = service
        self.settings = service.settings
        self.store = service.store
        self.prefs = service.store.journal
        self.clock = clock or SystemClock()

    # -- export -------------------------------------------------------------------------

    def export_args(self, args: Sequence[str], lang: str, cmd: str) -> tuple[str, int | None]:
        """``[csv|json] [days]`` in any order -> (format, days); :class:`ExportUsage`."""
        fmt, days = "csv", None
        try:
            for word in (a.strip() for a in args if a.strip()):
                if word[0].isdigit() and days is None:
                    days = parse_period(word)  # 30, 30d, 2w, as /trend takes them
                else:
                    fmt = parse_format(word)
        except ValueError:
            raise ExportUsage(journal_text("export_usage", lang, cmd=cmd)) from None
        return fmt, days

    @asynccontextmanager
    async def export(self, platform: str, user_id: str, fmt: str = "csv",
                     days: int | None = None) -> AsyncIterator[ExportFile]:
        """The person's export (see :func:`bot.journal.export.open_export`); ``ExportInProgress``
        while another of theirs runs."""
        async with open_export(self.store, platform, str(user_id), parse_format(fmt),
                               self.settings.tz, days, now=self.clock.now()) as exp:
            yield exp

    def export_caption(self, exp: ExportFile, lang: str) -> str:
        """The text sent with the file."""
        return journal_text("export_caption", lang, rows=exp.rows)

    def export_too_large(self, exp: ExportFile, limit: int, lang: str, cmd: str) -> str | None:
        """The refusal when the file exceeds the platform's upload ``limit`` (bytes)."""
        if exp.size <= limit:
            return None
        return journal_text("export_too_large", lang, size=human_bytes(exp.size),
                            limit=human_bytes(limit), cmd=cmd)

    # -- weekly digest ------------------------------------------------------------------

    async def digest(self, platform: str, user_id: str, chat_id: str, args: Sequence[str],
                     lang: str, cmd: str = "/digest") -> str:
        """Answer ``/digest [on [weekday] [HH:MM] | off | tz Zone]``.

        ``chat_id`` is where the digest will be delivered: the person's private chat.
        """
        try:
            request = parse_digest(args)
        except DigestUsage as exc:
            key = {"weekday": "digest_bad_weekday", "time": "digest_bad_time",
                   "tz": "digest_bad_tz"}.get(exc.code, "digest_usage")
            return journal_text(key, lang, cmd=cmd, value=exc.value)
        now = self.clock.now()
        current = await self.prefs.schedule(platform, user_id)
        if request.action == "status":
            if current is None or not current.enabled:
                return journal_text("digest_off_status", lang, cmd=cmd)
            return self._on_text("digest_on_status", current, lang, cmd)
        if request.action == "off":
            was_on = await self.prefs.switch_off(platform, user_id)
            return journal_text("digest_off" if was_on else "digest_was_off", lang)
        if request.action == "tz":
            assert request.tz is not None
            base = current or DigestSchedule(platform, str(user_id), str(chat_id),
                                             DEFAULT_WEEKDAY, DEFAULT_MINUTE, request.tz, lang)
            updated = replace(base, tz=request.tz, chat_id=str(chat_id), lang=lang)
            if updated.enabled:
                updated = switched_on(platform, user_id, chat_id, DigestRequest("on"), updated,
                                      request.tz, lang, now)
            await self.prefs.save_schedule(updated)
            reply = journal_text("digest_tz", lang, tz=request.tz)
            if updated.enabled:
                reply += " " + self._on_text("digest_on_status", updated, lang, cmd)
            return reply
        schedule = switched_on(platform, user_id, chat_id, request, current,
                               self.settings.tz, lang, now)
        await self.prefs.save_schedule(schedule)
        return self._on_text("digest_on", schedule, lang, cmd)

    def _on_text(self, key: str, s: DigestSchedule, lang: str, cmd: str) -> str:
        assert s.next_at is not None
        nxt = datetime.fromtimestamp(s.next_at, UTC).astimezone(zone_for(s.tz))
        return journal_text(key, lang, cmd=cmd, weekday=weekday_name(s.weekday, lang),
                            time=s.hhmm, tz=s.tz, next=nxt.strftime("%Y-%m-%d %H:%M"))

    def digest_text(self, report: TrendReport, lang: str) -> str:
        """The digest message: title and the 7-day summary (plain text)."""
        return f"{journal_text('digest_title', lang)}\n\n{report.text}"

    def scheduler(self, platform: str, sender: DigestSender,
                  clock: Clock | None = None) -> DigestScheduler:
        """The digest job of one front end (run it as a task beside the bot)."""
        return DigestScheduler(self.store, platform, sender, clock=clock or self.clock)

    # -- privacy ------------------------------------------------------------------------

    async def privacy(self, platform: str, user_id: str, args: Sequence[str], lang: str,
                      cmd: str = "/privacy", forget: str = "/forget") -> str:
        """Answer ``/privacy`` (what is kept) and ``/privacy transcripts off|on``."""
        words = [a.strip().lower() for a in args if a.strip()]
        if words:
            if len(words) != 2 or words[0] not in ("transcripts", "transcript", "转写") \
                    or words[1] not in ("on", "off"):
                return journal_text("privacy_usage", lang, cmd=cmd)
            keep = words[1] == "on"
            await self.prefs.set_keep_transcripts(platform, user_id, keep)
            return journal_text("privacy_on" if keep else "privacy_off", lang, forget=forget)
        keeps = await self.prefs.keeps_transcripts(platform, user_id)
        parts = [journal_text("privacy_kept", lang, transcript=journal_text(
            "privacy_with_transcript" if keeps else "privacy_no_transcript", lang))]
        days = int(getattr(self.settings, "retention_days", 0) or 0)
        parts.append(journal_text("privacy_retention", lang, days=days) if days
                     else journal_text("privacy_no_retention", lang))
        schedule = await self.prefs.schedule(platform, user_id)
        if schedule is not None and schedule.enabled:
            parts.append(journal_text("privacy_digest_on", lang,
                                      weekday=weekday_name(schedule.weekday, lang),
                                      time=schedule.hhmm, tz=schedule.tz))
        else:
            parts.append(journal_text("privacy_digest_off", lang))
        parts.append(journal_text("privacy_howto", lang, cmd=cmd, forget=forget))
        return "\n\n".join(parts)

    # -- on-demand analysis in groups ----------------------------------------------------

    def analyse_on_arrival(self, platform: str, shared: bool) -> bool:
        """Whether a note is analysed as soon as it arrives.

        ``shared``: posted in a group or channel rather than a private chat / DM. In
        ``ondemand`` mode (``TELEGRAM_GROUP_MODE`` / ``SLACK_CHANNEL_MODE``) such a note
        waits, undownloaded, until someone asks for it.
        """
        if not shared:
            return True
        mode = (self.settings.telegram_group_mode if platform == "telegram"
                else self.settings.slack_channel_mode)
        return mode != "ondemand"


