"""Receiving notes on Telegram: voice notes, audio files, round video notes, videos and audio
documents are fetched (bounded), analysed by the service and answered as a reply.

Notes longer than :data:`PROGRESS_AFTER_S` first get a "transcribing N s of audio…" message
that is then edited into the result; every note gets the "typing…" chat action while it is
worked on. Whether a delivery is new is the service's decision (:meth:`claim`); the limits
are :func:`bot.core.intake.precheck`'s; the refusal phrases :func:`bot.wording.error_reply`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import aiohttp
from telegram import Bot, Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError
from telegram.ext import filters
from telegram.warnings import PTBDeprecationWarning

from adapters.download import fetch_limited
from adapters.telegram.context import PLATFORM, VoicemoodContext, lang_of
from adapters.telegram.replies import reply
from adapters.telegram.texts import MESSAGE_LIMIT, utf16_len
from bot import wording
from bot.analysis import Sender
from bot.core.intake import DownloadFailed, DownloadTooLarge, precheck
from bot.core.long_reply import LongReply, fit_reply
from bot.core.pending import pending_notes
from bot.core.service import Claim
from bot.ops.logs import redact
from bot.ops.settings import Settings
from inference.errors import TooLarge, VoicemoodError

log = logging.getLogger(__name__)

#: Notes longer than this (seconds) get a visible "transcribing…" message first.
PROGRESS_AFTER_S = 15.0
#: The chat action shows for 5 s; renew it a little before it fades.
CHAT_ACTION_EVERY_S = 4.5
#: File name endings of documents we treat as audio even without an audio mime type.
AUDIO_EXTENSIONS = frozenset({
    ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wav", ".flac", ".webm", ".mp4",
    ".amr", ".3gp", ".aif", ".aiff", ".caf", ".wma", ".mka", ".weba", ".spx",
})


def is_audio_document(mime_type: str | None, file_name: str | None) -> bool:
    """Whether a document should be analysed: audio/video mime type or an audio file name."""
    mime = (mime_type or "").lower()
    if mime.startswith(("audio/", "video/")):
        return True
    return PurePosixPath((file_name or "").lower()).suffix in AUDIO_EXTENSIONS


class AudioDocument(filters.MessageFilter):
    """Documents that hold audio. Other documents fall through: a hint in private chats,
    nothing in groups (people share PDFs and photos there that were never meant for us)."""

    def filter(self, message: Message) -> bool:
        doc = message.document
        return doc is not None and is_audio_document(doc.mime_type, doc.file_name)


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
    if doc is not None and is_audio_document(doc.mime_type, doc.file_name):
        return Media("document", doc.file_id, doc.file_size, None)
    return None


async def on_media(update: Update, context: VoicemoodContext) -> None:
    """A voice note, audio file, video note, video or audio document: analyse and reply."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    await analyse_note(message, user.id, context, lang_of(user))


async def analyse_note(message: Message, sender_id: int, context: VoicemoodContext,
                       lang: str, *, answer_stored: bool = False) -> None:
    """Analyse the note in ``message`` into ``sender_id``'s history and reply to it in its
    chat (also for ``/mood``, where the person asking is not the note's sender, and where
    ``answer_stored`` repeats the stored analysis of a note analysed before)."""
    media = media_of(message)
    if media is None:  # the MEDIA filter lets only analysable messages through
        return
    settings = context.settings
    sender = Sender(PLATFORM, str(sender_id), str(message.chat_id), str(message.message_id))
    async with context.service.claim(sender) as claim:
        if not claim.new:
            # /mood asks for an answer: a note being analysed right now gets it when ready.
            stored = await claim.settled() if answer_stored else None
            if stored is not None:
                await reply(message, wording.format_analysis(stored, lang, "html"))
                return
            log.info("message %s in chat %s was handled before or is in hand: not answering "
                     "again", message.message_id, message.chat_id)
            return
        # Recorded before any work: if the process dies from here on, the next start
        # answers the note (bot/pending.py, adapters/telegram/pending.py).
        notes = pending_notes(context.service)
        await notes.record(sender, {"file_id": media.file_id, "kind": media.kind,
                                    "duration_s": media.duration_s}, lang)
        refusal = precheck(media.file_size, media.duration_s, settings,
                           download_limit=settings.telegram_max_download_bytes)
        if refusal is not None:
            await reply(message, wording.error_reply(refusal, lang, settings, "html"))
        else:
            await _analyse(message, media, claim, settings, lang)
        await notes.complete(sender)


