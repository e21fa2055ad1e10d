"""The Slack front end, on slack-bolt's :class:`~slack_bolt.async_app.AsyncApp`.

It only translates: Slack events and commands in, calls to
:class:`bot.core.service.AnalysisService`, Slack messages out. What it listens to is listed in
``adapters/slack_manifest.yml``; the operator's view is ``docs/slack.md``.

* :mod:`~adapters.slack.app` -- HTTP or Socket Mode, :func:`serve_slack`.
* :mod:`~adapters.slack.bot` -- :class:`SlackBot`: the Bolt app, its client, and the
  listener modules registered with the shared :mod:`~adapters.slack.deps`.
* :mod:`~adapters.slack.events` -- files shared in messages (busy cap, pending record).
* :mod:`~adapters.slack.notes` -- the note port: fetch, reply in the thread, transcript file;
  every file goes through :func:`bot.core.notes.handle`.
* :mod:`~adapters.slack.commands` -- ``/voicemood``, ``/trend``, the forget buttons.
* :mod:`~adapters.slack.journal` -- ``/voicemood export|digest|privacy``, the weekly digest,
  the "Analyse this voice note" shortcut (``SLACK_CHANNEL_MODE``), long transcripts.
* :mod:`~adapters.slack.pending` -- files an earlier run left pending, after a restart.
* :mod:`~adapters.slack.replies`, :mod:`~adapters.slack.files`, :mod:`~adapters.slack.texts`,
  :mod:`~adapters.slack.constants`.

Every request is acknowledged at once (listeners only start background tasks), so Slack's
3-second limit holds whatever the analysis costs. Replies never carry exception text or
tokens: errors become :func:`bot.wording.error_reply` phrases and the details go to the log.
"""

from adapters.slack.app import EVENTS_PATH, build_app, build_web_app, serve_slack
from adapters.slack.bot import SlackBot
from adapters.slack.constants import (
    COMMAND,
    FORGET_NO,
    FORGET_YES,
    TREND_COMMAND,
    WORKING_AFTER_S,
)

#: The message events the manifest subscribes to (all arrive as ``message``).
MESSAGE_EVENTS = ("message.channels", "message.groups", "message.im", "message.mpim")

__all__ = [
    "COMMAND", "EVENTS_PATH", "FORGET_NO", "FORGET_YES", "MESSAGE_EVENTS", "TREND_COMMAND",
    "WORKING_AFTER_S", "SlackBot", "build_app", "build_web_app", "serve_slack",
]
