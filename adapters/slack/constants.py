"""Names and numbers the Slack listener modules share (so none imports another for them)."""

from __future__ import annotations

from bot.core.notes import PROGRESS_AFTER_S

PLATFORM = "slack"
#: Reply language. Slack only tells a user's locale to apps with users:read, which this app
#: does not ask for; an analysis is answered in the language that was spoken.
LANG = "en"

#: Slash commands and the ids of the forget confirmation's buttons.
COMMAND = "/voicemood"
TREND_COMMAND = "/trend"
FORGET_YES = "voicemood_forget_yes"
FORGET_NO = "voicemood_forget_no"
#: The ``/voicemood`` words the journal module answers.
JOURNAL_WORDS = frozenset({"export", "digest", "privacy"})
#: ``callback_id`` of the message shortcut (see adapters/slack_manifest.yml).
SHORTCUT = "voicemood_analyse"

#: Characters per message Slack recommends (longer text is cut off in some clients).
MESSAGE_LIMIT = 4000
#: "Transcribing…" after this many seconds without a result (Slack shows no "typing…" for
#: bots): the one threshold of :mod:`bot.core.notes`, injectable for tests.
WORKING_AFTER_S = PROGRESS_AFTER_S
#: Files looked at per message (Slack allows 10; more would only queue up behind each other).
MAX_FILES_PER_MESSAGE = 10
#: The wait a busy reply suggests when the app has too many messages in hand (seconds).
BUSY_RETRY_S = 30.0
