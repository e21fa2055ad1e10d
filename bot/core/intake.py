"""What every front end checks about a note before it fetches or analyses it.

One rule set for Telegram, Slack and the web page: what counts as audio (:func:`is_audio`),
refusals that need no download (:func:`precheck`, on the size and length the platform
announces) and the two download refusals that are not the audio's fault
(:class:`DownloadTooLarge`, :class:`DownloadFailed`).
Each refusal is an :class:`~inference.errors.InputError`, so
:func:`bot.wording.error_reply` turns it into the user's phrase like any pipeline refusal.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from inference.errors import InputError, TooLarge, TooLong

if TYPE_CHECKING:
    from bot.ops.settings import Settings

#: File name endings taken as audio even without an audio or video mime type (a video's
#: sound track is what is analysed).
AUDIO_EXTENSIONS = frozenset({
    "3gp", "aac", "aif", "aiff", "amr", "caf", "flac", "m4a", "m4v", "mka", "mov", "mp3", "mp4",
    "mpeg", "mpg", "oga", "ogg", "opus", "spx", "wav", "weba", "webm", "wma",
})

#: Platforms round a clip's length up to whole seconds; don't refuse a 600.4 s note as 601.
DURATION_SLACK_S = 1.0


class DownloadTooLarge(InputError):
    """The platform will not hand out a file this large (Telegram's Bot API: 20 MB)."""

    code = "download_too_large"

    def __init__(self, message: str, *, limit_bytes: int) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes


class DownloadFailed(InputError):
    """The file could not be fetched (network, HTTP status, a URL we may not use)."""

    code = "download_failed"


def is_audio(mime_type: str | None, file_name: str | None) -> bool:
    """Whether a file is something to analyse: an audio or video mime type, or a name ending
    in one of :data:`AUDIO_EXTENSIONS`."""
    mime = (mime_type or "").lower()
    if mime.startswith(("audio/", "video/")):
        return True
    return PurePosixPath((file_name or "").lower()).suffix.lstrip(".") in AUDIO_EXTENSIONS


def precheck(size: int | None, duration_s: float | None, settings: Settings, *,
             download_limit: int | None = None) -> InputError | None:
    """The refusal for a note whose announced ``size`` (bytes) or ``duration_s`` is over
    the limits, or None when it may be fetched. ``download_limit`` is the platform's own
    cap on downloads, if it has one. Unknown values (None) pass: the download and the
    decoder check them again."""
    size = size or 0
    if download_limit is not None and size > download_limit:
        return DownloadTooLarge(f"{size} bytes announced", limit_bytes=download_limit)
    if size > settings.max_audio_bytes:
        return TooLarge(f"{size} bytes announced")
    if duration_s is not None and duration_s > settings.max_audio_seconds + DURATION_SLACK_S:
        return TooLong(f"{duration_s:.0f} s announced")
    return None


#: Room beyond a full engine queue for commands, so /help never waits behind notes.
COMMAND_HEADROOM = 16


def concurrent_notes(settings: Settings) -> int:
    """How many updates or events a front end handles at once: a full engine queue plus
    room for commands. Beyond it a front end queues (Telegram) or answers busy (Slack)."""
    return int(settings.queue_size) + COMMAND_HEADROOM
