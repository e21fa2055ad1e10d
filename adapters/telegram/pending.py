"""Answering, after a restart, the Telegram notes an earlier ``serve`` accepted and never
answered (see :mod:`bot.core.pending`): fetch the file again by its ``file_id``, analyse it, and
reply to the original message; an apology for notes too old to be worth it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from telegram import Bot, ReplyParameters

from adapters.telegram.context import PLATFORM
from adapters.telegram.texts import split_message
from bot import wording
from bot.core.pending import PendingNote, ResumeReport, pending_notes, resume

if TYPE_CHECKING:
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)


async def resume_telegram(bot: Bot, service: AnalysisService,
                          settings: Settings) -> ResumeReport:
    """Answer every Telegram note an earlier run left pending, exactly once."""
    from adapters.telegram.media import Media, download

    async def fetch(note: PendingNote) -> bytes:
        media = Media(note.ref.get("kind", "voice"), note.ref["file_id"], None,
                      note.ref.get("duration_s"))
        return await download(bot, media, settings)

    async def send(note: PendingNote, html_text: str) -> None:
        for piece in split_message(html_text):
            await bot.send_message(
                int(note.sender.chat_id), piece,
                reply_parameters=ReplyParameters(int(note.sender.message_id),
                                                 allow_sending_without_reply=True))

    async def answer(note: PendingNote, outcome: Any) -> None:
        if isinstance(outcome, BaseException):
            await send(note, wording.error_reply(outcome, note.lang, settings, "html"))
        else:
            await send(note, wording.format_analysis(outcome, note.lang, "html"))

    async def apologise(note: PendingNote) -> None:
        await send(note, wording.escape(wording.text("pending_too_old", note.lang), "html"))

    return await resume(pending_notes(service), service, PLATFORM, fetch=fetch, answer=answer,
                        apologise=apologise, max_age_s=settings.pending_max_age_s)
