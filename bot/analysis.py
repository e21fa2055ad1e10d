"""The result of analysing one voice note, and who sent it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference.errors import VoicemoodError
from inference.types import FusedEmotion, TextReading, VoiceReading


@dataclass(frozen=True)
class Sender:
    """Where a voice note came from. ``message_id`` makes a redelivery recognisable."""

    platform: str  # "telegram", "slack", "cli"
    user_id: str
    chat_id: str
    message_id: str


@dataclass
class Analysis:
    """Transcript and emotion of one voice note, as shown to the user and stored."""

    transcript: str
    language: str
    duration_s: float
    emotion: FusedEmotion
    models: dict[str, str]
    timings: dict[str, float]
    audio_sha256: str = ""
    created_at: float = 0.0  # unix seconds, UTC
    id: int | None = None
    sender: Sender | None = None
    #: True when the message had already been analysed (a redelivery): nothing new was stored.
    duplicate: bool = False

    @property
    def label(self) -> str:
        """The final tag: positive, negative, neutral or excited."""
        return self.emotion.label

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape printed by ``voicemood analyze --json``."""
        emo = self.emotion
        text = emo.text
        voice = emo.voice
        return {
            "transcript": self.transcript,
            "language": self.language,
            "duration_s": round(self.duration_s, 3),
            "emotion": {
                "label": emo.label,
                "confidence": round(emo.confidence, 3),
                "valence": round(emo.valence, 3),
                "text": None
                if text is None
                else {"label": text.label, "scores": _round_scores(text.scores)},
                "voice": None
                if voice is None
                else {
                    "label": voice.label,
                    "arousal": round(voice.arousal, 3),
                    "scores": _round_scores(voice.scores),
                },
            },
            "models": dict(self.models),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def error_json(exc: BaseException) -> dict[str, Any]:
    """``{"error": {"code", "message"}}`` for a failed analysis, as ``analyze --json`` prints it
    and ``POST /api/analyze`` answers it.

    A :class:`~inference.errors.VoicemoodError` gives its stable code and short message;
    anything else is ``internal`` with only the exception's type name, never its text.
    """
    if isinstance(exc, VoicemoodError):
        return {"error": {"code": exc.code, "message": exc.message}}
    return {"error": {"code": "internal", "message": f"internal error: {type(exc).__name__}"}}


def _round_scores(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in scores.items()}


def text_reading_from_json(data: dict[str, Any] | None, model: str = "") -> TextReading | None:
    """Rebuild a :class:`TextReading` from its stored JSON form."""
    if not data:
        return None
    return TextReading(label=data["label"], scores=dict(data.get("scores", {})), model=model)


def voice_reading_from_json(data: dict[str, Any] | None, model: str = "") -> VoiceReading | None:
    """Rebuild a :class:`VoiceReading` from its stored JSON form."""
    if not data:
        return None
    return VoiceReading(
        label=data["label"],
        arousal=float(data.get("arousal", 0.0)),
        scores=dict(data.get("scores", {})),
        model=model,
        valence=data.get("valence"),
    )
