"""Receiving notes on Telegram: voice notes, audio files, round video notes, videos and audio
documents go to the one note use-case (:func:`bot.core.notes.handle`) through
:class:`~adapters.telegram.notes.TelegramNotePort`, and are answered as replies.

What happens to a note (allow-list, redeliveries, limits, progress message, long replies,
refusals) is decided there; this module only tells what a message holds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import timedelta

from telegram import Message, Update
from telegram.ext import filters
from telegram.warnings import PTBDeprecationWarning

from adapters.telegram.context import PLATFORM, VoicemoodContext, lang_of
from adapters.telegram.notes import TelegramNotePort
from bot.analysis import Sender
from bot.core.intake import is_audio
from bot.core.notes import Delivery, Note, handle


class AudioDocument(filters.MessageFilter):
    """Documents that hold audio. Other documents fall through: a hint in private chats,
    nothing in groups (people share PDFs and photos there that were never meant for us)."""

    def filter(self, message: Message) -> bool:
        doc = message.document
        return doc is not None and is_audio(doc.mime_type, doc.file_name)


#: Every message this module analyses.
MEDIA = filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE | filters.VIDEO | AudioDocument()


@dataclass(frozen=True)
class Media:
    """The analysable attachment of a message."""

    kind: str  # voice, audio, video_note, video, document
    file_id: str
    file_size: int | None
    duration_s: float | None


def _seconds(value: object) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) if isinstance(value, int | float) else None


def media_of(message: Message) -> Media | None:
    """The attachment to analyse, or None when the message holds nothing audio-like."""
    for kind in ("voice", "audio", "video_note", "video"):
        attachment = getattr(message, kind, None)
        if attachment is not None:
            with warnings.catch_warnings():
                # PTB 22 warns on reading int durations; we accept ints and timedeltas.
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                duration = _seconds(attachment.duration)
            return Media(kind, attachment.file_id, attachment.file_size, duration)
    doc = message.document
    if doc is not None and is_audio(doc.mime_type, doc.file_name):
        return Media("document", doc.file_id, doc.file_size, None)
    return None


async def on_media(update: Update, context: VoicemoodContext) -> None:
    """A voice note, audio file, video note, video or audio document: analyse and reply."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    await analyse_note(message, user.id, context, lang_of(user))


async def analyse_note(message: Message, sender_id: int, context: VoicemoodContext,
                       lang: str, *, requester: int | None = None) -> None:
    """Analyse the note in ``message`` into ``sender_id``'s history and reply to it in its
    chat. ``requester``: who asked with ``/mood`` (a note analysed before is then answered
    from the history, and one being analysed right now once it is ready)."""
    media = media_of(message)
    if media is None:  # the MEDIA filter lets only analysable messages through
        return
    note = Note(Sender(PLATFORM, str(sender_id), str(message.chat_id), str(message.message_id)),
                {"file_id": media.file_id, "kind": media.kind, "duration_s": media.duration_s},
                lang, size=media.file_size, duration_s=media.duration_s,
                requester=None if requester is None else str(requester))
    asked = requester is not None
    port = TelegramNotePort(message.get_bot(), context.settings, message.chat_id,
                            message.message_id)
    await handle(context.service, note, port,
                 Delivery(repeat_stored=asked, wait_in_flight=asked))
