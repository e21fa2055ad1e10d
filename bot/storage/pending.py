"""The pending-notes repository: voice notes accepted but not yet answered.

A front end records a note before it acknowledges the platform, with what it needs to fetch
the audio again (the audio itself is never stored), and completes it once the answer is
sent; the next run claims what an earlier run left (see :mod:`bot.core.pending` for the
resume sweep). Each row belongs to the run that recorded or claimed it (a random ``run_id``
per process), so a note being handled right now is never taken by the sweep of the same
process. The table is made by migration 3 in :mod:`bot.storage.schema`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bot.analysis import Sender

if TYPE_CHECKING:
    import aiosqlite

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


class PendingNotes:
    """The pending-notes table, on the history's connection (reach it as ``store.pending``).

    The pending rows live in the history file and go through its one connection: one writer
    per file, and an analysis and its pending row are written in the same order.
    """

    def __init__(self, conn: aiosqlite.Connection, run_id: str | None = None) -> None:
        self._conn = conn
        #: This process's mark on the rows it owns.
        self.run_id = run_id or uuid.uuid4().hex

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
