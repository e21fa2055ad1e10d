"""Receiving notes on Slack: ``message`` events that carry files.

Slack's recorded clips (``slack_audio`` / ``slack_video``) and shared audio or video files
are fetched (bounded, token only to Slack), analysed and answered in the message's thread.
``file_shared`` is *not* used: it fires for the same upload without the message it belongs
to, so there would be no thread to answer in and every clip would arrive twice.

A file is keyed ``Sender("slack", user, channel, file_id)``, a message
``Sender("slack", user, channel, "message:<ts>")``: the service's :meth:`claim` decides
whether a (retried) event is new. At most ``bot.max_tasks`` messages are worked on at once;
beyond that the sender is told the app is busy. Each file is recorded as pending
(:mod:`bot.core.pending`) before the event is acknowledged and completed once answered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.files import (
    download_file,
    duration_s,
    is_audio_file,
    needs_file_info,
    size_of,
)
from adapters.slack.replies import Target, api_error
from adapters.slack.texts import commands, phrase
from bot import wording
from bot.analysis import Analysis, Sender
from bot.core.intake import precheck
from bot.core.pending import pending_notes
from bot.core.service import Claim
from inference.errors import Busy, VoicemoodError

if TYPE_CHECKING:
    from adapters.slack.bot import SlackBot

log = logging.getLogger(__name__)

PLATFORM = "slack"
#: Reply language. Slack only tells a user's locale to apps with users:read, which this app
#: does not ask for; an analysis is answered in the language that was spoken.
LANG = "en"
#: Post "transcribing…" when an analysis has not finished after this many seconds...
WORKING_AFTER_S = 3.0
#: ...or straight away when Slack says the clip is at least this long.
ANNOUNCE_LONG_CLIP_S = 20.0
#: Files looked at per message (Slack allows 10; more would only queue up behind each other).
MAX_FILES_PER_MESSAGE = 10
#: The wait a busy reply suggests when the app has too many messages in hand (seconds).
BUSY_RETRY_S = 30.0
#: Message subtypes that can carry a new file from a person.
_FILE_SUBTYPES = frozenset({None, "file_share"})


class FileEvents:
    """The ``message`` listener and the work on each file it starts."""

    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot
        self.replies = bot.replies
        #: Messages being worked on now (capped at ``bot.max_tasks``).
        self.active = 0

    def register(self) -> None:
        """Subscribe the listeners on the bot's app."""
        self.bot.app.event("message")(self.on_message)
        self.bot.app.event("file_shared")(self.on_ignored)  # in case an operator subscribes it

    async def on_ignored(self) -> None:
        """Acknowledge events the app does not act on, so Slack does not retry them."""

    async def on_message(self, event: dict[str, Any], context: AsyncBoltContext,
                         request: AsyncBoltRequest) -> None:
        """A message: start work on its files (or answer a DM's text with the help)."""
        if not _from_a_person(event, context) or event.get("subtype") not in _FILE_SUBTYPES:
            return  # bots, edits, deletions, joins, thread broadcasts...
        channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
        target = Target(channel=channel, user=str(event["user"]),
                        thread_ts=str(event.get("thread_ts") or ts) or None,
                        direct=event.get("channel_type") == "im")
        files = event.get("files") or []
        if files and not self.bot.journal.analyse_on_arrival(target.direct):
            return  # SLACK_CHANNEL_MODE=ondemand: only the message shortcut analyses it
        if not files:
            if target.direct and (event.get("text") or "").strip():
                # Someone writing to the app: point them at what it does.
                help_text = wording.help_text(commands(LANG), LANG)
                self.bot.spawn(self.replies.post(channel, help_text), "help")
            return
        retry = _retry_num(request) > 0
        if self.active >= self.bot.max_tasks:
            self.bot.spawn(self._busy(target, ts), f"busy:{channel}:{ts}")
            return
        # Recorded before this listener returns, i.e. before Bolt acks: if the process dies
        # from here on, the next start answers the files (adapters/slack/pending.py).
        recorded = await self._record(files, target)
        self.active += 1
        self.bot.spawn(self._message(files, target, ts, retry=retry, recorded=recorded),
                       f"files:{channel}:{ts}")

    async def _record(self, files: list[dict[str, Any]], target: Target) -> list[Sender]:
        """Remember the message's (possibly) audio files as pending, with what fetching
        them again and answering in the thread takes; returns those recorded just now."""
        notes = pending_notes(self.bot.service)
        recorded = []
        for file in files[:MAX_FILES_PER_MESSAGE]:
            if file.get("id") and (needs_file_info(file) or is_audio_file(file)):
                sender = _file_sender(target, str(file["id"]))
                if await notes.record(sender, pending_ref(file, target), LANG):
                    recorded.append(sender)
        return recorded

    async def _busy(self, target: Target, ts: str) -> None:
        async with self.bot.service.claim(_message_sender(target, ts)) as claim:
            if claim.new:
                log.warning("%d messages in hand: told the sender to retry", self.active)
                await self.replies.to_thread(target, wording.error_reply(
                    Busy("too many messages", retry_after_s=BUSY_RETRY_S), LANG,
                    self.bot.settings, "mrkdwn"))

    async def _message(self, files: list[dict[str, Any]], target: Target, ts: str, *,
                       retry: bool, recorded: list[Sender]) -> None:
        try:
            async with self.bot.service.claim(_message_sender(target, ts)) as claim:
                if not claim.new:
                    log.info("redelivered message in %s: already handled", target.channel)
                    # Rows this redelivery re-recorded were answered (or are being answered)
                    # by the first delivery: left behind, a restart would answer them again.
                    notes = pending_notes(self.bot.service)
                    for sender in recorded:
                        await notes.complete(sender)
                    return
                await self._files(files, target, retry=retry)
        finally:
            self.active -= 1

    async def _files(self, files: list[dict[str, Any]], target: Target, *, retry: bool) -> None:
        resolved: list[dict[str, Any]] = []
        unknown = 0
        for stub in files[:MAX_FILES_PER_MESSAGE]:
            file = await self.file_info(stub) if needs_file_info(stub) else stub
            if file is None:
                unknown += 1
            else:
                resolved.append(file)
        audio = [f for f in resolved if is_audio_file(f)]
        if not audio:
            code = "download_failed" if unknown else "not_audio"
            await self.replies.to_sender(target, wording.format_error(code, LANG))
        for file in audio:
            await self.process_file(file, target, retry=retry)
        # Stubs that were recorded and turned out not to be audio (or not to exist) are
        # answered by now too; the audio files were completed in process_file.
        notes = pending_notes(self.bot.service)
        audio_ids = {str(f.get("id")) for f in audio}
        for stub in files[:MAX_FILES_PER_MESSAGE]:
            if stub.get("id") and str(stub["id"]) not in audio_ids:
                await notes.complete(_file_sender(target, str(stub["id"])))

    async def file_info(self, stub: dict[str, Any]) -> dict[str, Any] | None:
        """The full file object for a stub (``files.info``); None when Slack won't say."""
        file_id = stub.get("id")
        if not file_id:
            return None
        try:
            resp = await self.bot.client.files_info(file=str(file_id))
        except (SlackApiError, SlackClientError) as exc:
            log.warning("files.info %s failed: %s", file_id, api_error(exc))
            return None
        file = resp.get("file")
        return dict(file) if isinstance(file, dict) else None

    async def process_file(self, file: dict[str, Any], target: Target, *, retry: bool) -> None:
        """Analyse one file and answer, unless it is answered already or in hand."""
        file_id = str(file.get("id") or "")
        if not file_id:
            return
        sender = _file_sender(target, file_id)
        async with self.bot.service.claim(sender) as claim:
            if claim.in_flight:
                # A retry (or /voicemood last) racing the first delivery: that one answers
                # (and completes the pending note).
                log.info("file %s in %s is already being analysed", file_id, target.channel)
                if target.respond is not None:
                    await self.replies.respond(target.respond, phrase("already_working", LANG))
                return
            if claim.stored is not None:
                if not (retry and target.respond is None):
                    await self.send_stored(claim.stored, target)
            else:
                await self._analyse(file, claim, target)
            await pending_notes(self.bot.service).complete(sender)

    async def _analyse(self, file: dict[str, Any], claim: Claim, target: Target) -> None:
        settings = self.bot.settings
        file_id = claim.sender.message_id
        try:
            refusal = precheck(size_of(file), duration_s(file), settings)
            if refusal is not None:
                raise refusal
            url = str(file.get("url_private_download") or file.get("url_private") or "")
            data = await download_file(self.bot.http(), url, self.bot.token,
                                       api_base_url=self.bot.api_base_url,
                                       max_bytes=settings.max_audio_bytes)
            analysis = await self._analyse_with_notice(data, claim, file, target)
        except VoicemoodError as exc:
            log.info("file %s refused: %s (%s)", file_id, exc.code, exc)
            await self.replies.to_thread(target, wording.error_reply(exc, LANG, settings,
                                                                     "mrkdwn"))
            return
        except Exception as exc:  # the user gets an apology; the operator the traceback
            log.exception("analysis of Slack file %s failed", file_id)
            await self.replies.to_thread(target, wording.error_reply(exc, LANG, settings,
                                                                     "mrkdwn"))
            return
        if analysis.duplicate:  # another process answered it meanwhile
            if target.respond is not None:
                await self.send_stored(analysis, target)
            return
        await self.bot.journal.post_analysis(analysis, target)

    async def _analyse_with_notice(self, data: bytes, claim: Claim, file: dict[str, Any],
                                   target: Target) -> Analysis:
        seconds = duration_s(file)
        long_clip = seconds is not None and seconds >= ANNOUNCE_LONG_CLIP_S
        job = asyncio.ensure_future(claim.analyze(data))
        try:
            done, _ = await asyncio.wait({job}, timeout=0 if long_clip else
                                         self.bot.working_after_s)
            if not done:
                notice = (wording.text("working", LANG, seconds=round(seconds)) if seconds
                          else phrase("working_unknown", LANG))
                await self.replies.to_thread(target, notice)
            return await job
        finally:
            if not job.done():
                job.cancel()

    async def send_stored(self, analysis: Analysis, target: Target) -> None:
        """Answer from the history: privately to ``/voicemood last``, else in the thread (the
        same file shared again in a new message)."""
        if target.respond is not None:
            await self.replies.respond(target.respond, f"{phrase('already_analysed', LANG)}"
                                                       f"\n\n{analysis_text(analysis)}")
        else:
            await self.replies.post(target.channel, analysis_text(analysis),
                                    thread_ts=target.thread_ts)


