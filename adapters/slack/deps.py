"""What every Slack listener gets: the service, settings, the Web API client and its
replies, the download session, and the background tasks that do the work after each ack.

Listener modules receive one :class:`SlackDeps` in their ``register(app, deps)``; Bolt
injects ``ack``, ``respond``, ``client`` and ``logger`` into the listeners by name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.replies import Replies, api_error
from bot.journal.operations import Journal
from bot.ops.logs import redact

if TYPE_CHECKING:
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SlackDeps:
    """The shared parts of one Slack app (made by :class:`adapters.slack.bot.SlackBot`)."""

    service: AnalysisService
    settings: Settings
    client: AsyncWebClient
    #: The token file downloads send (the one the API calls use).
    token: str
    api_base_url: str
    journal: Journal
    #: Seconds without a result before "transcribing…" (bot.core.notes.PROGRESS_AFTER_S).
    working_after_s: float
    #: Messages worked on at once; beyond it the sender is told the app is busy.
    max_tasks: int
    replies: Replies = field(init=False)
    #: Messages being worked on now (capped at ``max_tasks``).
    active: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def __post_init__(self) -> None:
        self.replies = Replies(self.client)

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

    async def file_info(self, stub: dict[str, Any]) -> dict[str, Any] | None:
        """The full file object for a stub (``files.info``); None when Slack won't say."""
        file_id = stub.get("id")
        if not file_id:
            return None
        try:
            resp = await self.client.files_info(file=str(file_id))
        except (SlackApiError, SlackClientError) as exc:
            log.warning("files.info %s failed: %s", file_id, api_error(exc))
            return None
        file = resp.get("file")
        return dict(file) if isinstance(file, dict) else None
