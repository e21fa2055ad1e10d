"""Every table of the history database and the one list of migrations that makes them.

The schema version lives in ``PRAGMA user_version``: :data:`MIGRATIONS` ``[n]`` brings a file
from version ``n`` to ``n + 1``. Append, never edit, a migration that has shipped.
:data:`PERSON_TABLES` names every table that holds rows about a person, so ``/forget`` can
delete them all; a test checks it against the tables the migrations create.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the analyses table and its per-user time index
    """
    CREATE TABLE IF NOT EXISTS analyses (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        platform      TEXT    NOT NULL,
        user_id       TEXT    NOT NULL,
        chat_id       TEXT    NOT NULL,
        message_id    TEXT    NOT NULL,
        created_at    REAL    NOT NULL,
        duration_s    REAL    NOT NULL,
        language      TEXT    NOT NULL DEFAULT '',
        transcript    TEXT    NOT NULL DEFAULT '',
        label         TEXT    NOT NULL,
        confidence    REAL    NOT NULL,
        valence       REAL    NOT NULL DEFAULT 0,
        arousal       REAL    NOT NULL DEFAULT 0,
        text_label    TEXT,
        text_scores   TEXT,
        voice_label   TEXT,
        voice_arousal REAL,
        voice_scores  TEXT,
        models        TEXT    NOT NULL DEFAULT '{}',
        timings       TEXT    NOT NULL DEFAULT '{}',
        audio_sha256  TEXT    NOT NULL DEFAULT '',
        UNIQUE (platform, chat_id, message_id)
    );
    CREATE INDEX IF NOT EXISTS idx_analyses_user_time
        ON analyses (platform, user_id, created_at);
    """,
    # 2: mood journal (bot.storage.journal): weekly digest schedules, privacy choices, and
    # a time index so the daily retention purge does not scan the whole table
    """
    CREATE TABLE IF NOT EXISTS digest_schedules (
        platform   TEXT    NOT NULL,
        user_id    TEXT    NOT NULL,
        chat_id    TEXT    NOT NULL,
        weekday    INTEGER NOT NULL,
        minute     INTEGER NOT NULL,
        tz         TEXT    NOT NULL,
        lang       TEXT    NOT NULL DEFAULT 'en',
        enabled    INTEGER NOT NULL DEFAULT 0,
        next_at    REAL,
        updated_at REAL    NOT NULL,
        PRIMARY KEY (platform, user_id)
    );
    CREATE INDEX IF NOT EXISTS idx_digest_due ON digest_schedules (platform, enabled, next_at);
    CREATE TABLE IF NOT EXISTS privacy_prefs (
        platform          TEXT    NOT NULL,
        user_id           TEXT    NOT NULL,
        store_transcripts INTEGER NOT NULL DEFAULT 1,
        updated_at        REAL    NOT NULL,
        PRIMARY KEY (platform, user_id)
    );
    CREATE INDEX IF NOT EXISTS idx_analyses_time ON analyses (created_at);
    """,
    # 3: notes accepted but not yet answered (bot.storage.pending)
    """
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
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

#: Every table with rows about one person, keyed by ``(platform, user_id)``.
PERSON_TABLES: tuple[str, ...] = ("analyses", "pending_notes", "digest_schedules",
                                  "privacy_prefs")
