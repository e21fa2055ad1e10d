"""The mood-journal commands on Telegram, translated to :class:`bot.journal.operations.Journal`:

* ``/export [csv|json] [days]`` -- the person's history as a document, privately.
* ``/digest [on [weekday] [HH:MM] | off | tz Zone]`` -- the weekly digest, which
  :class:`TelegramDigests` delivers to the private chat (summary, then chart).
* ``/privacy [transcripts off|on]`` -- what is kept.
* ``/mood`` as a reply to a voice note -- analyse that note now (stored under the note's
  sender, answered in its chat). With ``TELEGRAM_GROUP_MODE=ondemand`` it is the only way a
  note in a group is analysed: group notes are not even downloaded until then.

In groups the answers to /export, /digest and /privacy go to the person's private chat,
as /history does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from telegram import Bot, BotCommand, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, CommandHandler, MessageHandler, filters

from adapters.telegram import media
from adapters.telegram.context import PLATFORM, VoicemoodContext, lang_of
from adapters.telegram.replies import is_group, reply_plain, send_to_user
from adapters.telegram.texts import phrase, split_message
from bot import wording
from bot.clock import Clock
from bot.journal.digest import RecipientGone
from bot.journal.export import ExportInProgress
from bot.journal.operations import ExportUsage, Journal
from bot.wording.journal import journal_text

if TYPE_CHECKING:
    from bot.storage.journal import DigestSchedule
    from bot.trend.summary import TrendReport

log = logging.getLogger(__name__)

#: The Bot API's limit for documents a bot uploads.
DOCUMENT_LIMIT = 50 * 1024 * 1024
#: Commands this module adds to the "/" menu.
MENU = ("export", "digest", "privacy", "mood")


def register(app: Application[Any, Any, Any, Any, Any, Any], clock: Clock | None = None
             ) -> None:
    """Add the journal's handlers; call before the media and catch-all handlers, so group
    notes and these commands reach this module first."""
    app.bot_data["journal"] = Journal(app.bot_data["service"], clock)
    app.add_handler(CommandHandler("export", on_export))
    app.add_handler(CommandHandler("digest", on_digest))
    app.add_handler(CommandHandler("privacy", on_privacy))
    app.add_handler(CommandHandler("mood", on_mood))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & ~filters.ChatType.PRIVATE
                                   & media.MEDIA, on_group_note))


def menu(lang: str) -> list[BotCommand]:
    """This module's entries of the "/" menu."""
    return [BotCommand(name, journal_text(f"cmd_{name}", lang)) for name in MENU]


def _journal(context: VoicemoodContext) -> Journal:
    return context.bot_data["journal"]


async def on_group_note(update: Update, context: VoicemoodContext) -> None:
    """A note in a group: analysed now, or (on-demand mode) left alone until /mood."""
    if _journal(context).analyse_on_arrival(PLATFORM, shared=True):
        await media.on_media(update, context)


async def on_mood(update: Update, context: VoicemoodContext) -> None:
    """/mood in reply to a note: analyse that note for its sender, answer in this chat."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    lang = lang_of(user)
    note = message.reply_to_message
    if note is None or media.media_of(note) is None or note.from_user is None:
        await reply_plain(message, journal_text("mood_hint", lang, cmd="/mood"))
        return
    # The allow-list applies to the note's sender, not only to whoever asked (bot.core.notes).
    await media.analyse_note(note, note.from_user.id, context, lang, requester=user.id)


async def on_digest(update: Update, context: VoicemoodContext) -> None:
    """/digest [on [weekday] [HH:MM] | off | tz Zone]: the weekly digest setting."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    text = await _journal(context).digest(PLATFORM, str(user.id), str(user.id),
                                          context.args or [], lang_of(user))
    await send_to_user(update, wording.escape(text, "html"), "/digest")


async def on_privacy(update: Update, context: VoicemoodContext) -> None:
    """/privacy [transcripts off|on]: what is kept about the person."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    text = await _journal(context).privacy(PLATFORM, str(user.id), context.args or [],
                                           lang_of(user))
    await send_to_user(update, wording.escape(text, "html"), "/privacy")


async def on_export(update: Update, context: VoicemoodContext) -> None:
    """/export [csv|json] [days]: the person's history as a document, privately."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    lang = lang_of(user)
    journal = _journal(context)
    try:
        fmt, days = journal.export_args(context.args or [], lang, "/export")
    except ExportUsage as exc:
        await reply_plain(message, str(exc))
        return
    try:
        async with journal.export(PLATFORM, str(user.id), fmt, days) as exp:
            if exp.rows == 0:
                await send_to_user(update, wording.escape(
                    journal_text("export_empty", lang), "html"), "/export")
                return
            too_large = journal.export_too_large(exp, DOCUMENT_LIMIT, lang, "/export")
            if too_large is not None:
                await reply_plain(message, too_large)
                return
            # PTB uploads from memory anyway; the file is at most DOCUMENT_LIMIT.
            data = await asyncio.to_thread(exp.file.read)
            await _send_document(update, data, exp.filename,
                                 wording.escape(journal.export_caption(exp, lang), "html"))
    except ExportInProgress:
        await reply_plain(message, journal_text("export_running", lang))


async def _send_document(update: Update, data: bytes, filename: str, caption: str) -> None:
    """The document goes here in a private chat, to the private chat from a group."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    if not is_group(update):
        await message.reply_document(data, filename=filename, caption=caption, do_quote=True)
        return
    bot = message.get_bot()
    try:
        await bot.send_document(user.id, data, filename=filename, caption=caption)
    except (Forbidden, BadRequest) as exc:
        log.info("cannot send the export to user %s privately: %s", user.id, exc)
        await reply_plain(message, phrase("private_needed", lang_of(user),
                                          bot=bot.username or "", command="/export"))
        return
    await reply_plain(message, phrase("sent_privately", lang_of(user)))


class TelegramDigests:
    """Delivers weekly digests through ``bot`` (the :class:`~bot.journal.digest.DigestSender`)."""

    def __init__(self, bot: Bot, journal: Journal) -> None:
        self.bot = bot
        self.journal = journal

    async def send_digest(self, schedule: DigestSchedule, report: TrendReport) -> None:
        """The summary, then the chart, to the person's private chat."""
        text = wording.escape(self.journal.digest_text(report, schedule.lang), "html")
        try:
            for piece in split_message(text):
                await self.bot.send_message(int(schedule.chat_id), piece)
            if report.png is not None:
                await self.bot.send_photo(int(schedule.chat_id), report.png)
        except Forbidden as exc:  # blocked the bot, or deleted their account
            raise RecipientGone(str(exc)) from None
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                raise RecipientGone(str(exc)) from None
            raise


def start_digests(app: Application[Any, Any, Any, Any, Any, Any]) -> asyncio.Task[None]:
    """Run the weekly digests of this bot as a task (cancel it to stop)."""
    journal: Journal = app.bot_data["journal"]
    scheduler = journal.scheduler(PLATFORM, TelegramDigests(app.bot, journal))
    return asyncio.create_task(scheduler.run(), name="telegram:digests")

