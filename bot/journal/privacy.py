"""What is kept about a person: the per-person "transcripts off" choice and the operator's
retention period.

* **Transcripts off** (``/privacy transcripts off``): new notes of that person are stored
  with the tags, scores, readings, language, duration and time, but with an empty
  transcript and no audio fingerprint. The reply to the note still shows the transcript:
  it is made from the analysis in memory, before the slim copy is stored. Notes stored
  before the switch keep their transcript until ``/forget`` or retention removes them.
* **Retention** (``VOICEMOOD_RETENTION_DAYS``, 0 = keep everything): analyses whose time
  is more than that many days (of 24 hours) ago are deleted when the service starts and
  then once a day, for every person on every platform.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.clock import Clock, SystemClock

if TYPE_CHECKING:
    from bot.analysis import Analysis, Sender
    from bot.storage.history import HistoryStore

log = logging.getLogger(__name__)

#: How often retention runs after the purge at start.
RETENTION_EVERY_S = 24 * 3600.0
DAY_S = 24 * 3600.0


def without_transcript(analysis: Analysis) -> Analysis:
    """The copy of ``analysis`` that is stored when transcripts are off."""
    return replace(analysis, transcript="", audio_sha256="")


async def add_as_chosen(store: HistoryStore, sender: Sender, analysis: Analysis) -> bool:
    """Store ``analysis`` for ``sender`` as their privacy choice says.

    ``analysis`` itself keeps its transcript (it is what the reply is made from) and
    receives the stored row's id, sender and time. Returns False when that message was
    stored before, as :meth:`HistoryStore.add` does.
    """
    if await store.journal.keeps_transcripts(sender.platform, sender.user_id):
        return await store.add(sender, analysis)
    slim = without_transcript(analysis)
    added = await store.add(sender, slim)
    if added:
        analysis.id, analysis.sender, analysis.created_at = slim.id, slim.sender, slim.created_at
    return added


async def purge_expired(store: HistoryStore, days: int, now: float) -> int:
    """Delete every analysis stored more than ``days`` days before ``now`` (unix seconds).

    Returns the number of rows deleted; ``days <= 0`` keeps everything.
    """
    if days <= 0:
        return 0
    return await store.purge_before(float(now) - days * DAY_S)


class Retention:
    """Runs :func:`purge_expired` now and then every :data:`RETENTION_EVERY_S` seconds."""

    def __init__(self, store: HistoryStore, days: int, clock: Clock | None = None) -> None:
        self.store = store
        self.days = int(days)
        self.clock = clock or SystemClock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Purge once (before the caller serves anyone), then keep purging daily in the
        background. Returns how many rows the first purge deleted."""
        if self.days <= 0:
            return 0
        deleted = await self.run_once()
        self._task = asyncio.create_task(self._loop(), name="voicemood:retention")
        return deleted

    async def run_once(self) -> int:
        """One purge at the clock's current time."""
        deleted = await purge_expired(self.store, self.days, self.clock.now().timestamp())
        if deleted:
            log.info("retention: deleted %d analyses older than %d days", deleted, self.days)
        return deleted

    async def _loop(self) -> None:
        while True:
            await self.clock.sleep(RETENTION_EVERY_S)
            try:
                await self.run_once()
            except Exception:  # a locked or full disk today must not end tomorrow's purge
                log.exception("retention purge failed; trying again in a day")

    async def stop(self) -> None:
        """Stop the daily purge."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