def analysis_text(analysis: Analysis) -> str:
    """The reply to a note, in the language that was spoken."""
    return wording.format_analysis(analysis, wording.lang_of(analysis.language), "mrkdwn")


def pending_ref(file: dict[str, Any], target: Target) -> dict[str, Any]:
    """What a later run needs to fetch ``file`` again and answer in its thread."""
    return {"file_id": str(file.get("id") or ""),
            "url_private_download": str(file.get("url_private_download")
                                        or file.get("url_private") or ""),
            "channel": target.channel, "user": target.user, "thread_ts": target.thread_ts,
            "direct": target.direct, "size": size_of(file), "duration_s": duration_s(file)}


def _file_sender(target: Target, file_id: str) -> Sender:
    return Sender(PLATFORM, target.user, target.channel, file_id)


def _message_sender(target: Target, ts: str) -> Sender:
    return Sender(PLATFORM, target.user, target.channel, f"message:{ts}")


def _from_a_person(event: dict[str, Any], context: AsyncBoltContext) -> bool:
    """False for bots (this app included), Slackbot and system messages."""
    if event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message":
        return False
    user = event.get("user")
    if not user or user == "USLACKBOT":
        return False
    return user != context.bot_user_id


def _retry_num(request: AsyncBoltRequest) -> int:
    values = request.headers.get("x-slack-retry-num") or []
    try:
        return int(values[0]) if values else 0
    except ValueError:
        return 0
