"""inference.fusion: the documented rule that turns two readings into one tag."""

from __future__ import annotations

import pytest

from inference.fusion import EXCITED_AROUSAL, VALENCE_BAND, fuse, text_valence
from inference.types import TextReading, VoiceReading


def text(label: str, **scores: float) -> TextReading:
    base = {"positive": 0.0, "negative": 0.0, "neutral": 0.0, "excited": 0.0}
    base.update(scores)
    return TextReading(label=label, scores=base, model="t")


def voice(arousal: float, valence: float | None = None, label: str = "x") -> VoiceReading:
    return VoiceReading(label=label, arousal=arousal, scores={}, model="v", valence=valence)


def test_angry_voice_with_neutral_words_is_excited() -> None:
    fused = fuse(text("neutral", neutral=1.0), voice(0.9, label="agitated"))
    assert fused.label == "excited"
    assert fused.confidence == pytest.approx(0.5 + 0.5 * (0.9 - EXCITED_AROUSAL) / 0.35, abs=1e-3)
    assert fused.text is not None and fused.voice is not None  # both readings kept


def test_calm_words_in_calm_voice_are_neutral() -> None:
    fused = fuse(text("neutral", neutral=1.0), voice(0.2))
    assert fused.label == "neutral"
    assert fused.confidence == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        (text("positive", positive=0.8, neutral=0.2), "positive"),
        (text("negative", negative=0.7, neutral=0.3), "negative"),
        (text("neutral", positive=0.15, neutral=0.85), "neutral"),
    ],
)
def test_valence_decides_when_voice_is_calm(reading: TextReading, expected: str) -> None:
    assert fuse(reading, voice(0.3)).label == expected


def test_excited_is_the_voices_call_not_the_words() -> None:
    words = text("excited", excited=0.6, negative=0.1, neutral=0.3)
    # A moderately aroused voice does not become excited because the words shout.
    moderate = fuse(words, voice(0.5))
    assert moderate.label == "neutral"
    assert moderate.arousal == pytest.approx(0.5)
    assert fuse(words, voice(0.1)).label == "neutral"
    assert fuse(words, voice(EXCITED_AROUSAL)).label == "excited"


def test_without_a_voice_words_are_never_excited() -> None:
    assert fuse(text("positive", positive=0.9, neutral=0.1), None).label == "positive"
    shouted = fuse(text("excited", excited=0.7, negative=0.3), None)
    assert shouted.label == "negative"  # the band on valence -0.3 decides
    assert shouted.arousal == 0.0  # no voice, no arousal
    assert shouted.voice is None
    angry = fuse(text("excited", excited=1.0), None)
    assert angry.label == "neutral"


def test_text_label_decides_when_no_voice_valence() -> None:
    # A three-class reading's own label stands even inside the valence band...
    weak = text("positive", positive=0.45, negative=0.3, neutral=0.25)
    fused = fuse(weak, voice(0.3))
    assert (fused.label, fused.confidence) == ("positive", 0.45)
    assert fuse(weak, None).label == "positive"
    # ...but a voice valence to blend brings the band back.
    assert fuse(weak, voice(0.3, valence=0.0)).label == "neutral"


def test_disabled_text_leaves_voice_to_decide() -> None:
    assert fuse(None, voice(0.9)).label == "excited"
    assert fuse(None, voice(0.2)).label == "neutral"
    # emotion2vec gives a valence: a sad, calm voice is negative even with no words.
    assert fuse(None, voice(0.25, valence=-0.8)).label == "negative"


def test_voice_valence_is_blended_with_text() -> None:
    fused = fuse(text("neutral", positive=0.3, neutral=0.7), voice(0.3, valence=-1.0))
    assert fused.valence == pytest.approx(0.6 * 0.3 + 0.4 * -1.0, abs=1e-3)
    assert fused.label == "negative"


def test_both_branches_off_is_neutral() -> None:
    fused = fuse(None, None)
    assert (fused.label, fused.confidence) == ("neutral", 0.5)


def test_confidence_grows_with_distance_from_boundary() -> None:
    weak = fuse(text("positive", positive=0.55, neutral=0.45), voice(0.3))
    strong = fuse(text("positive", positive=0.95, neutral=0.05), voice(0.3))
    assert weak.label == strong.label == "positive"
    assert 0.5 <= weak.confidence < strong.confidence <= 1.0
    near = fuse(None, voice(0.3, valence=VALENCE_BAND + 0.05))
    far = fuse(None, voice(0.3, valence=0.9))
    assert near.label == far.label == "positive"
    assert 0.5 <= near.confidence < far.confidence <= 1.0


def test_text_valence() -> None:
    assert text_valence(text("x", positive=0.7, negative=0.1)) == pytest.approx(0.6)


def test_a_stricter_excited_line_moves_the_confidence_with_it() -> None:
    # arousal_baseline's cold start asks fuse for a higher line than EXCITED_AROUSAL.
    words = text("neutral", neutral=1.0)
    assert fuse(words, voice(0.7), excited_from=0.75).label == "neutral"
    strict = fuse(words, voice(0.9), excited_from=0.75)
    assert (strict.label, strict.confidence) == ("excited", 0.8)
    assert fuse(words, voice(0.9)).confidence == pytest.approx(0.8571, abs=1e-4)
    # With a voice valence the neutral confidence falls towards the stricter line.
    calmish = fuse(words, voice(0.6, valence=0.0), excited_from=0.8)
    assert (calmish.label, calmish.confidence) == ("neutral", 0.75)