async def _analyse(message: Message, media: Media, claim: Claim, settings: Settings,
                   lang: str) -> None:
    typing = asyncio.create_task(_keep_typing(message))
    progress: Message | None = None
    try:
        if media.duration_s is not None and media.duration_s > PROGRESS_AFTER_S:
            progress = await message.reply_text(wording.escape(wording.text(
                "working", lang, seconds=round(media.duration_s)), "html"), do_quote=True)
        text = await _result_html(message, media, claim, settings, lang)
    finally:
        typing.cancel()
    if text is None:  # another process answered it meanwhile: say nothing twice
        if progress is not None:
            with contextlib.suppress(TelegramError):
                await progress.delete()
        return
    if isinstance(text, str):
        await reply(message, text, edit=progress)
        return
    # A long transcript: pieces cut at sentence ends, or the start plus a .txt file.
    for i, piece in enumerate(text.messages):
        await reply(message, piece, edit=progress if i == 0 else None)
    if text.transcript_file is not None:
        await message.reply_document(text.transcript_file, filename=text.filename,
                                     do_quote=True)


async def _result_html(message: Message, media: Media, claim: Claim, settings: Settings,
                       lang: str) -> str | LongReply | None:
    """The reply for a note: the analysis, or the phrase for whatever stopped it."""
    try:
        data = await download(message.get_bot(), media, settings)
        analysis = await claim.analyze(data)
    except VoicemoodError as exc:
        log.info("refused a %s from user %s: %s", media.kind, claim.sender.user_id, exc.code)
        return wording.error_reply(exc, lang, settings, "html")
    except Exception as exc:  # the user gets an apology; the operator the traceback
        log.error("analysing a %s from user %s failed", media.kind, claim.sender.user_id,
                  exc_info=exc)
        return wording.error_reply(exc, lang, settings, "html")
    if analysis.duplicate:
        return None
    log.info("analysed a %s (%.1f s) from user %s in chat %s: %s", media.kind,
             analysis.duration_s, claim.sender.user_id, message.chat_id, analysis.label)
    return fit_reply(analysis, lang, "html", MESSAGE_LIMIT, utf16_len)


async def download(bot: Bot, media: Media, settings: Settings) -> bytes:
    """The file's bytes, never more than ``VOICEMOOD_MAX_AUDIO_BYTES`` of them."""
    limit = settings.telegram_max_download_bytes
    try:
        file = await bot.get_file(media.file_id)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise DownloadTooLarge("the Bot API refused the file", limit_bytes=limit) from None
        log.warning("getting the file of a %s failed: %s", media.kind, redact(str(exc)))
        raise DownloadFailed("getFile failed") from None
    except TelegramError as exc:
        log.warning("getting the file of a %s failed: %s", media.kind, redact(str(exc)))
        raise DownloadFailed("getFile failed") from None
    refusal = precheck(file.file_size, None, settings, download_limit=limit)
    if refusal is not None:
        raise refusal
    path = file.file_path or ""
    if urlsplit(path).scheme not in ("http", "https"):
        # A self-hosted Bot API server in --local mode hands out a path on this machine.
        return await asyncio.to_thread(_read_local, Path(path), settings.max_audio_bytes)
    # The URL holds the token: it stays out of every message (fetch_limited's included).
    async with aiohttp.ClientSession() as session:
        return await fetch_limited(session, path, max_bytes=settings.max_audio_bytes)


def _read_local(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise DownloadFailed(f"cannot read the local file: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise TooLarge(f"more than {max_bytes} bytes")
    return data


async def _keep_typing(message: Message) -> None:
    """Show "typing…" until cancelled (Telegram clears a chat action after 5 s)."""
    while True:
        try:
            await message.get_bot().send_chat_action(message.chat_id, ChatAction.TYPING)
        except TelegramError as exc:  # cosmetic: never fail a note over it
            log.debug("chat action failed: %s", exc)
        await asyncio.sleep(CHAT_ACTION_EVERY_S)
