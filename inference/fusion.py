"""Fuse the text and voice readings into the one tag the user sees.

The rule, in two dimensions:

* **valence** (-1 .. 1) comes from the words: ``P(positive) - P(negative)`` of the text
  reading. When the voice backend also gives a valence (emotion2vec), valence is
  ``0.6 * text + 0.4 * voice``; with no text branch the voice valence stands alone (the
  prosody backend gives none, so then it is 0).
* **arousal** (0 .. 1) comes from the voice only; with no voice reading it is 0 (unknown).

Then: ``excited`` when the voice's arousal >= :data:`EXCITED_AROUSAL` (or the stricter
``excited_from`` a caller passes: :mod:`inference.arousal_baseline` asks for more evidence
from a person with no baseline yet). Otherwise the words
decide between positive, negative and neutral: the text reading's own label when there is no
voice valence to blend (every text backend gives a three-way label; a two-class classifier's
is neutral inside the band below), else the blended valence: ``positive`` when valence >=
:data:`VALENCE_BAND`, ``negative`` when valence <= -:data:`VALENCE_BAND`, else ``neutral``
(also the rule for a voice alone). So an angry voice saying neutral words is *excited*, and
calm words in a calm voice are *neutral*.

*Excited* is the voice's call alone: words never make a note excited (a text label
``excited``, e.g. a classifier's anger class, falls back to the valence band), so with no
voice reading the tag is positive, negative or neutral. Confidence grows with the distance
from the decision boundary; where the text's label decided, it is the text's score for it.
"""

from __future__ import annotations

from inference.types import FusedEmotion, TextReading, VoiceReading

EXCITED_AROUSAL = 0.65
VALENCE_BAND = 0.2
TEXT_WEIGHT = 0.6
#: Below this voice arousal a neutral tag is fully confident.
CALM_VOICE = 0.4
_VALENCE_TAGS = ("positive", "negative", "neutral")


def text_valence(text: TextReading) -> float:
    """Valence of a text reading: positive share minus negative share."""
    pos = text.scores.get("positive", 0.0)
    neg = text.scores.get("negative", 0.0)
    return max(-1.0, min(1.0, pos - neg))


def fuse(text: TextReading | None, voice: VoiceReading | None, *,
         excited_from: float = EXCITED_AROUSAL) -> FusedEmotion:
    """Apply the module's rule. With both branches off the result is neutral at 0.5.

    ``excited_from`` is the voice arousal from which the note is excited; the excited
    confidence runs from 0.5 there to 1 at arousal 1.
    """
    if text is None and voice is None:
        return FusedEmotion("neutral", 0.5, 0.0, 0.0, None, None)

    tv = text_valence(text) if text is not None else None
    vv = voice.valence if voice is not None else None
    if tv is not None and vv is not None:
        valence = TEXT_WEIGHT * tv + (1 - TEXT_WEIGHT) * vv
    else:
        valence = tv if tv is not None else (vv if vv is not None else 0.0)

    arousal = voice.arousal if voice is not None else 0.0
    if voice is not None and arousal >= excited_from:
        label = "excited"
        confidence = 0.5 + 0.5 * (arousal - excited_from) / (1 - excited_from)
    elif vv is None and text is not None and text.label in _VALENCE_TAGS:
        label = text.label
        confidence = text.scores.get(label, 0.5)
    elif valence >= VALENCE_BAND:
        label = "positive"
        confidence = 0.5 + 0.5 * min(1.0, (valence - VALENCE_BAND) / (1 - VALENCE_BAND))
    elif valence <= -VALENCE_BAND:
        label = "negative"
        confidence = 0.5 + 0.5 * min(1.0, (-valence - VALENCE_BAND) / (1 - VALENCE_BAND))
    else:
        label = "neutral"
        calm_margin = 1.0 - abs(valence) / VALENCE_BAND
        arousal_margin = 1.0 - max(0.0, arousal - CALM_VOICE) / (excited_from - CALM_VOICE)
        confidence = 0.5 + 0.5 * min(calm_margin, max(0.0, arousal_margin))
    return FusedEmotion(
        label=label,
        confidence=round(max(0.0, min(1.0, confidence)), 4),
        valence=round(valence, 4),
        arousal=round(arousal, 4),
        text=text,
        voice=voice,
    )
