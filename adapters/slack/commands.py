"""The Slack commands: ``/voicemood`` (help, ``last``, ``forget``, ``trend``), ``/trend`` and
the two buttons of the forget confirmation.

Every listener acknowledges at once, answering privately (``ephemeral``); slow work runs
after the ack as a tracked task (``deps.spawn``), so Slack's 3-second limit always holds.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack import journal
from adapters.slack.constants import (
    COMMAND,
    FORGET_NO,
    FORGET_YES,
    JOURNAL_WORDS,
    LANG,
    PLATFORM,
    TREND_COMMAND,
)
from adapters.slack.deps import SlackDeps
from adapters.slack.files import is_audio_file, message_ts
from adapters.slack.notes import handle_file
from adapters.slack.replies import Target, api_error
from adapters.slack.texts import commands, phrase
from bot import wording
from bot.trend.summary import parse_period

log = logging.getLogger(__name__)

#: How many of the caller's latest files ``/voicemood last`` looks through.
LAST_SEARCH_COUNT = 20


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Register the slash commands and the forget buttons on ``app``."""

    async def on_voicemood(ack: AsyncAck, command: dict[str, Any],
                           respond: AsyncRespond) -> None:
        """``/voicemood [help|last|forget|trend …]``."""
        await _on_voicemood(deps, ack, command, respond)

    async def on_trend(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        """``/trend [period]``."""
        await _start_trend(deps, ack, command, respond, command.get("text") or "")

    async def on_forget_yes(ack: AsyncAck, body: dict[str, Any],
                            respond: AsyncRespond) -> None:
        """The confirm button: delete whoever clicked (the button carries no id to trust)."""
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        deps.spawn(_forget(deps, user, respond), f"forget:{user}")

    async def on_forget_no(ack: AsyncAck, respond: AsyncRespond) -> None:
        """The cancel button."""
        await ack()
        deps.spawn(deps.replies.respond(respond, wording.text("forget_cancelled", LANG),
                                        replace_original=True), "forget-cancel")

    app.command(COMMAND)(on_voicemood)
    app.command(TREND_COMMAND)(on_trend)
    app.action(FORGET_YES)(on_forget_yes)
    app.action(FORGET_NO)(on_forget_no)


async def _on_voicemood(deps: SlackDeps, ack: AsyncAck, command: dict[str, Any],
                        respond: AsyncRespond) -> None:
    word, _, rest = (command.get("text") or "").strip().partition(" ")
    word = word.lower()
    if word in ("", "help"):
        await _ack_private(ack, wording.help_text(commands(LANG), LANG))
    elif word == "last":
        await _ack_private(ack, phrase("looking_last", LANG))
        deps.spawn(_last(deps, command, respond), f"last:{command.get('user_id')}")
    elif word == "forget":
        await _ask_forget(deps, ack, command)
    elif word == "trend":
        await _start_trend(deps, ack, command, respond, rest)
    elif word in JOURNAL_WORDS:
        await journal.on_command(deps, word, rest, ack, command, respond)
    else:
        await _ack_private(ack, phrase("unknown_command", LANG,
                                       word=wording.escape(word, "mrkdwn"))
                           + "\n\n" + commands(LANG))


async def _last(deps: SlackDeps, command: dict[str, Any], respond: AsyncRespond) -> None:
    channel = str(command.get("channel_id") or "")
    user = str(command.get("user_id") or "")
    try:
        resp = await deps.client.files_list(channel=channel, user=user, count=LAST_SEARCH_COUNT)
    except (SlackApiError, SlackClientError) as exc:
        log.warning("files.list in %s failed: %s", channel, api_error(exc))
        await deps.replies.respond(respond, wording.format_error("download_failed", LANG))
        return
    files = sorted((f for f in resp.get("files") or [] if isinstance(f, dict)),
                   key=lambda f: int(f.get("created") or 0), reverse=True)
    latest = next((f for f in files if f.get("user", user) == user and is_audio_file(f)), None)
    if latest is None:
        await deps.replies.respond(respond, phrase("no_recent_audio", LANG))
        return
    # files.list gives a compact object: files.info adds the shares (the message to
    # answer in) and the download URL.
    file = await deps.file_info(latest) or latest
    target = Target(channel=channel, user=user, thread_ts=message_ts(file, channel),
                    respond=respond)
    await handle_file(deps, file, target)


async def _ask_forget(deps: SlackDeps, ack: AsyncAck, command: dict[str, Any]) -> None:
    user = str(command.get("user_id") or "")
    count = await deps.service.count(PLATFORM, user)
    # A digest schedule or a privacy choice is "stored about you" too, analyses or not.
    if count == 0 and not await deps.service.holds_anything(PLATFORM, user):
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


async def _forget(deps: SlackDeps, user: str, respond: AsyncRespond) -> None:
    held = bool(user) and await deps.service.holds_anything(PLATFORM, user)
    deleted = await deps.service.forget(PLATFORM, user) if held else 0
    text = (wording.text("forget_done", LANG, count=deleted) if held
            else wording.text("forget_nothing", LANG))
    await deps.replies.respond(respond, text, replace_original=True)


async def _start_trend(deps: SlackDeps, ack: AsyncAck, command: dict[str, Any],
                       respond: AsyncRespond, arg: str) -> None:
    try:
        days = parse_period(arg)
    except ValueError as exc:  # parse_period's message is written for the user
        await _ack_private(ack, wording.escape(str(exc), "mrkdwn"))
        return
    await _ack_private(ack, phrase("trend_working", LANG))
    deps.spawn(_trend(deps, str(command.get("user_id") or ""), days, respond),
               f"trend:{command.get('user_id')}")


async def _trend(deps: SlackDeps, user: str, days: int, respond: AsyncRespond) -> None:
    try:
        report = await deps.service.trend(PLATFORM, user, days, LANG)
    except Exception as exc:
        log.exception("trend for a Slack user failed")
        await deps.replies.respond(respond, wording.error_reply(exc, LANG, deps.settings,
                                                                "mrkdwn"))
        return
    text = wording.escape(report.text, "mrkdwn")
    if report.png and await _send_chart(deps, user, days, report.png):
        text += "\n\n" + phrase("chart_sent", LANG)
    await deps.replies.respond(respond, text)


async def _send_chart(deps: SlackDeps, user: str, days: int, png: bytes) -> bool:
    """Upload the chart into the user's DM with the app, which keeps it private."""
    try:
        opened = await deps.client.conversations_open(users=user)
        channel = str((opened.get("channel") or {}).get("id") or "")
        await deps.client.files_upload_v2(channel=channel, file=png,
                                          filename=f"voicemood-trend-{days}d.png",
                                          title=phrase("chart_title", LANG, days=days))
    except (SlackApiError, SlackClientError) as exc:
        log.warning("sending the trend chart failed: %s", api_error(exc))
        return False
    return True


async def _ack_private(ack: AsyncAck, text: str,
                       blocks: list[dict[str, Any]] | None = None) -> None:
    """Answer a slash command in the HTTP response, visible to the caller only."""
    await ack(text=text, blocks=blocks, response_type="ephemeral")
