"""The mood-journal features on Slack, translated to :class:`bot.journal.operations.Journal`:

* ``/voicemood export [csv|json] [days]`` -- the history as a file uploaded into the
  person's DM with the app.
* ``/voicemood digest [on [weekday] [HH:MM] | off | tz Zone]`` -- the weekly digest, which
  :class:`SlackDigests` posts (summary, then chart) into that DM.
* ``/voicemood privacy [transcripts off|on]`` -- what is kept.
* The message shortcut "Analyse this voice note" (``callback_id`` :data:`SHORTCUT`): the
  clip in that message is analysed now, stored under its sender and answered in its thread.
  With ``SLACK_CHANNEL_MODE=ondemand`` it is the only way a clip in a channel is analysed
  (clips are not downloaded until then); DMs with the app are always analysed. Each clip
  goes through the one note use-case (:func:`adapters.slack.notes.handle_file`).

Each listener acks at once; the work runs after the ack (``deps.spawn``), answers go to the
caller only (``response_url``, ephemeral).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.constants import LANG, PLATFORM, SHORTCUT
from adapters.slack.deps import SlackDeps
from adapters.slack.files import is_audio_file
from adapters.slack.notes import handle_file
from adapters.slack.replies import Target, api_error
from bot import wording
from bot.journal.digest import DigestScheduler, RecipientGone
from bot.journal.export import ExportInProgress
from bot.journal.operations import ExportUsage, Journal
from bot.wording.journal import journal_text

if TYPE_CHECKING:
    from bot.storage.journal import DigestSchedule
    from bot.trend.summary import TrendReport

log = logging.getLogger(__name__)

#: Slack errors that mean the person cannot be written to any more.
GONE_ERRORS = frozenset({"account_inactive", "user_not_found", "user_disabled",
                         "cannot_dm_bot", "user_not_visible", "is_archived"})


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Register the message shortcut on ``app``."""

    async def on_shortcut(ack: AsyncAck, shortcut: dict[str, Any],
                          respond: AsyncRespond) -> None:
        """"Analyse this voice note" on a message: analyse its clips for their sender."""
        await ack()
        deps.spawn(_analyse_message(deps, shortcut, respond),
                   f"shortcut:{(shortcut.get('message') or {}).get('ts')}")

    app.shortcut(SHORTCUT)(on_shortcut)


# -- /voicemood export | digest | privacy -----------------------------------------------


async def on_command(deps: SlackDeps, word: str, rest: str, ack: AsyncAck,
                     command: dict[str, Any], respond: AsyncRespond) -> None:
    """``/voicemood <word> <rest>`` for a word in ``constants.JOURNAL_WORDS``."""
    await ack()
    user = str(command.get("user_id") or "")
    args = rest.split()
    work = {"export": _export, "digest": _digest, "privacy": _privacy}[word]
    deps.spawn(work(deps, user, args, respond), f"{word}:{user}")


async def _say(deps: SlackDeps, respond: AsyncRespond, text: str) -> None:
    await deps.replies.respond(respond, wording.escape(text, "mrkdwn"))


async def _digest(deps: SlackDeps, user: str, args: Sequence[str],
                  respond: AsyncRespond) -> None:
    # The digest goes to the DM, which is opened when it is sent: the user id is its key.
    text = await deps.journal.digest(PLATFORM, user, user, args, LANG, cmd="/voicemood digest")
    await _say(deps, respond, text)


async def _privacy(deps: SlackDeps, user: str, args: Sequence[str],
                   respond: AsyncRespond) -> None:
    text = await deps.journal.privacy(PLATFORM, user, args, LANG, cmd="/voicemood privacy",
                                      forget="/voicemood forget")
    await _say(deps, respond, text)


async def _export(deps: SlackDeps, user: str, args: Sequence[str],
                  respond: AsyncRespond) -> None:
    cmd = "/voicemood export"
    journal = deps.journal
    try:
        fmt, days = journal.export_args(args, LANG, cmd)
        async with journal.export(PLATFORM, user, fmt, days) as exp:
            if exp.rows == 0:
                await _say(deps, respond, journal_text("export_empty", LANG))
                return
            data = await asyncio.to_thread(exp.file.read)
            opened = await deps.client.conversations_open(users=user)
            channel = str((opened.get("channel") or {}).get("id") or "")
            await deps.client.files_upload_v2(
                channel=channel, file=data, filename=exp.filename, title=exp.filename,
                initial_comment=journal.export_caption(exp, LANG))
    except ExportUsage as exc:
        await _say(deps, respond, str(exc))
        return
    except ExportInProgress:
        await _say(deps, respond, journal_text("export_running", LANG))
        return
    except (SlackApiError, SlackClientError) as exc:
        log.warning("uploading an export failed: %s", api_error(exc))
        await _say(deps, respond, wording.format_error("internal", LANG))
        return
    await _say(deps, respond, journal_text("export_sent", LANG))


# -- the message shortcut ---------------------------------------------------------------


async def _analyse_message(deps: SlackDeps, shortcut: dict[str, Any],
                           respond: AsyncRespond) -> None:
    message = shortcut.get("message") or {}
    channel = str((shortcut.get("channel") or {}).get("id") or "")
    sender = str(message.get("user") or "")
    files = []
    for stub in message.get("files") or []:
        file = await deps.file_info(stub)
        if file is not None and is_audio_file(file):
            files.append(file)
    if not files or not sender:
        await _say(deps, respond, journal_text("not_a_note", LANG))
        return
    ts = str(message.get("ts") or "")
    target = Target(channel=channel, user=sender,
                    thread_ts=str(message.get("thread_ts") or ts) or None)
    requester = str((shortcut.get("user") or {}).get("id") or "") or None
    for file in files:
        await handle_file(deps, file, target, requester=requester)


# -- weekly digests ---------------------------------------------------------------------


def scheduler(deps: SlackDeps) -> DigestScheduler:
    """The digest job of this app (``serve_slack`` runs it beside the app)."""
    return deps.journal.scheduler(PLATFORM, SlackDigests(deps, deps.journal))


class SlackDigests:
    """Delivers weekly digests into each person's DM with the app."""

    def __init__(self, deps: SlackDeps, journal: Journal) -> None:
        self.deps = deps
        self.journal = journal

    async def send_digest(self, schedule: DigestSchedule, report: TrendReport) -> None:
        """The summary, then the chart; :class:`RecipientGone` for a deactivated person."""
        client = self.deps.client
        text = wording.escape(self.journal.digest_text(report, schedule.lang), "mrkdwn")
        try:
            opened = await client.conversations_open(users=schedule.chat_id)
            channel = str((opened.get("channel") or {}).get("id") or "")
            await client.chat_postMessage(channel=channel, text=text)
            if report.png is not None:
                await client.files_upload_v2(channel=channel, file=report.png,
                                             filename="voicemood-weekly.png",
                                             title=journal_text("digest_title", schedule.lang))
        except SlackApiError as exc:
            if str(exc.response.get("error") or "") in GONE_ERRORS:
                raise RecipientGone(api_error(exc)) from None
            raise
