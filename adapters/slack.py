"""The Slack front end, on slack-bolt's :class:`~slack_bolt.async_app.AsyncApp`.

What it listens to (see ``adapters/slack_manifest.yml`` and ``docs/slack.md``):

* ``message`` events (``message.channels``, ``.groups``, ``.im``, ``.mpim``) that carry
  ``files``: Slack's recorded clips (``slack_audio`` / ``slack_video``) and shared audio or
  video files. ``file_shared`` is *not* used: it fires for the same upload without the
  message it belongs to, so there would be no thread to answer in and every clip would
  arrive twice.
* ``/voicemood`` (help, ``last``, ``forget``, ``trend``) and ``/trend``.
* The two buttons of the ``/voicemood forget`` confirmation.

Every request is acknowledged at once (bolt answers Slack after the listener returns, and
listeners only start background tasks), so Slack's 3-second limit holds whatever the
analysis costs. A file is keyed ``Sender("slack", user, channel, file_id)``: a retried
event (``X-Slack-Retry-Num``) or a ``/voicemood last`` of the same file finds it stored
(or in flight) and is neither downloaded nor analysed again.

Replies never carry exception text or tokens: errors become :func:`bot.wording.format_error`
phrases and the details go to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_files import (
    DownloadFailed,
    DownloadTooLarge,
    download_file,
    duration_s,
    is_audio_file,
    message_ts,
    needs_file_info,
    token_allowed,
)
from adapters.slack_texts import commands, phrase
from bot import wording
from bot.analysis import Analysis, Sender
from bot.logs import redact
from bot.trend import build_trend, parse_period
from inference.errors import Busy, InputError

log = logging.getLogger(__name__)

PLATFORM = "slack"
#: Where Slack sends events, slash commands and button clicks in HTTP mode.
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
COMMAND = "/voicemood"
TREND_COMMAND = "/trend"
#: The message events the manifest subscribes to (all arrive as ``message``).
MESSAGE_EVENTS = ("message.channels", "message.groups", "message.im", "message.mpim")
FORGET_YES = "voicemood_forget_yes"
FORGET_NO = "voicemood_forget_no"
#: Post "transcribing…" when an analysis has not finished after this many seconds...
WORKING_AFTER_S = 3.0
#: ...or straight away when Slack says the clip is at least this long.
LONG_CLIP_S = 20.0
#: Files looked at per message (Slack allows 10; more would only queue up behind each other).
MAX_FILES_PER_MESSAGE = 10
#: How many of the caller's latest files ``/voicemood last`` looks through.
LAST_SEARCH_COUNT = 20
#: Reply language. Slack only tells a user's locale to apps with users:read, which this app
#: does not ask for; an analysis is answered in the language that was spoken.
LANG = "en"
#: Messages remembered to drop redeliveries (a retry of a refusal stores nothing to find).
SEEN_MESSAGES = 4096
#: Message subtypes that can carry a new file from a person.
_FILE_SUBTYPES = frozenset({None, "file_share"})


@dataclass
class _Target:
    """Where the answers about one file go."""

    channel: str
    user: str
    thread_ts: str | None
    #: A direct message with the app: nobody else can see the thread anyway.
    direct: bool = False
    #: Set for ``/voicemood last``: notices and errors go to the caller only.
    respond: AsyncRespond | None = None


class SlackBot:
    """The Bolt app plus what it needs to answer: the service, a download session, tasks."""

    def __init__(self, service: Any, settings: Any, *, client: AsyncWebClient | None = None,
                 working_after_s: float = WORKING_AFTER_S) -> None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        if not token:
            raise ValueError("SLACK_BOT_TOKEN is not set")
        base_url = settings.slack_api_base_url or "https://slack.com/api/"
        if not base_url.endswith("/"):
            base_url += "/"  # slack_sdk joins method names onto it
        self.service = service
        self.settings = settings
        self.working_after_s = working_after_s
        self.api_base_url = base_url
        self.client = client or AsyncWebClient(token=token, base_url=base_url)
        self._token = self.client.token or token  # downloads use the token the API calls use
        secret = (settings.slack_signing_secret.get_secret_value()
                  if settings.slack_signing_secret else "")
        # An empty secret (Socket Mode) makes every signed HTTP request fail: fail closed.
        # Socket Mode requests are not signed and skip the check.
        bolt_log = logging.getLogger("slack_bolt.AsyncApp")
        # Bolt also reads SLACK_BOT_TOKEN from the environment and then warns that the
        # client's token wins; it is the same token, so that warning would only confuse.
        bolt_log.addFilter(_drop_token_unused)
        try:
            self.app = AsyncApp(name="voicemood", client=self.client, signing_secret=secret,
                                process_before_response=True)
        finally:
            bolt_log.removeFilter(_drop_token_unused)
        self.http_port: int | None = None
        self.ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: set[tuple[str, str]] = set()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None
        self._register()

    # ------------------------------------------------------------------ wiring

    def _register(self) -> None:
        app = self.app
        app.event("message")(self._on_message)
        app.event("file_shared")(self._on_ignored_event)  # in case an operator subscribes it
        app.command(COMMAND)(self._on_voicemood)
        app.command(TREND_COMMAND)(self._on_trend)
        app.action(FORGET_YES)(self._on_forget_yes)
        app.action(FORGET_NO)(self._on_forget_no)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run slow work after the ack; the task is kept (and its failure logged)."""
        task = asyncio.create_task(coro, name=f"slack:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("%s failed: %s", task.get_name(), redact(repr(exc)), exc_info=exc)

    @property
    def busy(self) -> bool:
        """Whether background work is still running."""
        return bool(self._tasks)

    async def idle(self) -> None:
        """Wait until every background task (and those they started) has finished.

        Callers bound the wait themselves (``asyncio.timeout``).
        """
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel background work and close the download session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # ------------------------------------------------------------------ events

    async def _on_ignored_event(self) -> None:
        """Acknowledge events the app does not act on, so Slack does not retry them."""

    async def _on_message(self, event: dict[str, Any], context: Any,
                          request: AsyncBoltRequest) -> None:
        if not _from_a_person(event, context):
            return
        if event.get("subtype") not in _FILE_SUBTYPES:
            return  # edits, deletions, joins, thread broadcasts...
        channel = str(event.get("channel") or "")
        user = str(event["user"])
        direct = event.get("channel_type") == "im"
        files = event.get("files") or []
        if not files:
            if direct and (event.get("text") or "").strip():
                # Someone writing to the app: point them at what it does.
                self.spawn(self._post(channel, wording.help_text(commands(LANG), LANG)), "help")
            return
        if not self._first_delivery(channel, str(event.get("ts") or "")):
            log.info("redelivered message in %s (retry %d): already handled", channel,
                     _retry_num(request))
            return
        target = _Target(channel=channel, user=user,
                         thread_ts=str(event.get("thread_ts") or event.get("ts") or "") or None,
                         direct=direct)
        self.spawn(self._handle_files(files, target, retry=_retry_num(request) > 0),
                   f"files:{channel}:{event.get('ts')}")

    def _first_delivery(self, channel: str, ts: str) -> bool:
        """Remember a message; False when it was seen before (Slack retried it)."""
        key = (channel, ts)
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > SEEN_MESSAGES:
            self._seen.popitem(last=False)
        return True

    async def _handle_files(self, files: list[dict[str, Any]], target: _Target, *,
                            retry: bool) -> None:
        resolved: list[dict[str, Any]] = []
        unknown = 0
        for stub in files[:MAX_FILES_PER_MESSAGE]:
            file = await self._file_info(stub) if needs_file_info(stub) else stub
            if file is None:
                unknown += 1
            else:
                resolved.append(file)
        audio = [f for f in resolved if is_audio_file(f)]
        if not audio:
            code = "download_failed" if unknown else "not_audio"
            await self._tell_user(target, wording.format_error(code, LANG))
            return
        for file in audio:
            await self._process_file(file, target, retry=retry)

    async def _file_info(self, stub: dict[str, Any]) -> dict[str, Any] | None:
        file_id = stub.get("id")
        if not file_id:
            return None
        try:
            resp = await self.client.files_info(file=str(file_id))
        except (SlackApiError, SlackClientError) as exc:
            log.warning("files.info %s failed: %s", file_id, _api_error(exc))
            return None
        file = resp.get("file")
        return dict(file) if isinstance(file, dict) else None

    # ------------------------------------------------------------------ one file

    async def _process_file(self, file: dict[str, Any], target: _Target, *, retry: bool) -> None:
        file_id = str(file.get("id") or "")
        if not file_id:
            return
        key = (target.channel, file_id)
        if key in self._inflight:
            # A retry (or /voicemood last) racing the first delivery: that one will answer.
            log.info("file %s in %s is already being analysed", file_id, target.channel)
            if target.respond is not None:
                await self._notice(target, phrase("already_working", LANG))
            return
        self._inflight.add(key)
        try:
            await self._analyse_file(file, file_id, target, retry=retry)
        except Exception:
            # The analysis itself is guarded; this is the database or Slack failing around it.
            log.exception("handling Slack file %s failed", file_id)
            await self._error(target, wording.format_error("internal", LANG))
        finally:
            self._inflight.discard(key)

    async def _analyse_file(self, file: dict[str, Any], file_id: str, target: _Target, *,
                            retry: bool) -> None:
        store = self.service.store
        stored = await store.get_by_message(PLATFORM, target.channel, file_id)
        if stored is not None:
            if retry and target.respond is None:
                log.info("retried event for file %s: already answered", file_id)
                return
            await self._send_stored(stored, target)
            return
        limit = int(self.settings.max_audio_bytes)
        size = _as_int(file.get("size"))
        if size is not None and size > limit:
            await self._error(target, self._error_text("too_large"))
            return
        seconds = duration_s(file)
        if seconds is not None and seconds > float(self.settings.max_audio_seconds):
            await self._error(target, self._error_text("too_long"))
            return
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if not url or not token_allowed(url, self.api_base_url):
            log.warning("file %s has no download URL this app may use", file_id)
            await self._error(target, wording.format_error("download_failed", LANG))
            return
        try:
            data = await download_file(self._http(), url, self._token, max_bytes=limit)
        except DownloadTooLarge:
            await self._error(target, self._error_text("too_large"))
            return
        except DownloadFailed as exc:
            log.warning("download of file %s failed: %s", file_id, exc)
            await self._error(target, wording.format_error("download_failed", LANG))
            return
        sender = Sender(PLATFORM, target.user, target.channel, file_id)
        try:
            analysis = await self._analyse_with_notice(data, sender, file, target)
        except InputError as exc:
            log.info("file %s refused: %s", file_id, exc.code)
            await self._error(target, self._error_text(exc.code))
            return
        except Busy as exc:
            wait = max(1, math.ceil(exc.retry_after_s))
            await self._error(target, wording.format_error("busy", LANG, wait=wait))
            return
        except Exception:
            log.exception("analysis of Slack file %s failed", file_id)
            await self._error(target, wording.format_error("internal", LANG))
            return
        if analysis.duplicate:
            # Another delivery of this file got there first and answered.
            if target.respond is not None:
                await self._send_stored(analysis, target)
            return
        await self._post(target.channel, _analysis_text(analysis), thread_ts=target.thread_ts)

    async def _analyse_with_notice(self, data: bytes, sender: Sender, file: dict[str, Any],
                                   target: _Target) -> Analysis:
        seconds = duration_s(file)
        wait = 0.0 if seconds is not None and seconds >= LONG_CLIP_S else self.working_after_s
        job = asyncio.ensure_future(self.service.analyze(data, sender))
        try:
            done, _ = await asyncio.wait({job}, timeout=wait)
            if not done:
                notice = (wording.text("working", LANG, seconds=round(seconds)) if seconds
                          else phrase("working_unknown", LANG))
                await self._notice(target, notice)
            return await job
        finally:
            if not job.done():
                job.cancel()

    async def _send_stored(self, analysis: Analysis, target: _Target) -> None:
        if target.respond is not None:
            await self._respond(target.respond, f"{phrase('already_analysed', LANG)}\n\n"
                                                f"{_analysis_text(analysis)}")
        else:
            # The same file shared again in a new message: answer that message too.
            await self._post(target.channel, _analysis_text(analysis), thread_ts=target.thread_ts)

    def _error_text(self, code: str) -> str:
        s = self.settings
        if code == "too_large":
            return wording.format_error(code, LANG, limit=wording.human_bytes(s.max_audio_bytes))
        if code == "too_long":
            return wording.format_error(code, LANG,
                                        limit=wording.human_seconds(s.max_audio_seconds))
        return wording.format_error(code, LANG)

    # ------------------------------------------------------------------ replies

    async def _post(self, channel: str, text: str, *, thread_ts: str | None = None) -> None:
        try:
            await self.client.chat_postMessage(channel=channel, text=text, thread_ts=thread_ts,
                                               unfurl_links=False, unfurl_media=False)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("chat.postMessage to %s failed: %s", channel, _api_error(exc))

    async def _respond(self, respond: AsyncRespond, text: str, **extra: Any) -> None:
        try:
            await respond(text=text, response_type="ephemeral", **extra)
        except Exception as exc:  # response_url expired (30 min) or unreachable
            log.warning("response_url reply failed: %s", type(exc).__name__)

    async def _error(self, target: _Target, text: str) -> None:
        """A refusal: in the message's thread, or to the caller of /voicemood last."""
        if target.respond is not None:
            await self._respond(target.respond, text)
        else:
            await self._post(target.channel, text, thread_ts=target.thread_ts)

    async def _notice(self, target: _Target, text: str) -> None:
        """A progress note: same place as errors."""
        await self._error(target, text)

    async def _tell_user(self, target: _Target, text: str) -> None:
        """A note only the sender needs (e.g. a PDF shared in a channel is "not audio").

        In a channel it is ephemeral, so the app never clutters a conversation about files
        that were not meant for it; in a direct message it is a normal thread reply.
        """
        if target.respond is not None:
            await self._respond(target.respond, text)
        elif target.direct:
            await self._post(target.channel, text, thread_ts=target.thread_ts)
        else:
            try:
                await self.client.chat_postEphemeral(channel=target.channel, user=target.user,
                                                     text=text, thread_ts=target.thread_ts)
            except (SlackApiError, SlackClientError) as exc:
                log.warning("chat.postEphemeral to %s failed: %s", target.channel,
                            _api_error(exc))

    # ------------------------------------------------------------------ commands

    async def _on_voicemood(self, ack: Any, command: dict[str, Any], respond: AsyncRespond) -> None:
        word, _, rest = (command.get("text") or "").strip().partition(" ")
        word = word.lower()
        if word in ("", "help"):
            await _ack_private(ack, wording.help_text(commands(LANG), LANG))
        elif word == "last":
            await _ack_private(ack, phrase("looking_last", LANG))
            self.spawn(self._last(command, respond), f"last:{command.get('user_id')}")
        elif word == "forget":
            await self._ask_forget(ack, command)
        elif word == "trend":
            await self._start_trend(ack, command, respond, rest)
        else:
            await _ack_private(ack, phrase("unknown_command", LANG,
                                           word=wording.escape(word, "mrkdwn"))
                               + "\n\n" + commands(LANG))

    async def _on_trend(self, ack: Any, command: dict[str, Any], respond: AsyncRespond) -> None:
        await self._start_trend(ack, command, respond, command.get("text") or "")

    async def _last(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        channel = str(command.get("channel_id") or "")
        user = str(command.get("user_id") or "")
        try:
            resp = await self.client.files_list(channel=channel, user=user,
                                                count=LAST_SEARCH_COUNT)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("files.list in %s failed: %s", channel, _api_error(exc))
            await self._respond(respond, wording.format_error("download_failed", LANG))
            return
        files = sorted((f for f in resp.get("files") or [] if isinstance(f, dict)),
                       key=lambda f: _as_int(f.get("created")) or 0, reverse=True)
        latest = next((f for f in files if f.get("user", user) == user and is_audio_file(f)),
                      None)
        if latest is None:
            await self._respond(respond, phrase("no_recent_audio", LANG))
            return
        # files.list gives a compact object: files.info adds the shares (the message to
        # answer in) and the download URL.
        file = await self._file_info(latest) or latest
        target = _Target(channel=channel, user=user, thread_ts=message_ts(file, channel),
                         respond=respond)
        await self._process_file(file, target, retry=False)

    async def _ask_forget(self, ack: Any, command: dict[str, Any]) -> None:
        user = str(command.get("user_id") or "")
        count = await self.service.store.count(PLATFORM, user)
        if count == 0:
            await _ack_private(ack, wording.text("forget_nothing", LANG))
            return
        question = wording.text("forget_confirm", LANG, count=count)
        await _ack_private(ack, question, blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": question}},
            {"type": "actions", "block_id": "voicemood_forget", "elements": [
                {"type": "button", "action_id": FORGET_YES, "style": "danger", "value": "yes",
                 "text": {"type": "plain_text", "text": wording.text("forget_yes", LANG)}},
                {"type": "button", "action_id": FORGET_NO, "value": "no",
                 "text": {"type": "plain_text", "text": wording.text("forget_no", LANG)}},
            ]},
        ])

    async def _on_forget_yes(self, ack: Any, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        # Whoever clicked is who gets forgotten: the button carries no user id to trust.
        user = str((body.get("user") or {}).get("id") or "")
        self.spawn(self._forget(user, respond), f"forget:{user}")

    async def _forget(self, user: str, respond: AsyncRespond) -> None:
        deleted = await self.service.store.forget(PLATFORM, user) if user else 0
        text = (wording.text("forget_done", LANG, count=deleted) if deleted
                else wording.text("forget_nothing", LANG))
        log.info("forgot %d analyses of a Slack user", deleted)
        await self._respond(respond, text, replace_original=True)

    async def _on_forget_no(self, ack: Any, respond: AsyncRespond) -> None:
        await ack()
        self.spawn(self._respond(respond, wording.text("forget_cancelled", LANG),
                                 replace_original=True), "forget-cancel")

    async def _start_trend(self, ack: Any, command: dict[str, Any], respond: AsyncRespond,
                           arg: str) -> None:
        try:
            days = parse_period(arg)
        except ValueError as exc:
            await _ack_private(ack, wording.escape(str(exc), "mrkdwn"))
            return
        await _ack_private(ack, phrase("trend_working", LANG))
        self.spawn(self._trend(str(command.get("user_id") or ""), days, respond),
                   f"trend:{command.get('user_id')}")

    async def _trend(self, user: str, days: int, respond: AsyncRespond) -> None:
        try:
            report = await build_trend(self.service.store, PLATFORM, user, days=days,
                                       tz=self.settings.tz, lang=LANG)
        except Exception:
            log.exception("trend for a Slack user failed")
            await self._respond(respond, wording.format_error("internal", LANG))
            return
        text = wording.escape(report.text, "mrkdwn")
        if report.png and await self._send_chart(user, days, report.png):
            text += "\n\n" + phrase("chart_sent", LANG)
        await self._respond(respond, text)

    async def _send_chart(self, user: str, days: int, png: bytes) -> bool:
        """Upload the chart into the user's DM with the app, which keeps it private."""
        try:
            opened = await self.client.conversations_open(users=user)
            channel = str((opened.get("channel") or {}).get("id") or "")
            await self.client.files_upload_v2(
                channel=channel, file=png, filename=f"voicemood-trend-{days}d.png",
                title=phrase("chart_title", LANG, days=days))
        except (SlackApiError, SlackClientError) as exc:
            log.warning("sending the trend chart failed: %s", _api_error(exc))
            return False
        return True


# ---------------------------------------------------------------------- helpers


def _drop_token_unused(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()


def _from_a_person(event: dict[str, Any], context: Any) -> bool:
    """False for bots (this app included), Slackbot and system messages."""
    if event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message":
        return False
    user = event.get("user")
    if not user or user == "USLACKBOT":
        return False
    return user != getattr(context, "bot_user_id", None)


async def _ack_private(ack: Any, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    """Answer a slash command in the HTTP response, visible to the caller only."""
    await ack(text=text, blocks=blocks, response_type="ephemeral")


def _retry_num(request: AsyncBoltRequest) -> int:
    values = request.headers.get("x-slack-retry-num") or []
    try:
        return int(values[0]) if values else 0
    except ValueError:
        return 0


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _api_error(exc: Exception) -> str:
    """A loggable, token-free description of a Slack API failure."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return redact(type(exc).__name__)


def _analysis_text(analysis: Analysis) -> str:
    return wording.format_analysis(analysis, wording.lang_of(analysis.language), "mrkdwn")


# ---------------------------------------------------------------------- entry points


def build_app(service: Any, settings: Any, *, client: AsyncWebClient | None = None) -> AsyncApp:
    """The Bolt app with every voicemood listener registered (see :class:`SlackBot`)."""
    return SlackBot(service, settings, client=client).app


def build_web_app(bot: SlackBot) -> web.Application:
    """The aiohttp application of HTTP mode: ``POST /slack/events`` and ``GET /healthz``."""

    async def events(request: web.Request) -> web.Response:
        bolt_response = await bot.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.add_routes([web.post(EVENTS_PATH, events), web.get(HEALTH_PATH, health)])
    return web_app


async def serve_slack(service: Any, settings: Any, *, bot: SlackBot | None = None,
                      host: str = "0.0.0.0") -> None:
    """Run the Slack app until cancelled: Socket Mode with SLACK_APP_TOKEN, else HTTP.

    HTTP mode listens on ``SLACK_PORT`` (``0`` picks a free port, see ``bot.http_port``)
    and refuses to start without SLACK_SIGNING_SECRET, since it could not tell Slack's
    requests from forged ones.
    """
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    secret = (settings.slack_signing_secret.get_secret_value()
              if settings.slack_signing_secret else "")
    if not app_token and not secret:
        raise RuntimeError(
            "Slack: set SLACK_SIGNING_SECRET (HTTP Events API) or SLACK_APP_TOKEN (Socket "
            "Mode); refusing to accept unsigned requests")
    bot = bot or SlackBot(service, settings)
    try:
        if app_token:
            await _run_socket_mode(bot, app_token)
        else:
            await _run_http(bot, host, int(settings.slack_port))
    finally:
        await bot.close()


async def _run_socket_mode(bot: SlackBot, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bot.app, app_token)
    try:
        await handler.connect_async()
        bot.ready.set()
        log.info("Slack: connected in Socket Mode")
        await asyncio.Event().wait()  # until cancelled
    finally:
        with contextlib.suppress(Exception):
            await handler.close_async()


async def _run_http(bot: SlackBot, host: str, port: int) -> None:
    runner = web.AppRunner(build_web_app(bot), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host=host, port=port)
        await site.start()
        bot.http_port = runner.addresses[0][1] if runner.addresses else port
        bot.ready.set()
        log.info("Slack: HTTP Events API on port %s, path %s", bot.http_port, EVENTS_PATH)
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
