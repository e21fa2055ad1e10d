"""Telegram front end on python-telegram-bot (v22, asyncio ``Application``).

It only translates: Telegram updates in, calls to :class:`bot.service.AnalysisService`,
Telegram messages out. All wording comes from :mod:`bot.wording` (plus the few
Telegram-only phrases in :mod:`adapters.telegram_text`), all replies use parse mode HTML.

Behaviour worth knowing (see ``docs/telegram.md`` for the operator's view):

* Voice notes, audio files, round video notes, videos and audio documents are analysed
  and the result is sent as a reply to the note. Notes longer than
  :data:`PROGRESS_AFTER_S` first get a "transcribing N s of audio…" message that is then
  edited into the result; every note gets the "typing…" chat action while it is worked on.
* Documents that are not audio get the ``not_audio`` reply in a private chat and are
  ignored in groups (people share PDFs and photos there that were never meant for us).
* Updates are processed concurrently; the models run in the shared engine's worker
  thread, so commands are answered while notes are being analysed.
* The same message delivered twice (same chat and message id) is analysed, stored and
  answered once.
* In groups, ``/history`` and ``/trend`` are sent to the asking user's private chat:
  a user's history spans all their chats, so showing it in a group would leak notes
  they sent elsewhere. ``/forget`` asks in the chat where it was typed; only the user who
  asked can press the confirm button.
* With ``TELEGRAM_ALLOWED_USERS`` set, everyone else gets a polite refusal and nothing
  they send is downloaded, analysed or stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import secrets
import traceback
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from adapters.telegram_text import phrase, split_message
from bot import wording
from bot.analysis import Analysis, Sender
from bot.logs import redact
from bot.trend import build_trend, parse_period
from inference.errors import Busy, InputError, VoicemoodError

log = logging.getLogger(__name__)

PLATFORM = "telegram"
#: Notes longer than this (seconds) get a visible "transcribing…" message first.
PROGRESS_AFTER_S = 15.0
#: The chat action shows for 5 s; renew it a little before it fades.
CHAT_ACTION_EVERY_S = 4.5
#: Back-off while the Bot API cannot be reached at start-up (seconds).
STARTUP_RETRY_FIRST_S = 1.0
STARTUP_RETRY_MAX_S = 60.0
HISTORY_DEFAULT = 5
HISTORY_MAX = 50
#: File name endings of documents we treat as audio even without an audio mime type.
AUDIO_EXTENSIONS = frozenset({
    ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wav", ".flac", ".webm", ".mp4",
    ".amr", ".3gp", ".aif", ".aiff", ".caf", ".wma", ".mka", ".weba", ".spx",
})
#: Update types we ask Telegram for (edits, channel posts... are never analysed).
ALLOWED_UPDATES = ["message", "callback_query"]
_CALLBACK_PREFIX = "vmforget"

# --------------------------------------------------------------------------------------------
# pure helpers


def is_audio_document(mime_type: str | None, file_name: str | None) -> bool:
    """Whether a document should be analysed: audio/video mime type or an audio file name."""
    mime = (mime_type or "").lower()
    if mime.startswith(("audio/", "video/")):
        return True
    return PurePosixPath((file_name or "").lower()).suffix in AUDIO_EXTENSIONS


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Media:
    """The analysable attachment of a message."""

    kind: str  # voice, audio, video_note, video, document
    file_id: str
    file_size: int | None
    duration_s: float | None


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


def _lang(user: User | None) -> str:
    return wording.lang_of(user.language_code if user else None)


def _is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type != ChatType.PRIVATE


def _log_failure(what: str, exc: BaseException | None = None) -> None:
    # Tracebacks of network errors can carry request URLs, and those carry the bot token.
    if exc is None:
        text = traceback.format_exc()
    else:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log.error("%s\n%s", what, redact(text))


Handler = Callable[["TelegramFrontEnd", Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def _guarded(fn: Handler) -> Handler:
    """Apply the allow-list and turn any unexpected failure into an apology."""

    @functools.wraps(fn)
    async def wrapper(self: TelegramFrontEnd, update: Update,
                      context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is None:
            return
        if not self.allowed(user):
            await self.refuse(update)
            return
        try:
            await fn(self, update, context)
        except Exception as exc:  # one bad update must not stop the bot serving others
            _log_failure(f"telegram: {fn.__name__} failed for update {update.update_id}", exc)
            await self.apologise(update)

    return wrapper


# --------------------------------------------------------------------------------------------
# the handlers


class TelegramFrontEnd:
    """The handlers of one Telegram bot; one instance per :class:`Application`."""

    def __init__(self, service: Any, settings: Any) -> None:
        self.service = service
        self.settings = settings
        # Messages being worked on right now: a redelivery racing the original is dropped
        # here, before it could post a second "transcribing…" message.
        self._inflight: set[tuple[int, int]] = set()

    # -- access -------------------------------------------------------------------------

    def allowed(self, user: User) -> bool:
        """Whether ``user`` may use the bot (always true without an allow-list)."""
        ids = self.settings.telegram_allowed_ids
        return not ids or user.id in ids

    async def refuse(self, update: Update) -> None:
        """Tell someone outside the allow-list, politely, that nothing was processed."""
        lang = _lang(update.effective_user)
        if update.effective_user is not None:
            log.info("telegram: refused user %s (not on TELEGRAM_ALLOWED_USERS)",
                     update.effective_user.id)
        query = update.callback_query
        if query is not None:
            with contextlib.suppress(TelegramError):
                await query.answer(wording.text("not_allowed", lang), show_alert=True)
            return
        message = update.effective_message
        if message is not None:
            await self._reply(message, wording.escape(wording.text("not_allowed", lang), "html"))

    async def apologise(self, update: Update) -> None:
        """The reply to an unexpected failure (details stay in the log)."""
        message = update.effective_message
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        if message is None:
            return
        try:
            await self._reply(message, wording.format_error("internal",
                                                             _lang(update.effective_user)))
        except TelegramError as exc:
            log.warning("telegram: could not send the apology: %s", redact(str(exc)))

    # -- sending ------------------------------------------------------------------------

    async def _reply(self, message: Message, html_text: str, *,
                     edit: Message | None = None) -> list[Message]:
        """Reply to ``message`` (or edit ``edit`` into the reply), split to Telegram's limit."""
        bot = message.get_bot()
        pieces = split_message(html_text)
        sent: list[Message] = []
        for i, piece in enumerate(pieces):
            if i == 0 and edit is not None:
                try:
                    result = await bot.edit_message_text(
                        piece, chat_id=edit.chat_id, message_id=edit.message_id,
                        parse_mode=ParseMode.HTML,
                    )
                    sent.append(result if isinstance(result, Message) else edit)
                    continue
                except BadRequest as exc:  # deleted meanwhile: say it in a new message
                    log.info("telegram: editing the progress message failed: %s", exc)
            sent.append(await bot.send_message(
                message.chat_id, piece, parse_mode=ParseMode.HTML,
                reply_parameters=ReplyParameters(message.message_id,
                                                 allow_sending_without_reply=True),
            ))
        return sent

    async def _send_to_user(self, update: Update, html_text: str, command: str,
                            photo: bytes | None = None, caption: str | None = None) -> None:
        """Send personal content: here in a private chat, to the user's private chat from
        a group (where it would be read by everyone)."""
        message = update.effective_message
        user = update.effective_user
        assert message is not None and user is not None
        lang = _lang(user)
        bot = message.get_bot()
        if not _is_group(update):
            if photo is not None:
                await bot.send_photo(message.chat_id, photo, caption=caption,
                                     parse_mode=ParseMode.HTML,
                                     reply_parameters=ReplyParameters(
                                         message.message_id, allow_sending_without_reply=True))
            else:
                await self._reply(message, html_text)
            return
        try:
            if photo is not None:
                await bot.send_photo(user.id, photo, caption=caption, parse_mode=ParseMode.HTML)
            else:
                for piece in split_message(html_text):
                    await bot.send_message(user.id, piece, parse_mode=ParseMode.HTML)
        except (Forbidden, BadRequest) as exc:
            # The user never opened a private chat with the bot (or blocked it).
            log.info("telegram: cannot write to user %s privately: %s", user.id, exc)
            await self._reply(message, wording.escape(
                phrase("private_needed", lang, bot=bot.username or "", command=command), "html"))
            return
        await self._reply(message, wording.escape(phrase("sent_privately", lang), "html"))

    # -- commands -----------------------------------------------------------------------

    def help_html(self, lang: str) -> str:
        """The /help text, escaped for HTML."""
        return wording.escape(wording.help_text(phrase("commands", lang), lang), "html")

    @_guarded
    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start and /help: what the bot does, what it stores, the commands."""
        assert update.effective_message is not None
        await self._reply(update.effective_message, self.help_html(_lang(update.effective_user)))

    @_guarded
    async def on_history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/history [n]: the user's last n analyses (default 5)."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        lang = _lang(user)
        args = context.args or []
        n = HISTORY_DEFAULT
        if args:
            try:
                n = int(args[0])
            except ValueError:
                n = 0
            if not 1 <= n <= HISTORY_MAX:
                await self._reply(message, wording.escape(wording.text(
                    "bad_number", lang, max=HISTORY_MAX, example="/history 10"), "html"))
                return
        items = await self.service.store.recent(PLATFORM, str(user.id), n)
        body = wording.format_history(items, lang, "html", self.settings.tz)
        await self._send_to_user(update, body, "/history")

    @_guarded
    async def on_trend(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/trend [period]: the user's mood summary, with a chart when there is enough data."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        lang = _lang(user)
        try:
            days = parse_period(" ".join(context.args or []))
        except ValueError as exc:  # parse_period's message is written for the user
            await self._reply(message, wording.escape(str(exc), "html"))
            return
        report = await build_trend(self.service.store, PLATFORM, str(user.id), days=days,
                                   tz=self.settings.tz, lang=lang)
        summary = wording.escape(report.text, "html")
        await self._send_to_user(update, summary, "/trend", photo=report.png, caption=summary)

    @_guarded
    async def on_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/forget: ask for confirmation with two buttons bound to this user."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        lang = _lang(user)
        count = await self.service.store.count(PLATFORM, str(user.id))
        if count == 0:
            await self._reply(message, wording.escape(wording.text("forget_nothing", lang),
                                                      "html"))
            return
        keyboard = InlineKeyboardMarkup([[
            InlineKeyboardButton(wording.text("forget_yes", lang),
                                 callback_data=f"{_CALLBACK_PREFIX}:yes:{user.id}"),
            InlineKeyboardButton(wording.text("forget_no", lang),
                                 callback_data=f"{_CALLBACK_PREFIX}:no:{user.id}"),
        ]])
        await message.get_bot().send_message(
            message.chat_id,
            wording.escape(wording.text("forget_confirm", lang, count=count), "html"),
            parse_mode=ParseMode.HTML, reply_markup=keyboard,
            reply_parameters=ReplyParameters(message.message_id,
                                             allow_sending_without_reply=True),
        )

    @_guarded
    async def on_forget_button(self, update: Update,
                               context: ContextTypes.DEFAULT_TYPE) -> None:
        """The /forget buttons: only the user named in the button may press them."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        lang = _lang(user)
        parts = (query.data or "").split(":")
        if len(parts) != 3 or parts[1] not in ("yes", "no") or not parts[2].isdigit():
            await query.answer(phrase("expired", lang), show_alert=True)
            return
        if int(parts[2]) != user.id:
            await query.answer(phrase("not_yours", lang), show_alert=True)
            return
        if parts[1] == "yes":
            deleted = await self.service.store.forget(PLATFORM, str(user.id))
            log.info("telegram: user %s deleted their history (%d rows)", user.id, deleted)
            reply = wording.text("forget_done", lang, count=deleted)
        else:
            reply = wording.text("forget_cancelled", lang)
        await query.answer()
        with contextlib.suppress(BadRequest):  # the message may be gone or too old to edit
            await query.edit_message_text(wording.escape(reply, "html"),
                                          parse_mode=ParseMode.HTML)
            return
        if query.message is not None and isinstance(query.message, Message):
            await query.message.reply_text(wording.escape(reply, "html"),
                                           parse_mode=ParseMode.HTML)

    @_guarded
    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything else in a private chat: a hint rather than silence."""
        message = update.effective_message
        assert message is not None
        lang = _lang(update.effective_user)
        if message.text is not None:
            reply = phrase("send_voice", lang)
        else:
            reply = wording.format_error("not_audio", lang)
        await self._reply(message, wording.escape(reply, "html"))

    # -- voice notes --------------------------------------------------------------------

    @_guarded
    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A voice note, audio file, video note, video or document: analyse and reply."""
        message, user, chat = update.effective_message, update.effective_user, \
            update.effective_chat
        assert message is not None and user is not None and chat is not None
        lang = _lang(user)
        media = media_of(message)
        if media is None:
            if not _is_group(update):
                await self._reply(message, wording.escape(
                    wording.format_error("not_audio", lang), "html"))
            return
        key = (chat.id, message.message_id)
        # Check and claim with no await in between: concurrent handlers interleave there.
        if key in self._inflight:
            log.info("telegram: message %s in chat %s is already being analysed",
                     message.message_id, chat.id)
            return
        self._inflight.add(key)
        try:
            if await self.service.store.get_by_message(PLATFORM, str(chat.id),
                                                       str(message.message_id)) is not None:
                log.info("telegram: message %s in chat %s was analysed before; not answering "
                         "again", message.message_id, chat.id)
                return
            refusal = self._precheck(media, lang)
            if refusal is not None:
                await self._reply(message, wording.escape(refusal, "html"))
                return
            await self._analyse(message, user, media, lang)
        finally:
            self._inflight.discard(key)

    def _precheck(self, media: Media, lang: str) -> str | None:
        """Refusals that need no download: too big for the Bot API, or for us."""
        s = self.settings
        size = media.file_size or 0
        if size > s.telegram_max_download_bytes:
            return wording.format_error("download_too_large", lang,
                                        limit=wording.human_bytes(s.telegram_max_download_bytes))
        if size > s.max_audio_bytes:
            return wording.format_error("too_large", lang,
                                        limit=wording.human_bytes(s.max_audio_bytes))
        if media.duration_s is not None and media.duration_s > s.max_audio_seconds + 1:
            return wording.format_error("too_long", lang,
                                        limit=wording.human_seconds(s.max_audio_seconds))
        return None

    async def _analyse(self, message: Message, user: User, media: Media, lang: str) -> None:
        bot = message.get_bot()
        typing = asyncio.create_task(self._keep_typing(message))
        progress: Message | None = None
        try:
            if media.duration_s is not None and media.duration_s > PROGRESS_AFTER_S:
                progress = await bot.send_message(
                    message.chat_id,
                    wording.escape(wording.text("working", lang,
                                                seconds=round(media.duration_s)), "html"),
                    parse_mode=ParseMode.HTML,
                    reply_parameters=ReplyParameters(message.message_id,
                                                     allow_sending_without_reply=True),
                )
            reply = await self._result_text(message, user, media, lang)
        finally:
            typing.cancel()
        if reply is None:  # a redelivery answered before: say nothing twice
            if progress is not None:
                with contextlib.suppress(TelegramError):
                    await bot.delete_message(progress.chat_id, progress.message_id)
            return
        await self._reply(message, reply, edit=progress)

    async def _result_text(self, message: Message, user: User, media: Media,
                           lang: str) -> str | None:
        """The HTML reply for a note: the analysis or a friendly refusal; None for a
        duplicate. Unexpected failures are logged and become the apology."""
        s = self.settings
        try:
            data = await self._download(message, media)
        except _DownloadRefused as refused:
            return wording.escape(wording.format_error(refused.code, lang, limit=refused.limit),
                                  "html")
        sender = Sender(PLATFORM, str(user.id), str(message.chat_id), str(message.message_id))
        try:
            analysis: Analysis = await self.service.analyze(data, sender)
        except Busy as exc:
            return wording.escape(wording.format_error(
                "busy", lang, wait=max(1, math.ceil(exc.retry_after_s))), "html")
        except InputError as exc:
            log.info("telegram: refused %s from user %s: %s", media.kind, user.id, exc.code)
            limit = ""
            if exc.code == "too_large":
                limit = wording.human_bytes(s.max_audio_bytes)
            elif exc.code == "too_long":
                limit = wording.human_seconds(s.max_audio_seconds)
            return wording.escape(wording.format_error(exc.code, lang, limit=limit), "html")
        except Exception as exc:  # the user gets an apology; the operator the traceback
            _log_failure(f"telegram: analysing a {media.kind} from user {user.id} failed", exc)
            code = exc.code if isinstance(exc, VoicemoodError) else "internal"
            return wording.escape(wording.format_error(code, lang), "html")
        if analysis.duplicate:
            log.info("telegram: message %s in chat %s is a redelivery; not answering again",
                     message.message_id, message.chat_id)
            return None
        log.info("telegram: analysed a %s (%.1f s) from user %s in chat %s: %s",
                 media.kind, analysis.duration_s, user.id, message.chat_id, analysis.label)
        return wording.format_analysis(analysis, lang, "html")

    async def _download(self, message: Message, media: Media) -> bytes:
        """The file's bytes; :class:`_DownloadRefused` when Telegram will not hand them out."""
        s = self.settings
        try:
            file = await message.get_bot().get_file(media.file_id)
            if (file.file_size or 0) > s.telegram_max_download_bytes:
                raise _DownloadRefused("download_too_large",
                                       wording.human_bytes(s.telegram_max_download_bytes))
            # A self-hosted Bot API server in --local mode hands out a local path, which
            # PTB reads from disk; otherwise this is an HTTP download (URL holds the token).
            return bytes(await file.download_as_bytearray())
        except BadRequest as exc:
            if "too big" in str(exc).lower():
                raise _DownloadRefused("download_too_large",
                                       wording.human_bytes(s.telegram_max_download_bytes)) from None
            log.warning("telegram: getting file of a %s failed: %s", media.kind,
                        redact(str(exc)))
            raise _DownloadRefused("download_failed") from None
        except (TelegramError, OSError, RuntimeError) as exc:
            log.warning("telegram: downloading a %s failed: %s: %s", media.kind,
                        type(exc).__name__, redact(str(exc)))
            raise _DownloadRefused("download_failed") from None

    async def _keep_typing(self, message: Message) -> None:
        """Show "typing…" until cancelled (Telegram clears a chat action after 5 s)."""
        bot = message.get_bot()
        while True:
            try:
                await bot.send_chat_action(message.chat_id, ChatAction.TYPING)
            except TelegramError as exc:  # cosmetic: never fail a note over it
                log.debug("telegram: chat action failed: %s", exc)
            await asyncio.sleep(CHAT_ACTION_EVERY_S)

    # -- errors the handlers did not catch -----------------------------------------------

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log errors raised outside the handlers' own guard (network, library)."""
        if context.error is None:
            return
        what = f"update {update.update_id}" if isinstance(update, Update) else "no update"
        _log_failure(f"telegram: error while handling {what}", context.error)


