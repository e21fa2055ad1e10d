"""Voice notes accepted but not yet answered, kept in the history database.

A front end :meth:`~PendingNotes.record`\\ s a note before it acknowledges the platform
(Telegram's update offset, Slack's ack), with what it needs to fetch the audio again: the
audio itself is never stored. When the answer has been sent it calls
:meth:`~PendingNotes.complete`. A process that dies in between leaves the row behind; the
next ``voicemood serve`` :meth:`~PendingNotes.claim`\\ s every row an earlier run left,
fetches and answers it, and apologises for the ones older than
``VOICEMOOD_PENDING_MAX_AGE_S`` instead (:meth:`~PendingNotes.list_stale`).

Each row belongs to the run that recorded or claimed it (a random ``run_id`` per process),
so a note being handled right now is never taken by the resume sweep of the same process.
One ``serve`` per database file, as for the history itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bot.analysis import Sender

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import aiosqlite

    from bot.store import HistoryStore

#: The table, created by the history's migration list (bot/store.py, "pending notes").
MIGRATION = """
    CREATE TABLE IF NOT EXISTS pending_notes (
        platform    TEXT    NOT NULL,
        user_id     TEXT    NOT NULL,
        chat_id     TEXT    NOT NULL,
        message_id  TEXT    NOT NULL,
        lang        TEXT    NOT NULL DEFAULT 'en',
        ref         TEXT    NOT NULL DEFAULT '{}',
        received_at REAL    NOT NULL,
        run_id      TEXT    NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (platform, chat_id, message_id)
    );
    CREATE INDEX IF NOT EXISTS idx_pending_received ON pending_notes (platform, received_at);
    """

_COLUMNS = "platform, user_id, chat_id, message_id, lang, ref, received_at, attempts"


@dataclass(frozen=True)
class PendingNote:
    """One accepted note that has not been answered yet.

    ``ref`` is the platform's handle to fetch the audio again (Telegram: ``file_id``;
    Slack: ``file_id`` and ``url``) plus whatever the reply needs (a thread, a channel).
    ``attempts`` counts the runs that claimed it after the one that received it.
    """

    sender: Sender
    ref: dict[str, Any] = field(default_factory=dict)
    lang: str = "en"
    received_at: float = 0.0
    attempts: int = 0

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the note was received."""
        return (time.time() if now is None else now) - self.received_at


def _connection(store: HistoryStore) -> aiosqlite.Connection:
    # The pending rows live in the history file and go through its one connection: one
    # writer per file, and an analysis and its pending row are written in the same order.
    return store._conn


class PendingNotes:
    """The pending-notes table on an open :class:`~bot.store.HistoryStore`."""

    def __init__(self, store: HistoryStore, run_id: str | None = None) -> None:
        self._store = store
        #: This process's mark on the rows it owns.
        self.run_id = run_id or uuid.uuid4().hex

    @property
    def _conn(self) -> aiosqlite.Connection:
        return _connection(self._store)

    async def record(self, sender: Sender, ref: dict[str, Any], lang: str = "en", *,
                     received_at: float | None = None) -> bool:
        """Remember an accepted note; call before acknowledging the platform.

        Returns False when the note was recorded before (a redelivery): the row, its
        owner and its receipt time stay as they were.
        """
        cur = await self._conn.execute(
            "INSERT OR IGNORE INTO pending_notes (platform, user_id, chat_id, message_id, lang,"
            " ref, received_at, run_id) VALUES (?,?,?,?,?,?,?,?)",
            (sender.platform, str(sender.user_id), str(sender.chat_id), str(sender.message_id),
             lang, json.dumps(ref, ensure_ascii=False),
             time.time() if received_at is None else float(received_at), self.run_id),
        )
        await self._conn.commit()
        return cur.rowcount == 1

    async def complete(self, sender: Sender) -> bool:
        """Forget a note once its answer (analysis, refusal or apology) has been sent.

        Returns False when it was not pending (answered before).
        """
        cur = await self._conn.execute(
            "DELETE FROM pending_notes WHERE platform=? AND chat_id=? AND message_id=?",
            (sender.platform, str(sender.chat_id), str(sender.message_id)),
        )
        await self._conn.commit()
        return cur.rowcount == 1

    async def claim(self, platform: str) -> list[PendingNote]:
        """Take over the notes of ``platform`` that earlier runs left unanswered, oldest first.

        They become this run's (so a second sweep does not return them again) and their
        ``attempts`` grows by one: a note that crashes every run can be given up on.
        """
        orphans = await self._select("WHERE platform=? AND run_id<>? ORDER BY received_at",
                                     (platform, self.run_id))
        await self._conn.executemany(
            "UPDATE pending_notes SET run_id=?, attempts=attempts+1"
            " WHERE platform=? AND chat_id=? AND message_id=? AND run_id<>?",
            [(self.run_id, n.sender.platform, n.sender.chat_id, n.sender.message_id,
              self.run_id) for n in orphans],
        )
        await self._conn.commit()
        return [replace(n, attempts=n.attempts + 1) for n in orphans]

    async def list_stale(self, platform: str, max_age_s: float,
                         now: float | None = None) -> list[PendingNote]:
        """Pending notes of ``platform`` received more than ``max_age_s`` ago, oldest first."""
        cutoff = (time.time() if now is None else now) - max_age_s
        return await self._select("WHERE platform=? AND received_at<? ORDER BY received_at",
                                  (platform, cutoff))

    async def get(self, sender: Sender) -> PendingNote | None:
        """The pending row of one message, if it is pending."""
        rows = await self._select("WHERE platform=? AND chat_id=? AND message_id=?",
                                  (sender.platform, str(sender.chat_id),
                                   str(sender.message_id)))
        return rows[0] if rows else None

    async def count(self) -> int:
        """How many notes are pending, on every platform."""
        async with self._conn.execute("SELECT COUNT(*) FROM pending_notes") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _select(self, where: str, params: tuple[Any, ...]) -> list[PendingNote]:
        async with self._conn.execute(f"SELECT {_COLUMNS} FROM pending_notes {where}",
                                      params) as cur:
            rows = await cur.fetchall()
        return [
            PendingNote(
                sender=Sender(r[0], r[1], r[2], r[3]),
                lang=r[4],
                ref=json.loads(r[5]) if r[5] else {},
                received_at=float(r[6]),
                attempts=int(r[7]),
            )
            for r in rows
        ]


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
    """The pending-notes table of a running ``AnalysisService`` (one per service, so one
    ``run_id`` per process); front ends reach it here, never through the store."""
    notes = getattr(service, "_pending_notes", None)
    if notes is None:
        notes = PendingNotes(service.store)
        service._pending_notes = notes
    return notes
