"""The history database: its one connection, and the analyses repository.

WAL mode so readers (``/trend``) never block the writer; the schema version lives in
``PRAGMA user_version`` and :data:`~bot.storage.schema.MIGRATIONS` brings any older file up
to date. A uniqueness rule on (platform, chat_id, message_id) makes a redelivered message a
no-op. The other repositories share the connection: :attr:`HistoryStore.pending`
(:mod:`bot.storage.pending`) and :attr:`HistoryStore.journal` (:mod:`bot.storage.journal`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from bot.analysis import Analysis, Sender, text_reading_from_json, voice_reading_from_json
from bot.storage.journal import JournalStore
from bot.storage.pending import PendingNotes
from bot.storage.schema import MIGRATIONS, PERSON_TABLES, SCHEMA_VERSION
from inference.types import FusedEmotion

_COLUMNS = (
    "id, platform, user_id, chat_id, message_id, created_at, duration_s, language, transcript,"
    " label, confidence, valence, arousal, text_label, text_scores, voice_label, voice_arousal,"
    " voice_scores, models, timings, audio_sha256"
)


class HistoryStore:
    """Async access to the history database. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        #: Notes accepted and not yet answered, owned by this process's run.
        self.pending = PendingNotes(conn)
        #: Digest schedules and privacy choices.
        self.journal = JournalStore(conn)

    def pending_as(self, run_id: str | None = None) -> PendingNotes:
        """The pending notes as another run (``run_id``; a new one when None) sees them:
        how a restart, or a run that died, is played in tests and tools."""
        return PendingNotes(self._conn, run_id)

    @classmethod
    async def open(cls, path: Path | str) -> HistoryStore:
        """Open (creating folders and schema as needed) the database at ``path``."""
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path))
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA busy_timeout=5000")
            # Deleted rows are overwritten with zeros, not just unlinked: /forget and retention
            # must not leave a transcript in free pages. Set here, not left to how this SQLite
            # was built (Debian's happens to default to it; others do not).
            await conn.execute("PRAGMA secure_delete=ON")
            store = cls(conn, path)
            await store._migrate()
        except BaseException:
            # aiosqlite's thread is not a daemon: a connection left open by a refused
            # open (a newer schema, a file that is not a database) kept the process from
            # exiting after its error was printed (`voicemood trend` hung).
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.close()

    async def __aenter__(self) -> HistoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def schema_version(self) -> int:
        """The schema version of the open file."""
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        current = await self.schema_version()
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"database {self.path} has schema {current}, newer than this voicemood "
                f"({SCHEMA_VERSION}); upgrade voicemood"
            )
        for version in range(current, SCHEMA_VERSION):
            await self._conn.executescript(MIGRATIONS[version])
            await self._conn.execute(f"PRAGMA user_version = {version + 1}")
            await self._conn.commit()

    async def add(self, sender: Sender, analysis: Analysis) -> bool:
        """Store ``analysis`` for ``sender``. Returns False when that message was stored before."""
        created = analysis.created_at or time.time()
        cur = await self._insert(sender, analysis, created)
        await self._conn.commit()
        inserted = cur.rowcount == 1
        if inserted:
            analysis.id = cur.lastrowid
            analysis.sender = sender
            analysis.created_at = created
        return inserted

    async def add_many(self, rows: Iterable[tuple[Sender, Analysis]]) -> int:
        """Store many analyses in one transaction (seeding, imports). Returns how many were new."""
        added = 0
        for sender, analysis in rows:
            # One commit per row would make seeding 10,000 notes take minutes.
            cur = await self._insert(sender, analysis, analysis.created_at or time.time())
            added += cur.rowcount
        await self._conn.commit()
        return added

    async def _insert(self, sender: Sender, analysis: Analysis,
                      created: float) -> aiosqlite.Cursor:
        """The one INSERT of a row (ignored for a message stored before); no commit."""
        emo = analysis.emotion
        return await self._conn.execute(
            "INSERT OR IGNORE INTO analyses (platform, user_id, chat_id, message_id, created_at,"
            " duration_s, language, transcript, label, confidence, valence, arousal, text_label,"
            " text_scores, voice_label, voice_arousal, voice_scores, models, timings, audio_sha256)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                sender.platform,
                str(sender.user_id),
                str(sender.chat_id),
                str(sender.message_id),
                created,
                analysis.duration_s,
                analysis.language,
                analysis.transcript,
                emo.label,
                emo.confidence,
                emo.valence,
                emo.arousal,
                emo.text.label if emo.text else None,
                json.dumps(emo.text.scores) if emo.text else None,
                emo.voice.label if emo.voice else None,
                emo.voice.arousal if emo.voice else None,
                json.dumps(emo.voice.scores) if emo.voice else None,
                json.dumps(analysis.models),
                json.dumps(analysis.timings),
                analysis.audio_sha256,
            ),
        )

    async def get_by_message(self, platform: str, chat_id: str, message_id: str) -> Analysis | None:
        """The stored analysis of one message, if any."""
        async with self._conn.execute(
            f"SELECT {_COLUMNS} FROM analyses WHERE platform=? AND chat_id=? AND message_id=?",
            (platform, str(chat_id), str(message_id)),
        ) as cur:
            row = await cur.fetchone()
        return _row_to_analysis(row) if row else None

    async def recent(self, platform: str, user_id: str, limit: int = 5) -> list[Analysis]:
        """The user's latest ``limit`` analyses, newest first."""
        async with self._conn.execute(
            f"SELECT {_COLUMNS} FROM analyses WHERE platform=? AND user_id=?"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (platform, str(user_id), int(limit)),
        ) as cur:
            rows = await cur.fetchall()
        return [_row_to_analysis(r) for r in rows]

    async def between(
        self, platform: str, user_id: str, start: float, end: float
    ) -> list[Analysis]:
        """The user's analyses with ``start <= created_at < end`` (unix seconds), oldest first."""
        async with self._conn.execute(
            f"SELECT {_COLUMNS} FROM analyses WHERE platform=? AND user_id=?"
            " AND created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (platform, str(user_id), float(start), float(end)),
        ) as cur:
            rows = await cur.fetchall()
        return [_row_to_analysis(r) for r in rows]

    async def count(self, platform: str, user_id: str) -> int:
        """How many analyses are stored for the user."""
        async with self._conn.execute(
            "SELECT COUNT(*) FROM analyses WHERE platform=? AND user_id=?",
            (platform, str(user_id)),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def forget(self, platform: str, user_id: str) -> int:
        """Delete everything stored about the user on that platform, in every table
        (:data:`~bot.storage.schema.PERSON_TABLES`: analyses, pending notes, digest schedule,
        privacy choice), whether or not they have analyses. Returns the number of analyses
        deleted."""
        key = (platform, str(user_id))
        deleted = 0
        for table in PERSON_TABLES:
            cur = await self._conn.execute(
                f"DELETE FROM {table} WHERE platform=? AND user_id=?", key)
            if table == "analyses":
                deleted = int(cur.rowcount)
        await self._conn.commit()
        # The write-ahead log still holds the pages as they were before the delete (the
        # transcript included) until a checkpoint, which with one long-lived connection may
        # be hours away: copy the log into the file now and truncate it to zero bytes.
        await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    async def holds_anything(self, platform: str, user_id: str) -> bool:
        """Whether any person table holds a row about the user (an analysis, a pending
        note, a digest schedule or a privacy choice): what ``/forget`` would delete."""
        key = (platform, str(user_id))
        for table in PERSON_TABLES:
            async with self._conn.execute(
                    f"SELECT 1 FROM {table} WHERE platform=? AND user_id=? LIMIT 1", key) as cur:
                if await cur.fetchone() is not None:
                    return True
        return False

    async def purge_before(self, cutoff: float) -> int:
        """Delete every analysis stored before ``cutoff`` (unix seconds), for everyone.
        Returns how many went."""
        cur = await self._conn.execute("DELETE FROM analyses WHERE created_at < ?",
                                       (float(cutoff),))
        await self._conn.commit()
        return int(cur.rowcount)

    async def export_pages(self, platform: str, user_id: str, since: float | None = None,
                           page: int = 500) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The person's analyses for an export, oldest first, ``page`` rows at a time, as
        tuples of :data:`EXPORT_COLUMNS`.

        Pages are cut by (time, id), not OFFSET, so each page is one index range scan and a
        note stored during the export cannot shift rows into a second page.
        """
        after: tuple[float, int] = (float(since) if since is not None else float("-inf"), -1)
        while True:
            async with self._conn.execute(
                f"SELECT {', '.join(EXPORT_COLUMNS)} FROM analyses"
                " WHERE platform=? AND user_id=?"
                " AND (created_at > ? OR (created_at = ? AND id > ?))"
                " ORDER BY created_at, id LIMIT ?",
                (platform, str(user_id), after[0], after[0], after[1], int(page)),
            ) as cur:
                rows = [tuple(r) for r in await cur.fetchall()]
            if not rows:
                return
            yield rows
            if len(rows) < page:
                return
            after = (float(rows[-1][1]), int(rows[-1][0]))


#: The columns of :meth:`HistoryStore.export_pages`' rows, in order.
EXPORT_COLUMNS = ("id", "created_at", "duration_s", "label", "confidence", "valence",
                  "arousal", "text_label", "voice_label", "language", "transcript")


def _loads(value: str | None) -> dict[str, Any]:
    return json.loads(value) if value else {}


def _row_to_analysis(row: aiosqlite.Row) -> Analysis:
    models = _loads(row["models"])
    text = None
    if row["text_label"] is not None:
        text = text_reading_from_json(
            {"label": row["text_label"], "scores": _loads(row["text_scores"])},
            models.get("text_emotion", ""),
        )
    voice = None
    if row["voice_label"] is not None:
        voice = voice_reading_from_json(
            {
                "label": row["voice_label"],
                "arousal": row["voice_arousal"] or 0.0,
                "scores": _loads(row["voice_scores"]),
            },
            models.get("voice_emotion", ""),
        )
    emotion = FusedEmotion(
        label=row["label"],
        confidence=float(row["confidence"]),
        valence=float(row["valence"]),
        arousal=float(row["arousal"]),
        text=text,
        voice=voice,
    )
    return Analysis(
        transcript=row["transcript"],
        language=row["language"],
        duration_s=float(row["duration_s"]),
        emotion=emotion,
        models=models,
        timings=_loads(row["timings"]),
        audio_sha256=row["audio_sha256"],
        created_at=float(row["created_at"]),
        id=int(row["id"]),
        sender=Sender(row["platform"], row["user_id"], row["chat_id"], row["message_id"]),
    )
