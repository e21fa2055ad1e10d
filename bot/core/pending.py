"""Answering, after a restart, the voice notes an earlier run accepted and never answered.

A front end records a note in :attr:`store.pending <bot.storage.pending.PendingNotes>` before
it acknowledges the platform (Telegram's update offset, Slack's ack), with what it needs to
fetch the audio again: the audio itself is never stored. When the answer has been sent it
completes the note. A process that dies in between leaves the row behind; the next
``voicemood serve`` claims every row an earlier run left, fetches and answers it, and
apologises for the ones older than ``VOICEMOOD_PENDING_MAX_AGE_S`` instead.

Each row belongs to the run that recorded or claimed it (a random ``run_id`` per process),
so a note being handled right now is never taken by the resume sweep of the same process.
One ``serve`` per database file, as for the history itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.storage.pending import PendingNote, PendingNotes

log = logging.getLogger(__name__)


@dataclass
class ResumeReport:
    """What :func:`resume` did with the notes an earlier run left."""

    answered: int = 0
    refused: int = 0
    apologised: int = 0
    #: Answered by a redelivery that reached this run's handlers first.
    in_hand: int = 0
    #: Still pending: the audio could not be fetched or analysed this time.
    left: int = 0


#: A note claimed this many times without an answer gets the apology (it may be the note
#: that brought the process down).
MAX_ATTEMPTS = 3
#: Tries per note while the models are busy or the workers unreachable, and the longest
#: wait between them.
BUSY_TRIES = 5
BUSY_WAIT_MAX_S = 30.0
#: Notes resumed at once (they then queue in the pipeline like live ones).
RESUME_AT_ONCE = 8


async def resume(notes: PendingNotes, service: Any, platform: str, *,
                 fetch: Callable[[PendingNote], Awaitable[bytes]],
                 answer: Callable[[PendingNote, Any], Awaitable[None]],
                 apologise: Callable[[PendingNote], Awaitable[None]],
                 max_age_s: float, now: float | None = None) -> ResumeReport:
    """Answer, exactly once, every note of ``platform`` that an earlier run accepted.

    The front end supplies what is platform-specific: ``fetch`` the audio again from the
    note's ``ref``; ``answer`` it with an :class:`~bot.analysis.Analysis` or with the refusal
    (an exception) for the user; ``apologise`` for a note too old (``max_age_s``) or claimed
    more than :data:`MAX_ATTEMPTS` times. Each note is handled under the service's
    :meth:`claim`, like a live delivery: if the platform redelivers it meanwhile, whichever
    comes first answers and the other stays silent. A note whose analysis was stored before
    the crash is answered from the history, not analysed again. A note is completed once its
    answer is sent; one that cannot be fetched or analysed now stays pending.
    """
    from inference.errors import Busy, Unavailable, VoicemoodError

    report = ResumeReport()
    gate = asyncio.Semaphore(RESUME_AT_ONCE)

    async def one(note: PendingNote) -> None:
        async with gate:
            outcome = await _resume_one(note)
        setattr(report, outcome, getattr(report, outcome) + 1)

    async def _resume_one(note: PendingNote) -> str:
        if note.age_s(now) > max_age_s or note.attempts > MAX_ATTEMPTS:
            await apologise(note)
            await notes.complete(note.sender)
            return "apologised"
        for attempt in range(BUSY_TRIES):
            try:
                async with service.claim(note.sender) as claim:
                    if claim.in_flight or await notes.get(note.sender) is None:
                        return "in_hand"  # a live delivery has it, or answered it
                    try:
                        if claim.stored is not None:  # analysed before the crash
                            outcome: Any = claim.stored
                        else:
                            outcome = await claim.analyze(await fetch(note))
                    except (Busy, Unavailable):
                        raise
                    except VoicemoodError as exc:  # the refusal is the answer
                        outcome = exc
                    await answer(note, outcome)
                    await notes.complete(note.sender)
                return "refused" if isinstance(outcome, BaseException) else "answered"
            except (Busy, Unavailable) as exc:
                if attempt + 1 < BUSY_TRIES:
                    await asyncio.sleep(min(exc.retry_after_s, BUSY_WAIT_MAX_S))
            except Exception:
                log.exception("resuming a pending %s note failed; it stays pending", platform)
                break
        return "left"

    await asyncio.gather(*(one(note) for note in await notes.claim(platform)))
    if report != ResumeReport():
        log.info("pending %s notes resumed: %s", platform, report)
    return report


def pending_notes(service: Any) -> PendingNotes:
    """The pending-notes repository of a running ``AnalysisService``'s store (one per store,
    so one ``run_id`` per process)."""
    return service.store.pending
