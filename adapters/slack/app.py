"""Serving the Slack app: HTTP mode (aiohttp, ``POST /slack/events``) or Socket Mode."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import journal
from adapters.slack.bot import SlackBot
from adapters.slack.pending import resume_slack

if TYPE_CHECKING:
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)

#: Where Slack sends events, slash commands and button clicks in HTTP mode.
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def build_app(service: AnalysisService, settings: Settings, *,
              client: AsyncWebClient | None = None) -> AsyncApp:
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


async def serve_slack(service: AnalysisService, settings: Settings, *,
                      bot: SlackBot | None = None,
                      host: str = "0.0.0.0") -> None:
    """Run the Slack app until cancelled: Socket Mode with SLACK_APP_TOKEN, else HTTP.

    Files an earlier run left pending are answered first, in the background (see
    :mod:`adapters.slack.pending`). HTTP mode listens on ``SLACK_PORT`` (``0`` picks a free
    port, see ``bot.http_port``) and refuses to start without SLACK_SIGNING_SECRET, since it
    could not tell Slack's requests from forged ones.
    """
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    secret = (settings.slack_signing_secret.get_secret_value()
              if settings.slack_signing_secret else "")
    if not app_token and not secret:
        raise RuntimeError(
            "Slack: set SLACK_SIGNING_SECRET (HTTP Events API) or SLACK_APP_TOKEN (Socket "
            "Mode); refusing to accept unsigned requests")
    bot = bot or SlackBot(service, settings)
    digests = asyncio.create_task(journal.scheduler(bot.deps).run(), name="slack:digests")
    # Files an earlier run acknowledged and never answered (it died): answered now, once.
    resumer = bot.resumer = asyncio.create_task(resume_slack(bot.deps), name="slack:resume")
    try:
        if app_token:
            await _run_socket_mode(bot, app_token)
        else:
            await _run_http(bot, host, int(settings.slack_port))
    finally:
        digests.cancel()
        resumer.cancel()
        await asyncio.gather(digests, resumer, return_exceptions=True)
        await bot.close()


async def _run_socket_mode(bot: SlackBot, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bot.app, app_token)
    try:
        await handler.connect_async()
        bot.ready.set()
        log.info("connected in Socket Mode")
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
        log.info("HTTP Events API on port %s, path %s", bot.http_port, EVENTS_PATH)
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
