"""Slack's side of the one note use-case (:mod:`bot.core.notes`): a file is fetched with the
bot token (bounded, token only to Slack's origins) and answered in its message's thread, or
to the caller of ``/voicemood last`` privately (``respond``); live and after a restart alike.

A file is keyed ``Sender("slack", user, channel, file_id)``; its pending row (recorded before
the event is acknowledged) holds what fetching it again and answering in its thread take.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.constants import LANG, MESSAGE_LIMIT, PLATFORM
from adapters.slack.deps import SlackDeps
from adapters.slack.files import download_file, duration_s, is_audio_file, size_of
from adapters.slack.replies import Target, api_error
from adapters.slack.texts import phrase
from bot.analysis import Sender
from bot.core.intake import DownloadFailed, precheck
from bot.core.long_reply import LongReply
from bot.core.notes import Delivery, Note, handle
from bot.wording import Markup
from inference.errors import NotAudio

log = logging.getLogger(__name__)


class SlackNotePort:
    """The :class:`~bot.core.notes.NotePort` for a file whose answers go to ``target``."""

    markup: Markup = "mrkdwn"
    message_limit = MESSAGE_LIMIT
    download_limit: int | None = None
    shows_typing = False
    answers_in_spoken_language = True

    def __init__(self, deps: SlackDeps, target: Target) -> None:
        self.deps = deps
        self.target = target

    def measure(self, text: str) -> int:
        """Slack counts characters."""
        return len(text)

    async def fetch(self, note: Note) -> bytes:
        """The file's bytes; a stub (no URL on record) is looked up with ``files.info``."""
        deps, ref = self.deps, note.ref
        file: dict[str, Any] | None = {
            "id": ref.get("file_id") or note.sender.message_id,
            "url_private_download": ref.get("url_private_download") or "",
        }
        if not file["url_private_download"]:  # a stub: ask Slack what the file is
            file = await deps.file_info(file)
            if file is None:
                raise DownloadFailed("Slack no longer describes the file")
            if not is_audio_file(file):
                raise NotAudio("the file is not audio")
            refusal = precheck(size_of(file), duration_s(file), deps.settings)
            if refusal is not None:
                raise refusal
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        return await download_file(deps.http(), url, deps.token, api_base_url=deps.api_base_url,
                                   max_bytes=deps.settings.max_audio_bytes)

    async def send(self, text: str, *, edit: Any = None) -> None:
        """A refusal or phrase in the thread (or to the caller of ``/voicemood last``)."""
        await self.deps.replies.to_thread(self.target, text)

    async def send_analysis(self, reply: LongReply, *, again: bool, edit: Any = None) -> None:
        """The analysis in the thread, the transcript file beside it; answered from the
        history to ``/voicemood last``, privately and saying so."""
        replies, target = self.deps.replies, self.target
        if again and target.respond is not None:
            intro = phrase("already_analysed", LANG)
            for i, piece in enumerate(reply.messages):
                await replies.respond(target.respond, f"{intro}\n\n{piece}" if i == 0 else piece)
        else:
            for piece in reply.messages:
                await replies.post(target.channel, piece, thread_ts=target.thread_ts)
        if reply.transcript_file is None:
            return
        try:
            await self.deps.client.files_upload_v2(
                channel=target.channel, thread_ts=target.thread_ts,
                file=reply.transcript_file, filename=reply.filename, title=reply.filename)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("uploading a transcript to %s failed: %s", target.channel,
                        api_error(exc))

    async def notice(self, text: str) -> None:
        """"Transcribing…" in the thread (a message of its own: the result follows it)."""
        await self.deps.replies.to_thread(self.target, text)

    async def withdraw(self, notice: Any) -> None:
        """Notices stay: the thread shows what happened."""

    async def in_hand(self) -> None:
        """Tell the caller of ``/voicemood last`` where the answer will appear."""
        if self.target.respond is not None:
            await self.deps.replies.respond(self.target.respond,
                                            phrase("already_working", LANG))

    async def typing(self) -> None:
        """Slack shows no "typing…" for bots: the notice after a while stands in for it."""


def file_sender(target: Target, file_id: str) -> Sender:
    """The key of one file: its sender, channel and id."""
    return Sender(PLATFORM, target.user, target.channel, file_id)


def pending_ref(file: dict[str, Any], target: Target) -> dict[str, Any]:
    """What a later run needs to fetch ``file`` again and answer in its thread."""
    return {"file_id": str(file.get("id") or ""),
            "url_private_download": str(file.get("url_private_download")
                                        or file.get("url_private") or ""),
            "channel": target.channel, "user": target.user, "thread_ts": target.thread_ts,
            "direct": target.direct, "size": size_of(file), "duration_s": duration_s(file)}


def note_of(file: dict[str, Any], target: Target, requester: str | None = None) -> Note:
    """The note ``file`` is, sent by ``target.user``."""
    return Note(file_sender(target, str(file.get("id") or "")), pending_ref(file, target), LANG,
                size=size_of(file), duration_s=duration_s(file), requester=requester)


async def handle_file(deps: SlackDeps, file: dict[str, Any], target: Target, *,
                      retry: bool = False, requester: str | None = None) -> None:
    """Analyse one file and answer, unless it is answered already or in hand.

    A file analysed before is answered again from the history when someone asks for it or
    shares it in a new message, but not for Slack's retry of the same event.
    """
    if not file.get("id"):
        return
    asked = target.respond is not None or requester is not None
    await handle(deps.service, note_of(file, target, requester), SlackNotePort(deps, target),
                 Delivery(repeat_stored=asked or not retry,
                          progress_after_s=deps.working_after_s))
