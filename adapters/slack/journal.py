"""The mood-journal features on Slack, translated to :class:`bot.journal.operations.Journal`:

* ``/voicemood export [csv|json] [days]`` -- the history as a file uploaded into the
  person's DM with the app.
* ``/voicemood digest [on [weekday] [HH:MM] | off | tz Zone]`` -- the weekly digest, which
  :class:`SlackDigests` posts (summary, then chart) into that DM.
* ``/voicemood privacy [transcripts off|on]`` -- what is kept.
* The message shortcut "Analyse this voice note" (``callback_id`` :data:`SHORTCUT`): the
  clip in that message is analysed now, stored under its sender and answered in its thread.
  With ``SLACK_CHANNEL_MODE=ondemand`` it is the only way a clip in a channel is analysed
  (clips are not downloaded until then); DMs with the app are always analysed.

Each listener acks at once; the work runs after the ack (``bot.spawn``), answers go to the
caller only (``response_url``, ephemeral).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.events import LANG, PLATFORM
from adapters.slack.files import is_audio_file
from adapters.slack.replies import Target, api_error
from bot import wording
from bot.clock import Clock
from bot.core.long_reply import fit_reply
from bot.journal.digest import DigestScheduler, RecipientGone
from bot.journal.export import ExportInProgress
from bot.journal.operations import ExportUsage, Journal
from bot.wording.journal import journal_text

if TYPE_CHECKING:
    from adapters.slack.bot import SlackBot
    from bot.analysis import Analysis
    from bot.storage.journal import DigestSchedule
    from bot.trend.summary import TrendReport

log = logging.getLogger(__name__)

#: The ``/voicemood`` words this module answers.
WORDS = frozenset({"export", "digest", "privacy"})
#: ``callback_id`` of the message shortcut (see adapters/slack_manifest.yml).
SHORTCUT = "voicemood_analyse"
#: Characters per message Slack recommends (longer text is cut off in some clients).
MESSAGE_LIMIT = 4000
#: Slack errors that mean the person cannot be written to any more.
GONE_ERRORS = frozenset({"account_inactive", "user_not_found", "user_disabled",
                         "cannot_dm_bot", "user_not_visible", "is_archived"})


class SlackJournal:
    """Export, digest, privacy and the shortcut for one :class:`SlackBot`."""

    def __init__(self, bot: SlackBot, clock: Clock | None = None) -> None:
        self.bot = bot
        self.journal = Journal(bot.service, clock)

    def register(self) -> None:
        """Register the message shortcut on the bot's app."""
        self.bot.app.shortcut(SHORTCUT)(self.on_shortcut)

    def analyse_on_arrival(self, direct: bool) -> bool:
        """Whether a clip in a message is analysed as it arrives (see SLACK_CHANNEL_MODE)."""
        return self.journal.analyse_on_arrival(PLATFORM, shared=not direct)

    # -- /voicemood export | digest | privacy -------------------------------------------

    async def on_command(self, word: str, rest: str, ack: AsyncAck, command: dict[str, Any],
                         respond: AsyncRespond) -> None:
        """``/voicemood <word> <rest>`` for a word in :data:`WORDS`."""
        await ack()
        user = str(command.get("user_id") or "")
        args = rest.split()
        work = {"export": self._export, "digest": self._digest, "privacy": self._privacy}[word]
        self.bot.spawn(work(user, args, respond), f"{word}:{user}")

    async def _say(self, respond: AsyncRespond, text: str) -> None:
        await self.bot.replies.respond(respond, wording.escape(text, "mrkdwn"))

    async def _digest(self, user: str, args: Sequence[str], respond: AsyncRespond) -> None:
        # The digest goes to the DM, which is opened when it is sent: the user id is its key.
        text = await self.journal.digest(PLATFORM, user, user, args, LANG,
                                         cmd="/voicemood digest")
        await self._say(respond, text)

    async def _privacy(self, user: str, args: Sequence[str], respond: AsyncRespond) -> None:
        text = await self.journal.privacy(PLATFORM, user, args, LANG, cmd="/voicemood privacy",
                                          forget="/voicemood forget")
        await self._say(respond, text)

    async def _export(self, user: str, args: Sequence[str], respond: AsyncRespond) -> None:
        cmd = "/voicemood export"
        try:
            fmt, days = self.journal.export_args(args, LANG, cmd)
            async with self.journal.export(PLATFORM, user, fmt, days) as exp:
                if exp.rows == 0:
                    await self._say(respond, journal_text("export_empty", LANG))
                    return
                data = await asyncio.to_thread(exp.file.read)
                opened = await self.bot.client.conversations_open(users=user)
                channel = str((opened.get("channel") or {}).get("id") or "")
                await self.bot.client.files_upload_v2(
                    channel=channel, file=data, filename=exp.filename, title=exp.filename,
                    initial_comment=self.journal.export_caption(exp, LANG))
        except ExportUsage as exc:
            await self._say(respond, str(exc))
            return
        except ExportInProgress:
            await self._say(respond, journal_text("export_running", LANG))
            return
        except (SlackApiError, SlackClientError) as exc:
            log.warning("uploading an export failed: %s", api_error(exc))
            await self._say(respond, wording.format_error("internal", LANG))
            return
        await self._say(respond, journal_text("export_sent", LANG))

    # -- long transcripts ---------------------------------------------------------------

    async def post_analysis(self, analysis: Analysis, target: Target) -> None:
        """The reply to a new note in its thread: cut at sentence ends, or, when that
        would take too many messages, the start plus the full transcript as a file."""
        fitted = fit_reply(analysis, wording.lang_of(analysis.language), "mrkdwn",
                           MESSAGE_LIMIT)
        for piece in fitted.messages:
            await self.bot.replies.post(target.channel, piece, thread_ts=target.thread_ts)
        if fitted.transcript_file is None:
            return
        try:
            await self.bot.client.files_upload_v2(
                channel=target.channel, thread_ts=target.thread_ts,
                file=fitted.transcript_file, filename=fitted.filename, title=fitted.filename)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("uploading a transcript to %s failed: %s", target.channel,
                        api_error(exc))

    # -- the message shortcut ---------------------------------------------------------------

    async def on_shortcut(self, ack: AsyncAck, shortcut: dict[str, Any],
                          respond: AsyncRespond) -> None:
        """"Analyse this voice note" on a message: analyse its clips for their sender."""
        await ack()
        self.bot.spawn(self._analyse_message(shortcut, respond),
                       f"shortcut:{(shortcut.get('message') or {}).get('ts')}")

    async def _analyse_message(self, shortcut: dict[str, Any], respond: AsyncRespond) -> None:
        message = shortcut.get("message") or {}
        channel = str((shortcut.get("channel") or {}).get("id") or "")
        sender = str(message.get("user") or "")
        files = []
        for stub in message.get("files") or []:
            file = await self.bot.files.file_info(stub)
            if file is not None and is_audio_file(file):
                files.append(file)
        if not files or not sender:
            await self._say(respond, journal_text("not_a_note", LANG))
            return
        ts = str(message.get("ts") or "")
        target = Target(channel=channel, user=sender,
                        thread_ts=str(message.get("thread_ts") or ts) or None)
        for file in files:
            await self.bot.files.process_file(file, target, retry=False)

    # -- weekly digests -----------------------------------------------------------------

    def scheduler(self) -> DigestScheduler:
        """The digest job of this bot (``serve_slack`` runs it beside the app)."""
        return self.journal.scheduler(PLATFORM, SlackDigests(self.bot, self.journal))


class SlackDigests:
    """Delivers weekly digests into each person's DM with the app."""

    def __init__(self, bot: SlackBot, journal: Journal) -> None:
        self.bot = bot
        self.journal = journal

    async def send_digest(self, schedule: DigestSchedule, report: TrendReport) -> None:
        """The summary, then the chart; :class:`RecipientGone` for a deactivated person."""
        client = self.bot.client
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
