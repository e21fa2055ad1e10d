"""Sending to Slack: thread replies, ephemeral notes, answers through ``response_url``.

A failed send is logged (without tokens) and never raises: the caller has nobody else to
tell. ``chat.postMessage`` itself is retried on 429/5xx/connection errors by the client's
retry handlers (see :func:`adapters.slack.bot.make_client`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ops.logs import redact

log = logging.getLogger(__name__)


@dataclass
class Target:
    """Where the answers about one file go."""

    channel: str
    user: str
    thread_ts: str | None
    #: A direct message with the app: nobody else can see the thread anyway.
    direct: bool = False
    #: Set for ``/voicemood last``: notices and errors go to the caller only.
    respond: AsyncRespond | None = None


def api_error(exc: Exception) -> str:
    """A loggable, token-free description of a Slack API failure."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return redact(type(exc).__name__)


class Replies:
    """The ways the app answers, over one Web API client."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post(self, channel: str, text: str, *, thread_ts: str | None = None) -> None:
        """A message in ``channel`` (in the thread of ``thread_ts``)."""
        try:
            await self.client.chat_postMessage(channel=channel, text=text, thread_ts=thread_ts,
                                               unfurl_links=False, unfurl_media=False)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("chat.postMessage to %s failed: %s", channel, api_error(exc))

    async def respond(self, respond: AsyncRespond, text: str, **extra: Any) -> None:
        """An answer only the caller of a command or button sees."""
        try:
            await respond(text=text, response_type="ephemeral", **extra)
        except Exception as exc:  # response_url expired (30 min) or unreachable
            log.warning("response_url reply failed: %s", type(exc).__name__)

    async def to_thread(self, target: Target, text: str) -> None:
        """A result, refusal or progress note: in the message's thread, or to the caller of
        ``/voicemood last``."""
        if target.respond is not None:
            await self.respond(target.respond, text)
        else:
            await self.post(target.channel, text, thread_ts=target.thread_ts)

    async def to_sender(self, target: Target, text: str) -> None:
        """A note only the sender needs (e.g. a PDF shared in a channel is "not audio").

        In a channel it is ephemeral, so the app never clutters a conversation about files
        that were not meant for it; in a direct message it is a normal thread reply.
        """
        if target.respond is not None or target.direct:
            await self.to_thread(target, text)
            return
        try:
            await self.client.chat_postEphemeral(channel=target.channel, user=target.user,
                                                 text=text, thread_ts=target.thread_ts)
        except (SlackApiError, SlackClientError) as exc:
            log.warning("chat.postEphemeral to %s failed: %s", target.channel, api_error(exc))
