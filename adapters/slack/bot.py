"""The Slack bot: the Bolt app, its Web API client (with retries), a download session and
the background tasks that do the work after each ack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.commands import Commands
from adapters.slack.events import WORKING_AFTER_S, FileEvents
from adapters.slack.journal import SlackJournal
from adapters.slack.replies import Replies
from bot.core.intake import concurrent_notes
from bot.ops.logs import add_secrets, redact

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.core.pending import ResumeReport
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)

#: Retries of one Web API call: after a 429 (waiting ``Retry-After``), a 500/503, or a
#: dropped connection. A reply that fails all of them is logged, not raised.
API_RETRIES = 3


def make_client(token: str, base_url: str) -> AsyncWebClient:
    """The Web API client, retrying rate limits, server errors and connection errors."""
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=[
        AsyncConnectionErrorRetryHandler(max_retry_count=API_RETRIES),
        AsyncRateLimitErrorRetryHandler(max_retry_count=API_RETRIES),
        AsyncServerErrorRetryHandler(max_retry_count=API_RETRIES),
    ])


class SlackBot:
    """The Bolt app plus what it needs to answer: the service, a download session, tasks.

    ``max_tasks`` caps the messages worked on at once (default: a full engine queue plus
    headroom, as for Telegram's concurrent updates).
    """

    def __init__(self, service: AnalysisService, settings: Settings, *,
                 client: AsyncWebClient | None = None,
                 working_after_s: float = WORKING_AFTER_S,
                 max_tasks: int | None = None, clock: Clock | None = None) -> None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        if not token:
            raise ValueError("SLACK_BOT_TOKEN is not set")
        base_url = settings.slack_api_base_url or "https://slack.com/api/"
        if not base_url.endswith("/"):
            base_url += "/"  # slack_sdk joins method names onto it
        self.service = service
        self.settings = settings
        self.working_after_s = working_after_s
        self.max_tasks = max_tasks or concurrent_notes(settings)
        self.api_base_url = base_url
        self.client = client or make_client(token, base_url)
        self.token = self.client.token or token  # downloads use the token the API calls use
        add_secrets(self.token, settings.slack_signing_secret, settings.slack_app_token)
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
        #: ``serve_slack``'s sweep of the files earlier runs left pending (adapters/slack/
        #: pending.py), kept apart from the per-event tasks so ``busy`` still means those.
        self.resumer: asyncio.Task[ResumeReport] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.replies = Replies(self.client)
        self.files = FileEvents(self)
        self.commands = Commands(self)
        self.files.register()
        self.commands.register()
        #: /voicemood export|digest|privacy, the message shortcut, the weekly digests.
        self.journal = SlackJournal(self, clock)
        self.journal.register()

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

    def http(self) -> aiohttp.ClientSession:
        """The session file downloads use (made on first use, inside the event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session


def _drop_token_unused(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()
