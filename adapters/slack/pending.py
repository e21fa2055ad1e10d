"""Answering, after a restart, the Slack files an earlier ``serve`` acknowledged and never
answered (see :mod:`bot.core.pending`): fetch each file again with the bot token (bounded, token
only to Slack's origins), analyse it and reply in its message's thread; an apology for the
ones too old to be worth it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from adapters.slack.events import LANG, PLATFORM
from adapters.slack.files import download_file, duration_s, is_audio_file, size_of
from adapters.slack.replies import Target
from bot import wording
from bot.core.intake import DownloadFailed, precheck
from bot.core.pending import PendingNote, ResumeReport, pending_notes, resume
from inference.errors import NotAudio

if TYPE_CHECKING:
    from adapters.slack.bot import SlackBot

log = logging.getLogger(__name__)


def _target(note: PendingNote) -> Target:
    ref = note.ref
    return Target(channel=note.sender.chat_id, user=note.sender.user_id,
                  thread_ts=ref.get("thread_ts") or None, direct=bool(ref.get("direct")))


async def resume_slack(bot: SlackBot) -> ResumeReport:
    """Answer every Slack file an earlier run left pending, exactly once."""
    settings = bot.settings

    async def fetch(note: PendingNote) -> bytes:
        file: dict[str, Any] | None = {
            "id": note.ref.get("file_id") or note.sender.message_id,
            "url_private_download": note.ref.get("url_private_download") or "",
            "size": note.ref.get("size"),
        }
        if not file["url_private_download"]:  # a stub: ask Slack what the file is
            file = await bot.files.file_info(file)
            if file is None:
                raise DownloadFailed("Slack no longer describes the file")
            if not is_audio_file(file):
                raise NotAudio("the file is not audio")
        seconds = note.ref.get("duration_s") if "duration_s" in note.ref else duration_s(file)
        refusal = precheck(size_of(file), seconds, settings)
        if refusal is not None:
            raise refusal
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        return await download_file(bot.http(), url, bot.token, api_base_url=bot.api_base_url,
                                   max_bytes=settings.max_audio_bytes)

    async def answer(note: PendingNote, outcome: Any) -> None:
        if isinstance(outcome, BaseException):
            await bot.replies.to_thread(_target(note), wording.error_reply(
                outcome, LANG, settings, "mrkdwn"))
        else:
            await bot.journal.post_analysis(outcome, _target(note))

    async def apologise(note: PendingNote) -> None:
        await bot.replies.to_thread(_target(note), wording.escape(
            wording.text("pending_too_old", note.lang), "mrkdwn"))

    return await resume(pending_notes(bot.service), bot.service, PLATFORM, fetch=fetch,
                        answer=answer, apologise=apologise,
                        max_age_s=settings.pending_max_age_s)
