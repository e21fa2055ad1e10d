"""Data types and backend protocols shared by every inference component.

A *clip* everywhere in this package is a 1-D ``numpy.float32`` array of mono
16 kHz samples in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16_000

#: The product's four emotion tags, in display order.
TAGS: tuple[str, ...] = ("positive", "negative", "neutral", "excited")
#: Chinese names of the tags, used in Chinese replies.
TAG_ZH: dict[str, str] = {
    "positive": "正向", "negative": "负向", "neutral": "中性", "excited": "激动",
}

Clip = np.ndarray


@dataclass(frozen=True)
class Transcript:
    """What an ASR backend heard in one clip.

    ``model`` names the recogniser that produced ``text`` (with language routing, one note
    may go to Paraformer and the next to Whisper); ``voice`` is an emotion reading the
    recogniser made in the same pass (SenseVoice), else ``None``. Neither takes part in
    equality: two transcripts are equal when they say the same words in the same language.
    """

    text: str
    language: str  # ISO 639-1 code such as "zh" or "en"; "" when unknown
    model: str = field(default="", compare=False)
    voice: VoiceReading | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TextReading:
    """Emotion read from the words.

    ``label`` is one of :data:`TAGS`; ``scores`` maps every tag to a probability-like score.
    """

    label: str
    scores: dict[str, float]
    model: str


@dataclass(frozen=True)
class VoiceReading:
    """Emotion read from the voice.

    ``label`` is the backend's own word (emotion2vec: angry, happy...; prosody: calm,
    moderate, agitated); ``arousal`` runs from 0 (calm) to 1 (agitated); ``valence`` is
    -1..1 when the backend can tell, else ``None``.
    """

    label: str
    arousal: float
    scores: dict[str, float]
    model: str
    valence: float | None = None


@dataclass(frozen=True)
class FusedEmotion:
    """The single tag shown to the user, with both readings that produced it."""

    label: str
    confidence: float
    valence: float  # -1 (negative) .. 1 (positive): the note's mood score
    arousal: float  # 0 .. 1
    text: TextReading | None
    voice: VoiceReading | None


@dataclass
class ModelInfo:
    """Which model a component runs, for logs, `models status` and the JSON output."""

    component: str  # "asr", "vad", "punc", "text_emotion", "voice_emotion"
    tier: str  # "full", "offline" or "off"
    model: str  # model id or path
    device: str = "cpu"
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class AsrBackend(Protocol):
    """Speech to text over a batch of clips."""

    info: ModelInfo

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        """Transcribe each clip; the result list is parallel to ``clips``."""
        ...


class TextEmotionBackend(Protocol):
    """Emotion tag from transcripts."""

    info: ModelInfo

    def classify_batch(self, texts: Sequence[str], languages: Sequence[str]) -> list[TextReading]:
        """Read one :class:`TextReading` per text (``languages`` is parallel to ``texts``)."""
        ...


class VoiceEmotionBackend(Protocol):
    """Emotion from the sound of the voice."""

    info: ModelInfo

    def analyze_batch(self, clips: Sequence[Clip]) -> list[VoiceReading]:
        """Read one :class:`VoiceReading` per clip."""
        ...
