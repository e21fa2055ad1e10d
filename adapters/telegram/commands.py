"""The Telegram commands: /start and /help, /history, /trend, /forget (and its buttons), and
the hint for anything else sent in a private chat.

In groups, /history and /trend go to the asking user's private chat: a user's history spans
all their chats, so showing it in a group would leak notes they sent elsewhere. /forget asks
in the chat where it was typed; only the user who asked can press the confirm button.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from adapters.telegram.context import PLATFORM, VoicemoodContext, lang_of
from adapters.telegram.replies import reply, reply_plain, send_to_user
from adapters.telegram.texts import phrase
from bot import wording
from bot.trend.summary import parse_period

log = logging.getLogger(__name__)

HISTORY_DEFAULT = 5
HISTORY_MAX = 50
#: Prefix of the /forget buttons' callback data: ``vmforget:<yes|no>:<user id>``.
CALLBACK_PREFIX = "vmforget"


def help_html(lang: str) -> str:
    """The /help text, escaped for HTML."""
    return wording.escape(wording.help_text(phrase("commands", lang), lang), "html")


async def on_help(update: Update, context: VoicemoodContext) -> None:
    """/start and /help: what the bot does, what it stores, the commands."""
    assert update.effective_message is not None
    await reply(update.effective_message, help_html(lang_of(update.effective_user)))


async def on_history(update: Update, context: VoicemoodContext) -> None:
    """/history [n]: the user's last n analyses (default 5), privately."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    lang = lang_of(user)
    n = HISTORY_DEFAULT
    if context.args:
        n = int(context.args[0]) if context.args[0].isdigit() else 0
        if not 1 <= n <= HISTORY_MAX:
            await reply_plain(message, wording.text("bad_number", lang, max=HISTORY_MAX,
                                                    example="/history 10"))
            return
    items = await context.service.history(PLATFORM, str(user.id), n)
    body = wording.format_history(items, lang, "html", context.settings.tz)
    await send_to_user(update, body, "/history")


async def on_trend(update: Update, context: VoicemoodContext) -> None:
    """/trend [period]: the user's mood summary, with a chart when there is enough data."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    try:
        days = parse_period(" ".join(context.args or []))
    except ValueError as exc:  # parse_period's message is written for the user
        await reply_plain(message, str(exc))
        return
    report = await context.service.trend(PLATFORM, str(user.id), days, lang_of(user))
    await send_to_user(update, wording.escape(report.text, "html"), "/trend", photo=report.png)


async def on_forget(update: Update, context: VoicemoodContext) -> None:
    """/forget: ask for confirmation with two buttons bound to this user."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    lang = lang_of(user)
    count = await context.service.count(PLATFORM, str(user.id))
    # A digest schedule or a privacy choice is "stored about you" too, analyses or not.
    if count == 0 and not await context.service.holds_anything(PLATFORM, str(user.id)):
        await reply_plain(message, wording.text("forget_nothing", lang))
        return
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton(wording.text("forget_yes", lang),
                             callback_data=f"{CALLBACK_PREFIX}:yes:{user.id}"),
        InlineKeyboardButton(wording.text("forget_no", lang),
                             callback_data=f"{CALLBACK_PREFIX}:no:{user.id}"),
    ]])
    await message.reply_text(
        wording.escape(wording.text("forget_confirm", lang, count=count), "html"),
        reply_markup=keyboard, do_quote=True)


async def on_forget_button(update: Update, context: VoicemoodContext) -> None:
    """The /forget buttons: only the user named in the button may press them."""
    query, user = update.callback_query, update.effective_user
    assert query is not None and user is not None
    lang = lang_of(user)
    parts = (query.data or "").split(":")
    if len(parts) != 3 or parts[1] not in ("yes", "no") or not parts[2].isdigit():
        await query.answer(phrase("expired", lang), show_alert=True)
        return
    if int(parts[2]) != user.id:
        await query.answer(phrase("not_yours", lang), show_alert=True)
        return
    await query.answer()
    if parts[1] == "yes":
        deleted = await context.service.forget(PLATFORM, str(user.id))
        done = wording.text("forget_done", lang, count=deleted)
    else:
        done = wording.text("forget_cancelled", lang)
    with contextlib.suppress(BadRequest):  # the message may be gone or too old to edit
        await query.edit_message_text(wording.escape(done, "html"))
        return
    if isinstance(query.message, Message):
        await reply_plain(query.message, done)


async def on_other(update: Update, context: VoicemoodContext) -> None:
    """Anything else in a private chat: a hint rather than silence."""
    message = update.effective_message
    assert message is not None
    lang = lang_of(update.effective_user)
    if message.text is not None:
        await reply_plain(message, phrase("send_voice", lang))
    else:
        await reply_plain(message, wording.format_error("not_audio", lang))
