"""Wiring of the Telegram bot: the Application, its handlers, the allow-list, the error
handler, request retries, and ``serve_telegram`` (polling or webhook) with a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.telegram import commands, journal, media
from adapters.telegram.context import PLATFORM, VoicemoodContext, attach, lang_of
from adapters.telegram.pending import resume_telegram
from adapters.telegram.replies import reply
from adapters.telegram.texts import phrase
from bot import wording
from bot.core.intake import concurrent_notes
from bot.core.notes import is_allowed
from bot.ops.logs import add_secrets, redact

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)

#: Back-off while the Bot API cannot be reached at start-up (seconds).
STARTUP_RETRY_FIRST_S = 1.0
STARTUP_RETRY_MAX_S = 60.0
#: Retries of a request the Bot API answered with a 5xx or that never reached it.
SERVER_RETRIES = 3
SERVER_RETRY_FIRST_S = 0.5
#: Update types we ask Telegram for (edits, channel posts... are never analysed).
ALLOWED_UPDATES = ["message", "callback_query"]


class RetryingRateLimiter(AIORateLimiter):
    """:class:`AIORateLimiter` (which waits out a 429's ``retry_after``) that also retries
    requests failing with a 5xx or a connection error, so a reply is not lost to a blip.

    A timeout is not retried: the request may have arrived, and a second one would send
    the message twice. Bad requests are the request's fault and fail at once.
    """

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        delay = SERVER_RETRY_FIRST_S
        for attempt in range(SERVER_RETRIES + 1):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data,
                                                     rate_limit_args)
            except (BadRequest, TimedOut):
                raise
            except NetworkError as exc:
                if attempt == SERVER_RETRIES:
                    raise
                log.info("%s failed (%s); retrying in %.1f s", endpoint, redact(str(exc)),
                         delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


def build_application(service: AnalysisService, settings: Settings, *,
                      base_url: str | None = None,
                      base_file_url: str | None = None,
                      clock: Clock | None = None) -> Application[Any, Any, Any, Any, Any,
                                                                  Any]:
    """The python-telegram-bot :class:`Application` with every handler registered.

    ``base_url`` / ``base_file_url`` default to ``TELEGRAM_API_BASE_URL`` /
    ``TELEGRAM_FILE_BASE_URL`` (Telegram's own servers, or a self-hosted Bot API server);
    the library appends the token. Updates are processed concurrently and requests go
    through :class:`RetryingRateLimiter`. ``clock`` drives the weekly digests (tests).
    """
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    token = settings.telegram_bot_token.get_secret_value()
    add_secrets(token)
    app = (
        Application.builder()
        .token(token)
        .base_url(base_url or settings.telegram_api_base_url)
        .base_file_url(base_file_url or settings.telegram_file_base_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, allow_sending_without_reply=True))
        .context_types(ContextTypes(context=VoicemoodContext))
        .concurrent_updates(concurrent_notes(settings))
        .rate_limiter(RetryingRateLimiter(max_retries=3))
        .connect_timeout(10.0)
        .read_timeout(30.0)
        .write_timeout(30.0)
        .media_write_timeout(60.0)
        .build()
    )
    attach(app, service, settings)
    private = filters.ChatType.PRIVATE
    new_message = filters.UpdateType.MESSAGE
    app.add_handler(TypeHandler(Update, allow_listed), group=-1)
    app.add_handler(CommandHandler(["start", "help"], commands.on_help))
    app.add_handler(CommandHandler("history", commands.on_history))
    app.add_handler(CommandHandler("trend", commands.on_trend))
    app.add_handler(CommandHandler("forget", commands.on_forget))
    app.add_handler(CallbackQueryHandler(commands.on_forget_button,
                                         pattern=f"^{commands.CALLBACK_PREFIX}:"))
    journal.register(app, clock)  # /export, /digest, /privacy, /mood; notes in groups
    app.add_handler(MessageHandler(new_message & media.MEDIA, media.on_media))
    app.add_handler(MessageHandler(new_message & private & filters.COMMAND, commands.on_help))
    app.add_handler(MessageHandler(new_message & private & ~filters.StatusUpdate.ALL,
                                   commands.on_other))
    app.add_error_handler(on_error)
    return app


async def allow_listed(update: Update, context: VoicemoodContext) -> None:
    """With ``TELEGRAM_ALLOWED_USERS`` set, refuse everyone else politely and stop the update
    here, before anything of theirs is downloaded, analysed or stored. (A note someone else
    asks about with ``/mood`` meets the same list in the note use-case, on its sender.)"""
    user = update.effective_user
    if user is not None and is_allowed(context.settings, PLATFORM, user.id):
        return
    if user is not None:
        log.info("refused user %s (not on TELEGRAM_ALLOWED_USERS)", user.id)
        refusal = wording.text("not_allowed", lang_of(user))
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(refusal, show_alert=True)
        elif update.effective_message is not None:
            await reply(update.effective_message, wording.escape(refusal, "html"))
    raise ApplicationHandlerStop


async def on_error(update: object, context: VoicemoodContext) -> None:
    """Log any error a handler raised, then apologise to the user it happened for."""
    what = f"update {update.update_id}" if isinstance(update, Update) else "no update"
    log.error("error while handling %s", what, exc_info=context.error)
    if not isinstance(update, Update):
        return
    if update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    if update.effective_message is None:
        return
    apology = wording.error_reply(context.error or Exception(), lang_of(update.effective_user),
                                  context.settings, "html")
    try:
        await reply(update.effective_message, apology)
    except TelegramError as exc:
        log.warning("could not send the apology: %s", redact(str(exc)))


def webhook_path(url: str) -> str:
    """The path our webhook listens on: the path of ``TELEGRAM_WEBHOOK_URL``."""
    return urlsplit(url).path.strip("/")


async def _set_commands(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Publish the command list (the "/" menu) in English and Chinese."""
    for lang, code in (("en", None), ("zh", "zh")):
        menu = [BotCommand(name, phrase(f"cmd_{name}", lang))
                for name in ("history", "trend", "forget", "help")] + journal.menu(lang)
        try:
            await app.bot.set_my_commands(menu, language_code=code)
        except TelegramError as exc:
            log.warning("could not set the command list: %s", redact(str(exc)))


async def _initialize(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
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
            log.warning("cannot reach the Bot API (%s); retrying in %.0f s",
                        redact(str(exc)), delay)
        except TelegramError as exc:
            raise RuntimeError(f"Telegram refused to start the bot: {redact(str(exc))}") from None
        await asyncio.sleep(delay)
        delay = min(delay * 2, STARTUP_RETRY_MAX_S)


async def serve_telegram(service: AnalysisService, settings: Settings, *,
                         clock: Clock | None = None) -> None:
    """Run the Telegram bot until cancelled: polling, or a webhook when
    ``TELEGRAM_WEBHOOK_URL`` is set, and the weekly digests beside it (on ``clock``).
    Stops the updater, the digests and the application cleanly.

    Raises :class:`RuntimeError` (never quoting the token) when Telegram rejects the token.
    """
    app = build_application(service, settings, clock=clock)
    digests: asyncio.Task[None] | None = None
    resumer: asyncio.Task[Any] | None = None
    try:
        await _initialize(app)
        await _set_commands(app)
        await app.start()
        digests = journal.start_digests(app)
        # Notes an earlier run accepted and never answered (it died): answered now, once.
        resumer = asyncio.create_task(resume_telegram(app.bot, service, settings),
                                      name="telegram-resume")
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
            log.info("@%s listening for webhook calls on port %d", app.bot.username,
                     settings.telegram_webhook_port)
        else:
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES,
                                            bootstrap_retries=3)
            log.info("@%s polling for updates", app.bot.username)
        await asyncio.Event().wait()  # until cancelled
    finally:
        if resumer is not None:
            resumer.cancel()
            await asyncio.gather(resumer, return_exceptions=True)
        if digests is not None:
            digests.cancel()
            await asyncio.gather(digests, return_exceptions=True)
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        log.info("stopped")
