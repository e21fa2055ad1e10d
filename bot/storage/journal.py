"""The mood journal's own rows: weekly digest schedules and per-person privacy choices.

They live in the history database (tables made by migration 2 in :mod:`bot.storage.schema`) and go
through the history's one connection, so journal writes and analysis writes share one
transaction order and a single ``busy_timeout``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiosqlite


@dataclass(frozen=True)
class DigestSchedule:
    """One person's weekly digest: when (local ``weekday`` 0=Mon, ``minute`` after midnight
    in ``tz``), where (``chat_id``: their private chat or DM) and the next due time."""

    platform: str
    user_id: str
    chat_id: str
    weekday: int
    minute: int
    tz: str
    lang: str = "en"
    enabled: bool = False
    next_at: float | None = None  # unix seconds of the next digest; None when off

    @property
    def hhmm(self) -> str:
        """The local time as ``HH:MM``."""
        return f"{self.minute // 60:02d}:{self.minute % 60:02d}"


class JournalStore:
    """Digest schedules and privacy choices, on an open
    :class:`~bot.storage.history.HistoryStore` (reach it as ``store.journal``)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        # The journal tables are part of the same database: no second connection, no second
        # writer racing the first.
        self._conn = conn

    # -- digest schedules ---------------------------------------------------------------

    async def schedule(self, platform: str, user_id: str) -> DigestSchedule | None:
        """The person's schedule (on or off), if they ever set one."""
        async with self._conn.execute(
            "SELECT platform, user_id, chat_id, weekday, minute, tz, lang, enabled, next_at"
            " FROM digest_schedules WHERE platform=? AND user_id=?",
            (platform, str(user_id)),
        ) as cur:
            row = await cur.fetchone()
        return _schedule(row) if row else None

    async def save_schedule(self, s: DigestSchedule) -> None:
        """Insert or replace the person's schedule."""
        await self._conn.execute(
            "INSERT INTO digest_schedules (platform, user_id, chat_id, weekday, minute, tz, lang,"
            " enabled, next_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (platform, user_id) DO UPDATE SET chat_id=excluded.chat_id,"
            " weekday=excluded.weekday, minute=excluded.minute, tz=excluded.tz,"
            " lang=excluded.lang, enabled=excluded.enabled, next_at=excluded.next_at,"
            " updated_at=excluded.updated_at",
            (s.platform, str(s.user_id), str(s.chat_id), s.weekday, s.minute, s.tz, s.lang,
             int(s.enabled), s.next_at, time.time()),
        )
        await self._conn.commit()

    async def due(self, platform: str, now: float) -> list[DigestSchedule]:
        """Switched-on schedules of ``platform`` whose next digest is at or before ``now``."""
        async with self._conn.execute(
            "SELECT platform, user_id, chat_id, weekday, minute, tz, lang, enabled, next_at"
            " FROM digest_schedules WHERE platform=? AND enabled=1 AND next_at <= ?"
            " ORDER BY next_at",
            (platform, float(now)),
        ) as cur:
            rows = await cur.fetchall()
        return [_schedule(r) for r in rows]

    async def next_due_at(self, platform: str) -> float | None:
        """The earliest next digest of ``platform`` (unix seconds), None when none is on."""
        async with self._conn.execute(
            "SELECT MIN(next_at) FROM digest_schedules WHERE platform=? AND enabled=1",
            (platform,),
        ) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def set_next(self, platform: str, user_id: str, next_at: float) -> None:
        """Move the person's next digest to ``next_at``."""
        await self._conn.execute(
            "UPDATE digest_schedules SET next_at=?, updated_at=? WHERE platform=? AND user_id=?",
            (float(next_at), time.time(), platform, str(user_id)),
        )
        await self._conn.commit()

    async def switch_off(self, platform: str, user_id: str) -> bool:
        """Stop the person's digest. Returns whether one was on."""
        cur = await self._conn.execute(
            "UPDATE digest_schedules SET enabled=0, next_at=NULL, updated_at=?"
            " WHERE platform=? AND user_id=? AND enabled=1",
            (time.time(), platform, str(user_id)),
        )
        await self._conn.commit()
        return cur.rowcount == 1

    # -- privacy ------------------------------------------------------------------------

    async def keeps_transcripts(self, platform: str, user_id: str) -> bool:
        """Whether new notes of this person are stored with their transcript (the default)."""
        async with self._conn.execute(
            "SELECT store_transcripts FROM privacy_prefs WHERE platform=? AND user_id=?",
            (platform, str(user_id)),
        ) as cur:
            row = await cur.fetchone()
        return bool(row[0]) if row else True

    async def set_keep_transcripts(self, platform: str, user_id: str, keep: bool) -> None:
        """Record the person's choice for new notes."""
        await self._conn.execute(
            "INSERT INTO privacy_prefs (platform, user_id, store_transcripts, updated_at)"
            " VALUES (?,?,?,?) ON CONFLICT (platform, user_id) DO UPDATE SET"
            " store_transcripts=excluded.store_transcripts, updated_at=excluded.updated_at",
            (platform, str(user_id), int(keep), time.time()),
        )
        await self._conn.commit()


def _schedule(row: aiosqlite.Row | tuple) -> DigestSchedule:
    return DigestSchedule(
        platform=row[0], user_id=row[1], chat_id=row[2], weekday=int(row[3]),
        minute=int(row[4]), tz=row[5], lang=row[6], enabled=bool(row[7]),
        next_at=float(row[8]) if row[8] is not None else None,
    )
