"""Sending to Telegram: replies split to the message limit, and personal content kept private.

Parse mode HTML and ``allow_sending_without_reply`` are the application's defaults
(see :func:`adapters.telegram.app.build_application`), so no call here repeats them.
"""

from __future__ import annotations

import logging

from telegram import Bot, Message, ReplyParameters, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden

from adapters.telegram.context import lang_of
from adapters.telegram.texts import phrase, split_message
from bot import wording

log = logging.getLogger(__name__)


def is_group(update: Update) -> bool:
    """Whether the update comes from a group (anything but a private chat)."""
    chat = update.effective_chat
    return chat is not None and chat.type != ChatType.PRIVATE


async def reply(message: Message, html_text: str, *, edit: Message | None = None) -> None:
    """Reply to ``message`` (or edit ``edit`` into the reply), split to Telegram's limit."""
    await send_reply(message.get_bot(), message.chat_id, message.message_id, html_text,
                     edit=edit)


async def send_reply(bot: Bot, chat_id: int, message_id: int, html_text: str, *,
                     edit: Message | None = None) -> Message | None:
    """Reply to message ``message_id`` of ``chat_id`` without holding the message (also
    after a restart), or edit ``edit`` into the reply; split to Telegram's limit. Returns
    the last message sent, if any."""
    sent: Message | None = None
    for i, piece in enumerate(split_message(html_text)):
        if i == 0 and edit is not None:
            try:
                await bot.edit_message_text(piece, chat_id=edit.chat_id,
                                            message_id=edit.message_id)
                continue
            except BadRequest as exc:  # deleted meanwhile: say it in a new message
                log.info("editing the progress message failed: %s", exc)
        sent = await bot.send_message(chat_id, piece, reply_parameters=ReplyParameters(
            message_id, allow_sending_without_reply=True))
    return sent


async def reply_plain(message: Message, text: str) -> None:
    """Reply with a fixed phrase (escaped for HTML here)."""
    await reply(message, wording.escape(text, "html"))


async def send_to_user(update: Update, html_text: str, command: str, *,
                       photo: bytes | None = None) -> None:
    """Send personal content: here in a private chat, to the user's private chat from a
    group (where everyone would read it). ``html_text`` is the caption of ``photo``."""
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    if not is_group(update):
        if photo is not None:
            await message.reply_photo(photo, caption=html_text, do_quote=True)
        else:
            await reply(message, html_text)
        return
    bot = message.get_bot()
    try:
        if photo is not None:
            await bot.send_photo(user.id, photo, caption=html_text)
        else:
            for piece in split_message(html_text):
                await bot.send_message(user.id, piece)
    except (Forbidden, BadRequest) as exc:
        # The user never opened a private chat with the bot (or blocked it).
        log.info("cannot write to user %s privately: %s", user.id, exc)
        await reply_plain(message, phrase("private_needed", lang_of(user),
                                          bot=bot.username or "", command=command))
        return
    await reply_plain(message, phrase("sent_privately", lang_of(user)))
