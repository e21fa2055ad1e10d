"""Telegram's side of the one note use-case (:mod:`bot.core.notes`): fetching a note's file
(bounded) and answering as replies to its message, live and after a restart alike.

A port holds only the bot and the note's chat and message id, so the restart sweep
(:mod:`adapters.telegram.pending`) answers exactly as a live delivery does: the progress
message edited into the result, long transcripts as pieces or the start plus a ``.txt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from telegram import Bot, Message, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from adapters.download import fetch_limited
from adapters.telegram.replies import send_reply
from adapters.telegram.texts import MESSAGE_LIMIT, utf16_len
from bot.core.intake import DownloadFailed, DownloadTooLarge, precheck
from bot.core.long_reply import LongReply
from bot.core.notes import Note
from bot.ops.logs import redact
from bot.ops.settings import Settings
from bot.wording import Markup
from inference.errors import TooLarge

log = logging.getLogger(__name__)

#: The chat action shows for 5 s; renew it a little before it fades.
CHAT_ACTION_EVERY_S = 4.5


class TelegramNotePort:
    """The :class:`~bot.core.notes.NotePort` for a note in message ``message_id`` of
    ``chat_id``: every answer is a reply to that message, in HTML."""

    markup: Markup = "html"
    message_limit = MESSAGE_LIMIT
    shows_typing = True
    answers_in_spoken_language = False

    def __init__(self, bot: Bot, settings: Settings, chat_id: int, message_id: int) -> None:
        self.bot = bot
        self.settings = settings
        self.chat_id = chat_id
        self.message_id = message_id
        self.download_limit: int | None = settings.telegram_max_download_bytes

    def measure(self, text: str) -> int:
        """Telegram counts UTF-16 code units."""
        return utf16_len(text)

    async def fetch(self, note: Note) -> bytes:
        """The file of ``note.ref["file_id"]``."""
        return await download(self.bot, note.ref["file_id"], self.settings,
                              kind=str(note.ref.get("kind") or "voice"))

    async def send(self, text: str, *, edit: Any = None) -> None:
        """A reply to the note (the progress message ``edit`` turned into it)."""
        await send_reply(self.bot, self.chat_id, self.message_id, text, edit=edit)

    async def send_analysis(self, reply: LongReply, *, again: bool, edit: Any = None) -> None:
        """The pieces as replies (the first replacing the progress message), then the file."""
        for i, piece in enumerate(reply.messages):
            await self.send(piece, edit=edit if i == 0 else None)
        if reply.transcript_file is not None:
            await self.bot.send_document(self.chat_id, reply.transcript_file,
                                         filename=reply.filename,
                                         reply_parameters=self._reply_to())

    async def notice(self, text: str) -> Message:
        """The progress message, edited into the answer later."""
        return await self.bot.send_message(self.chat_id, text,
                                           reply_parameters=self._reply_to())

    async def withdraw(self, notice: Any) -> None:
        """Delete a progress message nobody will answer in."""
        if isinstance(notice, Message):
            with contextlib.suppress(TelegramError):
                await self.bot.delete_message(notice.chat_id, notice.message_id)

    async def in_hand(self) -> None:
        """Nothing to say: the handler holding the note answers it."""

    async def typing(self) -> None:
        """Show "typing…" until cancelled (Telegram clears a chat action after 5 s)."""
        while True:
            try:
                await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING)
            except TelegramError as exc:  # cosmetic: never fail a note over it
                log.debug("chat action failed: %s", exc)
            await asyncio.sleep(CHAT_ACTION_EVERY_S)

    def _reply_to(self) -> ReplyParameters:
        return ReplyParameters(self.message_id, allow_sending_without_reply=True)


async def download(bot: Bot, file_id: str, settings: Settings, *, kind: str = "voice") -> bytes:
    """The file's bytes, never more than ``VOICEMOOD_MAX_AUDIO_BYTES`` of them."""
    limit = settings.telegram_max_download_bytes
    try:
        file = await bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise DownloadTooLarge("the Bot API refused the file", limit_bytes=limit) from None
        log.warning("getting the file of a %s failed: %s", kind, redact(str(exc)))
        raise DownloadFailed("getFile failed") from None
    except TelegramError as exc:
        log.warning("getting the file of a %s failed: %s", kind, redact(str(exc)))
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
