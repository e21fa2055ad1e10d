"""Typed errors. Each input refusal carries a stable ``code`` and a short English message.

Adapters turn the code into a friendly, localised reply (see ``bot.wording``); the CLI
prints ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations


class VoicemoodError(Exception):
    """Base class of every error voicemood raises on purpose."""

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The short, user-safe message."""
        return str(self)


class InputError(VoicemoodError):
    """The audio the user sent cannot be analysed. Never a server fault."""

    code = "bad_input"


class EmptyInput(InputError):
    code = "empty"


class TooLarge(InputError):
    code = "too_large"


class NotAudio(InputError):
    code = "not_audio"


class CorruptAudio(InputError):
    code = "corrupt"


class UnsupportedCodec(InputError):
    code = "unsupported_codec"


class TooLong(InputError):
    code = "too_long"


class Silent(InputError):
    """The recording holds nothing but silence (or near-silence)."""

    code = "silent"


class NoSpeech(InputError):
    """Sound, but no words were recognised in it."""

    code = "no_speech"


class Busy(VoicemoodError):
    """The inference queue is full; ``retry_after_s`` estimates the wait."""

    code = "busy"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(VoicemoodError):
    """The model workers cannot be reached (the broker is down); try again later.

    Like :class:`Busy` a passing state, not the audio's fault, but a separate code: the
    sender is told to try later without a wait estimate.
    """

    code = "unavailable"

    def __init__(self, message: str, *, retry_after_s: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelUnavailable(VoicemoodError):
    """A model could not be found locally nor fetched (for example: no network)."""

    code = "model_unavailable"


#: Size units as people read them: binary steps, labelled the way Telegram and Slack
#: label theirs ("20 MB" is 20 × 1024 × 1024 bytes).
_SIZE_UNITS = ((1024 * 1024 * 1024, "GB"), (1024 * 1024, "MB"), (1024, "KB"))


def human_bytes(n: int) -> str:
    """The one wording of a size, e.g. ``50 MB`` for the default 52428800-byte limit.

    Every size a person sees (CLI, API, bot replies, the page) goes through here, so the
    limit reads the same everywhere. One decimal where it matters, none when whole.
    """
    for step, unit in _SIZE_UNITS:
        if n >= step:
            return f"{n / step:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"
