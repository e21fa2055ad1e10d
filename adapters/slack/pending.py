"""Answering, after a restart, the Slack files an earlier ``serve`` acknowledged and never
answered (see :mod:`bot.core.pending`): each goes through the one note use-case again with a
:class:`~adapters.slack.notes.SlackNotePort` answering in its message's thread."""

from __future__ import annotations

from adapters.slack.constants import PLATFORM
from adapters.slack.deps import SlackDeps
from adapters.slack.notes import SlackNotePort
from adapters.slack.replies import Target
from bot.core.notes import Note
from bot.core.pending import PendingNote, ResumeReport, note_of, resume


def _target(pending: PendingNote) -> Target:
    ref = pending.ref
    return Target(channel=pending.sender.chat_id, user=pending.sender.user_id,
                  thread_ts=ref.get("thread_ts") or None, direct=bool(ref.get("direct")))


async def resume_slack(deps: SlackDeps) -> ResumeReport:
    """Answer every Slack file an earlier run left pending, exactly once."""

    def port_for(pending: PendingNote) -> tuple[Note, SlackNotePort]:
        return note_of(pending), SlackNotePort(deps, _target(pending))

    return await resume(deps.service, PLATFORM, port_for,
                        max_age_s=deps.settings.pending_max_age_s,
                        progress_after_s=deps.working_after_s)