class _DownloadRefused(Exception):
    def __init__(self, code: str, limit: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.limit = limit


# --------------------------------------------------------------------------------------------
# wiring


def build_application(service: Any, settings: Any, *, base_url: str | None = None,
                      base_file_url: str | None = None) -> Application:
    """The python-telegram-bot :class:`Application` with every handler registered.

    ``base_url`` / ``base_file_url`` default to ``TELEGRAM_API_BASE_URL`` /
    ``TELEGRAM_FILE_BASE_URL`` (Telegram's own servers, or a self-hosted Bot API server);
    the library appends the token. Updates are processed concurrently and requests go
    through :class:`AIORateLimiter`, which waits out Telegram's 429 ``retry_after``.
    """
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    token = settings.telegram_bot_token.get_secret_value()
    front = TelegramFrontEnd(service, settings)
    app = (
        Application.builder()
        .token(token)
        .base_url(base_url or settings.telegram_api_base_url)
        .base_file_url(base_file_url or settings.telegram_file_base_url)
        # Room for a full engine queue plus commands, so /help never waits behind notes.
        .concurrent_updates(int(settings.queue_size) + 16)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .connect_timeout(10.0)
        .read_timeout(30.0)  # a 20 MB download on a slow link
        .write_timeout(30.0)
        .media_write_timeout(60.0)
        .build()
    )
    app.bot_data["voicemood"] = front
    private = filters.ChatType.PRIVATE
    new_message = filters.UpdateType.MESSAGE
    media = (filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE | filters.VIDEO
             | _AudioDocument())
    app.add_handler(CommandHandler(["start", "help"], front.on_help))
    app.add_handler(CommandHandler("history", front.on_history))
    app.add_handler(CommandHandler("trend", front.on_trend))
    app.add_handler(CommandHandler("forget", front.on_forget))
    app.add_handler(CallbackQueryHandler(front.on_forget_button,
                                         pattern=f"^{_CALLBACK_PREFIX}:"))
    app.add_handler(MessageHandler(new_message & media, front.on_media))
    app.add_handler(MessageHandler(new_message & private & filters.COMMAND, front.on_help))
    app.add_handler(MessageHandler(new_message & private & ~filters.StatusUpdate.ALL,
                                   front.on_other))
    app.add_error_handler(front.on_error)
    return app


class _AudioDocument(filters.MessageFilter):
    """Documents that hold audio. Other documents fall through: a hint in private chats,
    nothing in groups."""

    def filter(self, message: Message) -> bool:
        doc = message.document
        return doc is not None and is_audio_document(doc.mime_type, doc.file_name)


def webhook_path(url: str) -> str:
    """The path our webhook listens on: the path of ``TELEGRAM_WEBHOOK_URL``."""
    return urlsplit(url).path.strip("/")


async def _set_commands(app: Application) -> None:
    """Publish the command list (the "/" menu) in English and Chinese."""
    for lang, code in (("en", None), ("zh", "zh")):
        commands = [BotCommand(name, phrase(f"cmd_{name}", lang))
                    for name in ("history", "trend", "forget", "help")]
        try:
            await app.bot.set_my_commands(commands, language_code=code)
        except TelegramError as exc:
            log.warning("telegram: could not set the command list: %s", redact(str(exc)))


async def _initialize(app: Application) -> None:
    """``app.initialize()`` (getMe), retried while the network is down at boot."""
    delay = STARTUP_RETRY_FIRST_S
    while True:
        try:
            await app.initialize()
            return
        except InvalidToken:
            # PTB's message quotes the token; ours must not.
            raise RuntimeError("Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather "
                               "(/mybots → API Token)") from None
        except NetworkError as exc:  # includes timeouts and 5xx from the Bot API
            log.warning("telegram: cannot reach the Bot API (%s); retrying in %.0f s",
                        redact(str(exc)), delay)
        except TelegramError as exc:
            raise RuntimeError(f"Telegram refused to start the bot: {redact(str(exc))}") from None
        await asyncio.sleep(delay)
        delay = min(delay * 2, STARTUP_RETRY_MAX_S)


async def serve_telegram(service: Any, settings: Any) -> None:
    """Run the Telegram bot until cancelled: polling, or a webhook when
    ``TELEGRAM_WEBHOOK_URL`` is set. Stops the updater and the application cleanly.

    Raises :class:`RuntimeError` (never quoting the token) when Telegram rejects the token.
    """
    app = build_application(service, settings)
    try:
        await _initialize(app)
        await _set_commands(app)
        await app.start()
        assert app.updater is not None
        if settings.telegram_webhook_url:
            secret = (settings.telegram_webhook_secret.get_secret_value()
                      if settings.telegram_webhook_secret else secrets.token_urlsafe(32))
            await app.updater.start_webhook(
                listen="0.0.0.0",
                port=settings.telegram_webhook_port,
                url_path=webhook_path(settings.telegram_webhook_url),
                webhook_url=settings.telegram_webhook_url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
                bootstrap_retries=3,
            )
            log.info("telegram: @%s listening for webhook calls on port %d",
                     app.bot.username, settings.telegram_webhook_port)
        else:
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES,
                                            bootstrap_retries=3)
            log.info("telegram: @%s polling for updates", app.bot.username)
        await asyncio.Event().wait()  # until cancelled
    finally:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        log.info("telegram: stopped")
