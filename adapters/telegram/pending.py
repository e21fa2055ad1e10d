"""Answering, after a restart, the Telegram notes an earlier ``serve`` accepted and never
answered (see :mod:`bot.core.pending`): each goes through the one note use-case again with a
:class:`~adapters.telegram.notes.TelegramNotePort` replying to the original message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import Bot

from adapters.telegram.context import PLATFORM
from adapters.telegram.notes import TelegramNotePort
from bot.core.notes import Note
from bot.core.pending import PendingNote, ResumeReport, note_of, resume

if TYPE_CHECKING:
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings


async def resume_telegram(bot: Bot, service: AnalysisService,
                          settings: Settings) -> ResumeReport:
    """Answer every Telegram note an earlier run left pending, exactly once."""

    def port_for(pending: PendingNote) -> tuple[Note, TelegramNotePort]:
        sender = pending.sender
        return note_of(pending), TelegramNotePort(bot, settings, int(sender.chat_id),
                                                  int(sender.message_id))

    return await resume(service, PLATFORM, port_for, max_age_s=settings.pending_max_age_s)
