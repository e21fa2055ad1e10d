"""Arousal relative to a person's own baseline, once they have history.

A naturally loud or lively speaker reads as aroused on every note; what matters for the tag
is how far *this* note is from how they usually sound. The rule, on the logit scale where
the prosody features add up (see :mod:`inference.voice_prosody`)::

    shift = (median(logit(history)) - logit(REFERENCE_AROUSAL)) * n / (n + PRIOR_NOTES)
    personal = sigmoid(logit(arousal) - shift)

``REFERENCE_AROUSAL`` is where ordinary calm speech sits; the factor ``n / (n + PRIOR_NOTES)``
trusts a short history only partly (5 notes: half the offset). The median keeps one shouted
note from moving the baseline. The shift works both ways: a very quiet person who raises
their voice is heard.

**Cold start.** With fewer than :data:`MIN_HISTORY` notes there is no baseline, and a
voice that is simply bright or lively by nature (an audiobook narrator, a studio
microphone) cannot be told from an agitated one. Until then a note is *excited* only from
voice arousal :data:`COLD_START_EXCITED_AROUSAL` (instead of the fusion's
:data:`~inference.fusion.EXCITED_AROUSAL`), so a borderline first reading stays with the
words; the excited confidence is measured from that stricter line, so it says how far past
it the voice is. Once the person has a baseline, the usual line applies to the personal
arousal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from inference.fusion import fuse
from inference.types import FusedEmotion

#: Arousal of ordinary calm speech: the offline prosody model's median on calm speech from
#: 140 speakers (``calm_arousal`` in inference/arousal_model.json, held out by speaker).
REFERENCE_AROUSAL = 0.13
#: Fewer past notes than this: no baseline yet, the population scale and the cold-start
#: line stand.
MIN_HISTORY = 3
#: Voice arousal from which a note is excited while the person has no baseline. On the
#: dev data (tuned there): calm_speech's readers above the usual 0.65 line sit at 0.65-0.77,
#: RAVDESS' angry actors at a median of 0.69 and up to 0.97, so the stricter line keeps a
#: clearly raised voice excited and a borderline first reading not.
COLD_START_EXCITED_AROUSAL = 0.75
#: Pseudo-count of notes at the population baseline (shrinks a short history's offset).
PRIOR_NOTES = 5
_EPS = 1e-4


def _logit(p: float) -> float:
    p = min(1.0 - _EPS, max(_EPS, p))
    return math.log(p / (1.0 - p))


def personalise(arousal: float, history_arousals: Sequence[float]) -> float:
    """``arousal`` moved by the person's usual offset from calm speech (module docstring).

    ``history_arousals`` are the voice arousals of the person's earlier notes (not this one).
    """
    n = len(history_arousals)
    if n < MIN_HISTORY:
        return arousal
    usual = sorted(_logit(a) for a in history_arousals)
    mid = n // 2
    median = usual[mid] if n % 2 else (usual[mid - 1] + usual[mid]) / 2
    shift = (median - _logit(REFERENCE_AROUSAL)) * n / (n + PRIOR_NOTES)
    return 1.0 / (1.0 + math.exp(-(_logit(arousal) - shift)))


def fuse_with_baseline(emotion: FusedEmotion, history_arousals: Sequence[float]) -> FusedEmotion:
    """Fuse again with the voice's arousal made personal; the raw voice reading is kept.

    Without a baseline (fewer than :data:`MIN_HISTORY` notes) the cold-start line
    :data:`COLD_START_EXCITED_AROUSAL` decides instead. The stored ``emotion.voice.arousal``
    stays the raw reading, so a person's history (the baseline of later notes) is never
    shifted by its own correction.
    """
    voice = emotion.voice
    if voice is None:
        return emotion
    if len(history_arousals) < MIN_HISTORY:
        return fuse(emotion.text, voice, excited_from=COLD_START_EXCITED_AROUSAL)
    personal = replace(voice, arousal=personalise(voice.arousal, history_arousals))
    return replace(fuse(emotion.text, personal), voice=voice)
