"""Full-tier speech recognition with SenseVoice-Small (``iic/SenseVoiceSmall``) via funasr.

SenseVoice writes four rich-text tags before each stretch of text,
``<|en|><|HAPPY|><|Speech|><|withitn|>Hello there.``: the language (zh, en, yue, ja, ko,
nospeech), the speech emotion (HAPPY, SAD, ANGRY, NEUTRAL, FEARFUL, DISGUSTED, SURPRISED,
EMO_UNKNOWN), the audio event (Speech, BGM, Laughter...) and whether inverse text
normalisation ran. With a VAD model, funasr joins the segments' outputs, tags included.

* **Language**: the tag heard over most segments (ties: the first) becomes
  ``Transcript.language``; ``nospeech`` means none.
* **Text**: funasr's own ``rich_transcription_postprocess`` removes the tags, turning the
  emotion and event into emoji; those emoji (funasr's ``emo_set``, ``event_set`` and the
  "❓" of an unknown event) are then dropped too, because the emotion travels as the voice
  reading and the words branch should read words.
* **Emotion**: the tag heard most often becomes a :class:`~inference.types.VoiceReading`
  (label = the tag in lower case, score 1.0: SenseVoice's CTC head gives no distribution),
  placed on arousal/valence by the emotion2vec table in
  :data:`inference.voice_emotion2vec.AROUSAL_VALENCE` (angry 0.90/-0.80, happy 0.70/0.90,
  sad 0.25/-0.80, neutral 0.30/0.00, fearful 0.75/-0.70, disgusted 0.60/-0.70,
  surprised 0.80/0.30; ``EMO_UNKNOWN`` -> ``unk`` 0.40/0.00). The engine uses it as the
  voice reading when emotion2vec is not configured (see inference/backends.py).
* Decoding runs with ``language="auto"`` and ``use_itn=True`` (punctuation and numbers as
  digits), so the separate punctuation model is not loaded for SenseVoice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .asr_funasr import FunasrAsr, clean_transcript, load_funasr_asr
from .types import Clip, ModelInfo, Transcript, VoiceReading

if TYPE_CHECKING:
    from .config import InferenceConfig

_LANG = re.compile(r"<\|(zh|en|yue|ja|ko|nospeech)\|>")
_EMO = re.compile(r"<\|(HAPPY|SAD|ANGRY|NEUTRAL|FEARFUL|DISGUSTED|SURPRISED|EMO_UNKNOWN)\|>")


def parse_rich(raw: str) -> tuple[str, str, str]:
    """``(text, language, emotion)`` of SenseVoice's raw output (see the module docstring).

    ``emotion`` is lower case (``"happy"``; ``"unk"`` for EMO_UNKNOWN), ``""`` when no tag.
    """
    from funasr.utils.postprocess_utils import emo_set, event_set, rich_transcription_postprocess

    languages = Counter(_LANG.findall(raw))
    language = _most_common_first(raw, _LANG, languages)
    if language == "nospeech":
        language = ""
    emotions = Counter(_EMO.findall(raw))
    emotion = _most_common_first(raw, _EMO, emotions).lower()
    if emotion == "emo_unknown":
        emotion = "unk"
    text = rich_transcription_postprocess(raw) if raw.strip() else ""
    for mark in (*emo_set, *event_set, "❓"):
        text = text.replace(mark, " ")
    text = clean_transcript(text)  # segments are joined with spaces, also between CJK
    return text, language if text else "", emotion


def _most_common_first(raw: str, pattern: re.Pattern[str], counts: Counter[str]) -> str:
    if not counts:
        return ""
    best = max(counts.values())
    for found in pattern.findall(raw):  # in order of appearance: ties go to the first
        if counts[found] == best:
            return found
    return ""


class SenseVoiceAsr(FunasrAsr):
    """:class:`FunasrAsr` for SenseVoice: language and emotion from its tags."""

    generate_kwargs: dict[str, Any] = {"language": "auto", "use_itn": True}

    def finish(self, raw: str) -> Transcript:
        """Text without tags, the tagged language, and the emotion as a voice reading."""
        from .voice_emotion2vec import reading_from_scores

        text, language, emotion = parse_rich(raw)
        voice: VoiceReading | None = (
            reading_from_scores({emotion: 1.0}, self.info.model) if emotion and text else None
        )
        return Transcript(text=text, language=language, model=self.info.model, voice=voice)


class AsrEmotion:
    """The voice-emotion "backend" when SenseVoice's own emotion tag is the voice reading.

    It runs no model: the engine takes each clip's reading from its transcript
    (``Transcript.voice``), which SenseVoice filled in the same pass.
    """

    #: Tells the engine to read ``Transcript.voice`` instead of calling analyze_batch.
    from_transcripts = True

    def __init__(self, asr_info: ModelInfo) -> None:
        self.info = ModelInfo(component="voice_emotion", tier="full", model=asr_info.model,
                              device=asr_info.device, detail="SenseVoice emotion tag")

    def analyze_batch(self, clips: Sequence[Clip]) -> list[VoiceReading]:
        """Not used: the readings come with the transcripts."""
        raise NotImplementedError("SenseVoice's emotion comes with its transcripts")


def load_sensevoice_asr(settings: InferenceConfig, device: str) -> SenseVoiceAsr:
    """Load ``settings.asr_model`` as SenseVoice (+ the VAD model when one is set)."""
    backend = load_funasr_asr(settings, device, backend_class=SenseVoiceAsr)
    assert isinstance(backend, SenseVoiceAsr)
    return backend
