"""Receiving notes on Slack: ``message`` events that carry files.

Slack's recorded clips (``slack_audio`` / ``slack_video``) and shared audio or video files
go to the one note use-case (:func:`adapters.slack.notes.handle_file`) and are answered in
the message's thread. ``file_shared`` is *not* used: it fires for the same upload without
the message it belongs to, so there would be no thread to answer in and every clip would
arrive twice.

A message is keyed ``Sender("slack", user, channel, "message:<ts>")``: the service's
:meth:`claim` decides whether a (retried) event is new. At most ``deps.max_tasks`` messages
are worked on at once; beyond that the sender is told the app is busy. Each file is recorded
as pending (:mod:`bot.core.pending`) before the event is acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack.constants import BUSY_RETRY_S, LANG, MAX_FILES_PER_MESSAGE, PLATFORM
from adapters.slack.deps import SlackDeps
from adapters.slack.files import is_audio_file, needs_file_info
from adapters.slack.notes import file_sender, handle_file, note_of
from adapters.slack.replies import Target
from adapters.slack.texts import commands
from bot import wording
from bot.analysis import Sender
from bot.core import notes
from inference.errors import Busy

log = logging.getLogger(__name__)

#: Message subtypes that can carry a new file from a person.
_FILE_SUBTYPES = frozenset({None, "file_share"})


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Subscribe the message listener (and acknowledge ``file_shared``) on ``app``."""

    async def on_message(event: dict[str, Any], context: AsyncBoltContext,
                         request: AsyncBoltRequest) -> None:
        await _on_message(deps, event, context, request)

    async def on_ignored() -> None:
        """Acknowledge events the app does not act on, so Slack does not retry them."""

    app.event("message")(on_message)
    app.event("file_shared")(on_ignored)  # in case an operator subscribes it


async def _on_message(deps: SlackDeps, event: dict[str, Any], context: AsyncBoltContext,
                      request: AsyncBoltRequest) -> None:
    """A message: start work on its files (or answer a DM's text with the help)."""
    if not _from_a_person(event, context) or event.get("subtype") not in _FILE_SUBTYPES:
        return  # bots, edits, deletions, joins, thread broadcasts...
    channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
    target = Target(channel=channel, user=str(event["user"]),
                    thread_ts=str(event.get("thread_ts") or ts) or None,
                    direct=event.get("channel_type") == "im")
    files = event.get("files") or []
    if files and not deps.journal.analyse_on_arrival(PLATFORM, shared=not target.direct):
        return  # SLACK_CHANNEL_MODE=ondemand: only the message shortcut analyses it
    if not files:
        if target.direct and (event.get("text") or "").strip():
            # Someone writing to the app: point them at what it does.
            help_text = wording.help_text(commands(LANG), LANG)
            deps.spawn(deps.replies.post(channel, help_text), "help")
        return
    retry = _retry_num(request) > 0
    if deps.active >= deps.max_tasks:
        deps.spawn(_busy(deps, target, ts), f"busy:{channel}:{ts}")
        return
    # Recorded before this listener returns, i.e. before Bolt acks: if the process dies
    # from here on, the next start answers the files (adapters/slack/pending.py).
    recorded = await _record(deps, files, target)
    deps.active += 1
    deps.spawn(_message(deps, files, target, ts, retry=retry, recorded=recorded),
               f"files:{channel}:{ts}")


async def _record(deps: SlackDeps, files: list[dict[str, Any]], target: Target) -> list[Sender]:
    """Remember the message's (possibly) audio files as pending, with what fetching them
    again and answering in the thread takes; returns those recorded just now."""
    recorded = []
    for file in files[:MAX_FILES_PER_MESSAGE]:
        if file.get("id") and (needs_file_info(file) or is_audio_file(file)):
            note = note_of(file, target)
            if await notes.record(deps.service, note):
                recorded.append(note.sender)
    return recorded


async def _busy(deps: SlackDeps, target: Target, ts: str) -> None:
    async with deps.service.claim(_message_sender(target, ts)) as claim:
        if claim.new:
            log.warning("%d messages in hand: told the sender to retry", deps.active)
            await deps.replies.to_thread(target, wording.error_reply(
                Busy("too many messages", retry_after_s=BUSY_RETRY_S), LANG, deps.settings,
                "mrkdwn"))


async def _message(deps: SlackDeps, files: list[dict[str, Any]], target: Target, ts: str, *,
                   retry: bool, recorded: list[Sender]) -> None:
    pending = deps.service.store.pending
    try:
        async with deps.service.claim(_message_sender(target, ts)) as claim:
            if not claim.new:
                log.info("redelivered message in %s: already handled", target.channel)
                # Rows this redelivery re-recorded were answered (or are being answered)
                # by the first delivery: left behind, a restart would answer them again.
                for sender in recorded:
                    await pending.complete(sender)
                return
            await _files(deps, files, target, retry=retry)
    finally:
        deps.active -= 1


async def _files(deps: SlackDeps, files: list[dict[str, Any]], target: Target, *,
                 retry: bool) -> None:
    resolved: list[dict[str, Any]] = []
    unknown = 0
    for stub in files[:MAX_FILES_PER_MESSAGE]:
        file = await deps.file_info(stub) if needs_file_info(stub) else stub
        if file is None:
            unknown += 1
        else:
            resolved.append(file)
    audio = [f for f in resolved if is_audio_file(f)]
    if not audio:
        code = "download_failed" if unknown else "not_audio"
        await deps.replies.to_sender(target, wording.format_error(code, LANG))
    for file in audio:
        await handle_file(deps, file, target, retry=retry)
    # Stubs that were recorded and turned out not to be audio (or not to exist) are
    # answered by now too; the audio files were completed by the note use-case.
    audio_ids = {str(f.get("id")) for f in audio}
    for stub in files[:MAX_FILES_PER_MESSAGE]:
        if stub.get("id") and str(stub["id"]) not in audio_ids:
            await deps.service.store.pending.complete(file_sender(target, str(stub["id"])))


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
