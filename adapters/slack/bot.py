"""The Slack bot: the Bolt app, its Web API client (with retries), and the listener modules
registered on it with the shared :class:`~adapters.slack.deps.SlackDeps` (the service, a
download session, the background tasks that do the work after each ack).

This module only assembles: the listener modules never import it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import commands, events, journal
from adapters.slack.constants import WORKING_AFTER_S
from adapters.slack.deps import SlackDeps
from bot.core.intake import concurrent_notes
from bot.journal.operations import Journal
from bot.ops.logs import add_secrets

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
    """The Bolt app plus what its listeners share (:attr:`deps`).

    ``max_tasks`` caps the messages worked on at once (default: a full engine queue plus
    headroom, as for Telegram's concurrent updates); ``working_after_s`` is the wait before
    "transcribing…" (tests); ``clock`` drives the weekly digests.
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
        self.client = client or make_client(token, base_url)
        add_secrets(self.client.token or token, settings.slack_signing_secret,
                    settings.slack_app_token)
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
        #: ``serve_slack``'s sweep of the files earlier runs left pending (adapters/slack/
        #: pending.py), kept apart from the per-event tasks so ``busy`` still means those.
        self.resumer: asyncio.Task[ResumeReport] | None = None
        self.deps = SlackDeps(
            service=service, settings=settings, client=self.client,
            token=self.client.token or token,  # downloads use the token the API calls use
            api_base_url=base_url, journal=Journal(service, clock),
            working_after_s=working_after_s,
            max_tasks=max_tasks or concurrent_notes(settings))
        events.register(self.app, self.deps)
        commands.register(self.app, self.deps)
        #: /voicemood export|digest|privacy, the message shortcut, the weekly digests.
        journal.register(self.app, self.deps)

    @property
    def busy(self) -> bool:
        """Whether background work is still running."""
        return self.deps.busy

    async def idle(self) -> None:
        """Wait until every background task (and those they started) has finished.

        Callers bound the wait themselves (``asyncio.timeout``).
        """
        await self.deps.idle()

    async def close(self) -> None:
        """Cancel background work and close the download session."""
        await self.deps.close()


def _drop_token_unused(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()
