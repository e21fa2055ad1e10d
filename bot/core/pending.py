"""Answering, after a restart, the voice notes an earlier run accepted and never answered.

A front end records a note in :attr:`store.pending <bot.storage.pending.PendingNotes>` before
it acknowledges the platform (Slack's ack; on Telegram before the work starts, while the
update offset is confirmed only on the next poll, so a note can be both redelivered and
pending), with what it needs to fetch the audio again: the audio itself is never stored.
When the answer has been sent it completes the note. A process that dies in between leaves
the row behind; the next ``voicemood serve`` claims every row an earlier run left and
answers it through the one note use-case (:func:`bot.core.notes.handle`), and apologises
for the ones older than ``VOICEMOOD_PENDING_MAX_AGE_S`` instead.

Each row belongs to the run that recorded or claimed it (a random ``run_id`` per process),
so a note being handled right now is never taken by the resume sweep of the same process.
One ``serve`` per database file, as for the history itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import wording
from bot.core.notes import PROGRESS_AFTER_S, Delivery, Note, NotePort, handle
from bot.storage.pending import PendingNote, PendingNotes
from inference.errors import Busy, Unavailable

if TYPE_CHECKING:
    from bot.core.service import AnalysisService

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
    #: The sender is no longer on the allow-list: told so, nothing analysed.
    not_allowed: int = 0


#: A note claimed this many times without an answer gets the apology (it may be the note
#: that brought the process down).
MAX_ATTEMPTS = 3
#: Tries per note while the models are busy or the workers unreachable, and the longest
#: wait between them.
BUSY_TRIES = 5
BUSY_WAIT_MAX_S = 30.0
#: Notes resumed at once (they then queue in the pipeline like live ones).
RESUME_AT_ONCE = 8

#: The platform's way back to a pending note: its port, and the note as announced.
PortFor = Callable[[PendingNote], tuple[Note, NotePort]]


def note_of(pending: PendingNote) -> Note:
    """The note a pending row stands for (size and length as the platform announced them)."""
    ref = pending.ref
    size, seconds = ref.get("size"), ref.get("duration_s")
    return Note(pending.sender, ref, pending.lang,
                size=int(size) if isinstance(size, int | float) else None,
                duration_s=float(seconds) if isinstance(seconds, int | float) else None)


async def resume(service: AnalysisService, platform: str, port_for: PortFor, *,
                 max_age_s: float, now: float | None = None,
                 progress_after_s: float = PROGRESS_AFTER_S) -> ResumeReport:
    """Answer, exactly once, every note of ``platform`` that an earlier run accepted.

    ``port_for`` gives the platform's :class:`~bot.core.notes.NotePort` for a pending row
    (with the :class:`~bot.core.notes.Note` it stands for, e.g. :func:`note_of`). A note too
    old (``max_age_s``) or claimed more than :data:`MAX_ATTEMPTS` times gets the apology.
    Every other goes through :func:`~bot.core.notes.handle` like a live delivery: if the
    platform redelivers it meanwhile, whichever comes first answers and the other stays
    silent; one analysed before the crash is answered from the history. While the models
    are busy it is tried again (:data:`BUSY_TRIES`); one that cannot be fetched or analysed
    now stays pending for the next run. ``progress_after_s``: see
    :class:`~bot.core.notes.Delivery`.
    """
    notes = service.store.pending
    report = ResumeReport()
    gate = asyncio.Semaphore(RESUME_AT_ONCE)

    async def one(pending: PendingNote) -> None:
        async with gate:
            outcome = await _resume_one(service, notes, pending, port_for, max_age_s, now,
                                        progress_after_s)
        setattr(report, outcome, getattr(report, outcome) + 1)

    await asyncio.gather(*(one(pending) for pending in await notes.claim(platform)))
    if report != ResumeReport():
        log.info("pending %s notes resumed: %s", platform, report)
    return report


async def _resume_one(service: AnalysisService, notes: PendingNotes, pending: PendingNote,
                      port_for: PortFor, max_age_s: float, now: float | None,
                      progress_after_s: float) -> str:
    note, port = port_for(pending)
    if pending.age_s(now) > max_age_s or pending.attempts > MAX_ATTEMPTS:
        await port.send(wording.escape(wording.text("pending_too_old", pending.lang),
                                       port.markup))
        await notes.complete(pending.sender)
        return "apologised"
    delivery = Delivery(repeat_stored=True, resuming=True, progress_after_s=progress_after_s)
    for attempt in range(BUSY_TRIES):
        try:
            return await handle(service, note, port, delivery)
        except (Busy, Unavailable) as exc:
            if attempt + 1 < BUSY_TRIES:
                await asyncio.sleep(min(exc.retry_after_s, BUSY_WAIT_MAX_S))
        except Exception:
            log.exception("resuming a pending %s note failed; it stays pending",
                          pending.sender.platform)
            break
    return "left"


__all__ = ["BUSY_TRIES", "MAX_ATTEMPTS", "PendingNote", "PendingNotes", "PortFor",
           "ResumeReport", "note_of", "resume"]
