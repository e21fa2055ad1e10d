"""Full-tier voice emotion: emotion2vec+ (funasr) over the whole utterance.

emotion2vec+ scores nine classes, labelled ``中文/english`` (``生气/angry``, ``厌恶/disgusted``,
``恐惧/fearful``, ``开心/happy``, ``中立/neutral``, ``其他/other``, ``难过/sad``,
``吃惊/surprised``, ``<unk>``). A :class:`~inference.types.VoiceReading` keeps the English
half of each label with its probability; ``label`` is the most probable class.

Arousal and valence are the probability-weighted means of this table (arousal is then
clipped to [0, 1], valence to [-1, 1]). The values place each class on Russell's
circumplex, rounded to what the product needs (agitated vs. calm; pleasant vs. not):

===========  =======  =======
class        arousal  valence
===========  =======  =======
angry          0.90    -0.80
happy          0.70     0.90
surprised      0.80     0.30
fearful        0.75    -0.70
disgusted      0.60    -0.70
sad            0.25    -0.80
neutral        0.30     0.00
other          0.40     0.00
unk            0.40     0.00
===========  =======  =======

A class missing from the table (a fine-tuned head with other labels) counts as
arousal 0.4, valence 0.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .asr_funasr import build_automodel
from .model_paths import resolve_model_source
from .types import ModelInfo, VoiceReading

if TYPE_CHECKING:
    from inference.config import InferenceConfig

    from .types import Clip, VoiceEmotionBackend

#: class -> (arousal, valence); see the module docstring.
AROUSAL_VALENCE: dict[str, tuple[float, float]] = {
    "angry": (0.90, -0.80),
    "happy": (0.70, 0.90),
    "surprised": (0.80, 0.30),
    "fearful": (0.75, -0.70),
    "disgusted": (0.60, -0.70),
    "sad": (0.25, -0.80),
    "neutral": (0.30, 0.00),
    "other": (0.40, 0.00),
    "unk": (0.40, 0.00),
}
_DEFAULT_AV = (0.40, 0.00)
#: Clips shorter than this (0.1 s) are zero-padded to it: emotion2vec's conv front end
#: needs at least 400 samples, and a little more keeps its pooled reading stable.
PAD_CLIPS_TO_SAMPLES = 1600


def english_label(label: str) -> str:
    """``"生气/angry"`` -> ``"angry"``; ``"<unk>"`` -> ``"unk"``; other names lower-cased."""
    name = label.rsplit("/", 1)[-1].strip().strip("<>").lower()
    return name or "unk"


def reading_from_scores(scores: dict[str, float], model: str) -> VoiceReading:
    """Build a :class:`VoiceReading` from ``{english_label: probability}``."""
    if not scores:
        arousal, valence = _DEFAULT_AV
        return VoiceReading(label="unk", arousal=arousal, scores={}, model=model, valence=valence)
    label = max(scores, key=lambda k: scores[k])
    total = sum(scores.values()) or 1.0
    arousal = sum(p * AROUSAL_VALENCE.get(k, _DEFAULT_AV)[0] for k, p in scores.items()) / total
    valence = sum(p * AROUSAL_VALENCE.get(k, _DEFAULT_AV)[1] for k, p in scores.items()) / total
    return VoiceReading(
        label=label,
        arousal=float(min(1.0, max(0.0, arousal))),
        scores=scores,
        model=model,
        valence=float(min(1.0, max(-1.0, valence))),
    )


class Emotion2vecVoice:
    """:class:`~inference.types.VoiceEmotionBackend` over funasr's emotion2vec."""

    def __init__(self, model: Any, info: ModelInfo) -> None:
        self._model = model
        self._lock = threading.Lock()  # AutoModel rewrites its own kwargs on every call
        self.info = info

    @property
    def automodel(self) -> Any:
        """The underlying ``funasr.AutoModel`` (for diagnostics and tests)."""
        return self._model

    def analyze_batch(self, clips: Sequence[Clip]) -> list[VoiceReading]:
        """One reading per clip (float32 mono 16 kHz), in one ``generate()`` call."""
        if not clips:
            return []
        arrays = []
        for clip in clips:
            a = np.ascontiguousarray(clip, dtype=np.float32).reshape(-1)
            if len(a) < PAD_CLIPS_TO_SAMPLES:
                a = np.pad(a, (0, PAD_CLIPS_TO_SAMPLES - len(a)))
            arrays.append(a)
        with self._lock:
            results = self._model.generate(
                input=arrays,
                granularity="utterance",
                extract_embedding=False,
                batch_size=len(arrays),
            )
        if len(results) != len(arrays):
            raise RuntimeError(
                f"emotion2vec returned {len(results)} results for {len(arrays)} clips"
            )
        readings = []
        for result in results:
            scores: dict[str, float] = {}
            for label, score in zip(result.get("labels", []), result.get("scores", []),
                                    strict=False):
                name = english_label(str(label))
                scores[name] = scores.get(name, 0.0) + float(score)
            readings.append(reading_from_scores(scores, self.info.model))
        return readings


def load_emotion2vec(settings: InferenceConfig, device: str) -> VoiceEmotionBackend:
    """Load emotion2vec+ (``settings.voice_emotion_model``) from a local folder or the hub.

    Raises :class:`~inference.errors.ModelUnavailable` within ~2 s when the model is not
    local and the hub cannot be reached.
    """
    source = resolve_model_source(
        settings.voice_emotion_model,
        settings.models_dir,
        settings.model_hub,
        component="voice emotion",
        env_var="VOICEMOOD_VOICE_EMOTION_MODEL",
    )
    model = build_automodel("voice emotion", model=source, device=device, hub=settings.model_hub)
    info = ModelInfo(
        component="voice_emotion",
        tier="full",
        model=source,
        device=str(model.kwargs.get("device", device)),
        detail="emotion2vec utterance",
        extra={"configured": settings.voice_emotion_model},
    )
    return Emotion2vecVoice(model, info)
