"""Offline emotion backends: lexicon text emotion and prosodic voice arousal."""

from __future__ import annotations

import numpy as np
import pytest

from inference.arousal_baseline import (
    COLD_START_EXCITED_AROUSAL,
    MIN_HISTORY,
    REFERENCE_AROUSAL,
    fuse_with_baseline,
    personalise,
)
from inference.fusion import fuse
from inference.text_emotion_lexicon import LexiconTextEmotion
from inference.text_en_model import en_model, tokens, vader_features, word_ngrams
from inference.text_ngram_model import zh_model
from inference.text_zh_lexicon import zh_evidence
from inference.types import TAGS, TextReading, VoiceReading
from inference.voice_prosody import (
    AGITATED_FROM,
    CALM_BELOW,
    ProsodyVoiceEmotion,
    arousal_from_features,
    calm_arousal,
    label_for,
    load_model,
    pitch_semitones,
    prosody_features,
    reliability,
)


@pytest.fixture(scope="module")
def lexicon() -> LexiconTextEmotion:
    return LexiconTextEmotion()


@pytest.mark.parametrize(
    ("sentence", "language", "expected"),
    [
        ("我今天非常开心，太好了", "zh", "positive"),
        ("我很难过，也很害怕", "zh", "negative"),
        # Words give valence only: anger is negative, "excited" is the voice's call.
        ("气死我了，你怎么能这样", "zh", "negative"),
        ("今天去超市买了菜", "zh", "neutral"),
        ("I am so happy today, everything went well.", "en", "positive"),
        ("I feel sad and lonely.", "en", "negative"),
        ("I am furious about this!", "en", "negative"),
        ("The meeting is at three in room four.", "en", "neutral"),
        ("This is not good at all.", "en", "negative"),  # VADER's negation reaches the model
        ("", "en", "neutral"),
    ],
)
def test_lexicon_tags(lexicon: LexiconTextEmotion, sentence: str, language: str,
                      expected: str) -> None:
    reading = lexicon.classify(sentence, language)
    assert reading.label == expected, reading.scores
    assert set(reading.scores) == set(TAGS)
    assert reading.scores["excited"] == 0.0
    assert sum(reading.scores.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in reading.scores.values())


@pytest.mark.parametrize(
    ("text", "positive", "negative"),
    [
        ("非常开心", 2.0, 0.0),  # extreme degree word doubles the hit
        ("有点难过", 0.0, 0.5),  # mild degree word halves it
        ("开心！", 1.5, 0.0),  # an exclamation strengthens the clause
        ("不会太差", 1.2, 0.0),  # negated "bad": a weak positive (1.5 x 0.8)
        ("并不是很开心", 0.0, 1.2),  # negated, intensified "happy"
        ("我不难过😊", 1.8, 0.0),  # negated "sad" plus a smiling emoji
        ("[哈哈]", 1.0, 0.0),  # a Weibo emoticon code is one hit
        ("今天去超市买了菜", 0.0, 0.0),
    ],
)
def test_chinese_evidence_weighs_negation_degree_and_emoticons(
    text: str, positive: float, negative: float
) -> None:
    evidence = zh_evidence(text)
    assert evidence.positive == pytest.approx(positive)
    assert evidence.negative == pytest.approx(negative)


def test_chinese_reading_combines_model_and_lexicon(lexicon: LexiconTextEmotion) -> None:
    assert zh_model() is not None, "inference/zh_sentiment_ngram.npz is missing"
    assert "n-gram model" in lexicon.info.model
    # No lexicon word: the n-gram model alone leaves this factual sentence neutral.
    plain = lexicon.classify("今天去超市买了菜", "zh")
    assert plain.label == "neutral"
    assert sum(plain.scores.values()) == pytest.approx(1.0)


def test_english_tokens_fold_tweet_noise() -> None:
    assert tokens("@user I LOVE this :D!! #blessed http://t.co/x at 3:30pm &amp; 😂") == [
        "@user", "i", "love", "this", ":D", "!", "!", "blessed", "http", "at", "0", "pm", "&",
        "😂"]
    # A typographic apostrophe is a contraction; bare punctuation is dropped.
    assert tokens("Don\u2019t be sad :( ...") == ["don't", "be", "sad", ":("]
    assert word_ngrams("I love it!") == ["i", "love", "it", "!", "i love", "love it", "it !"]


def test_english_vader_features() -> None:
    assert vader_features({"neg": 0.1, "neu": 0.5, "pos": 0.4, "compound": 0.44}) == [
        0.44, 0.4, 0.1, 1.0]
    assert vader_features({"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.0}) == [
        0.0, 0.0, 0.0, 0.0]


#: VADER's compound for it is +0.2732 ("agreed"): positive under VADER alone.
COUNCIL = "The city council agreed to review the parking rules in March."


def test_english_model_needs_more_than_one_vader_word(lexicon: LexiconTextEmotion) -> None:
    assert en_model() is not None, "inference/en_sentiment_ngram.npz is missing"
    assert lexicon.info.model == ("words-zh (n-gram model x lexicon), "
                                  "words-en (n-gram model over vaderSentiment)")
    reading = lexicon.classify(COUNCIL, "en")
    assert reading.label == "neutral", reading.scores
    assert reading.scores["neutral"] > 0.5


@pytest.mark.parametrize("text", [
    "This is a note.",  # the model alone leans negative on "this is"
    "We are meeting at three o'clock.",
    "我很开心",  # read as English: nothing VADER knows
])
def test_english_without_a_sentiment_word_is_neutral(lexicon: LexiconTextEmotion,
                                                      text: str) -> None:
    reading = lexicon.classify(text, "en")
    assert reading.scores == {"positive": 0.0, "negative": 0.0, "neutral": 1.0, "excited": 0.0}


def test_english_without_model_file_is_vader_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inference.text_emotion_lexicon.en_model", lambda: None)
    fallback = LexiconTextEmotion()
    assert fallback.info.model == "words-zh (n-gram model x lexicon), words-en (vaderSentiment)"
    reading = fallback.classify(COUNCIL, "en")
    assert reading.label == "positive"
    assert reading.scores["positive"] == pytest.approx(0.2732 / (0.2732 + 0.35), abs=1e-4)


def test_lexicon_detects_chinese_without_language_hint(lexicon: LexiconTextEmotion) -> None:
    assert lexicon.classify("太好了，我很开心", "").label == "positive"


def test_lexicon_batch_matches_single(lexicon: LexiconTextEmotion) -> None:
    texts = ["我很开心", "I hate this!", "ok"]
    langs = ["zh", "en", "en"]
    batch = lexicon.classify_batch(texts, langs)
    assert [r.label for r in batch] == [lexicon.classify(t, lg).label
                                       for t, lg in zip(texts, langs, strict=True)]


def _voiced(f0: float, seconds: float = 2.0, vibrato_st: float = 0.0,
            tilt: float = 1.0, harmonics: int = 30) -> np.ndarray:
    """A synthetic voiced sound with syllable-like loudness bumps.

    Harmonic k has amplitude ``k ** -tilt``: a small tilt is a bright, effortful voice.
    """
    t = np.arange(int(16000 * seconds)) / 16000
    pitch = f0 * 2 ** (vibrato_st * np.sin(2 * np.pi * 1.5 * t) / 12)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    wave = sum(k ** -tilt * np.sin(k * phase) for k in range(1, harmonics + 1))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    out = wave * envelope
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


def _spoken(f0: float, seconds: float = 2.0, vibrato_st: float = 0.0,
            tilt: float = 1.0) -> np.ndarray:
    """:func:`_voiced` cut into syllables by short pauses, as speech is (so its speech
    stands well above its floor and the estimate trusts it)."""
    wave = _voiced(f0, seconds, vibrato_st, tilt)
    t = np.arange(len(wave)) / 16000
    return (wave * (np.sin(2 * np.pi * 2 * t) > -0.3)).astype(np.float32)


def test_prosody_features_measure_pitch_and_brightness() -> None:
    flat = prosody_features(_voiced(120, tilt=1.5))
    lively = prosody_features(_voiced(120, vibrato_st=4.0, tilt=0.3))
    assert lively["pitch_spread_st"] > flat["pitch_spread_st"] + 1.0
    assert lively["hf_ratio"] > flat["hf_ratio"]


def test_louder_brighter_livelier_voice_is_more_aroused() -> None:
    backend = ProsodyVoiceEmotion()
    calm = backend.analyze(_spoken(110, tilt=1.5), level_dbfs=-38.0)
    agitated = backend.analyze(_spoken(220, vibrato_st=5.0, tilt=0.3), level_dbfs=-14.0)
    assert agitated.arousal > calm.arousal + 0.3
    assert calm.label == "calm"
    assert agitated.label == "agitated"
    assert 0.0 <= calm.arousal <= 1.0 and 0.0 <= agitated.arousal <= 1.0
    assert sum(agitated.scores.values()) == pytest.approx(1.0)


def test_a_bright_voice_is_aroused_even_at_an_unknown_level() -> None:
    # The spectrum's shape decides, not the loudness: the same voice without its level.
    bright = ProsodyVoiceEmotion().analyze(_spoken(220, vibrato_st=5.0, tilt=0.3))
    dull = ProsodyVoiceEmotion().analyze(_spoken(120, tilt=1.5))
    assert (bright.label, dull.label) == ("agitated", "calm")


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ({"speech_s": 2.0, "contrast_db": 40.0}, 1.0),
        ({"speech_s": 0.65, "contrast_db": 40.0}, 0.5),  # half way up the 0.3-1.0 s ramp
        ({"speech_s": 0.2, "contrast_db": 40.0}, 0.0),
        ({"speech_s": 2.0, "contrast_db": 15.0}, 0.5),  # speech barely above its floor
        ({"speech_s": 0.65, "contrast_db": 15.0}, 0.25),
    ],
)
def test_reliability_ramps(features: dict[str, float], expected: float) -> None:
    assert reliability(features) == pytest.approx(expected)


def test_one_word_is_pulled_towards_calm_speech() -> None:
    # The same agitated voice, 2 s against a single word's 0.5 s: the word says less.
    backend = ProsodyVoiceEmotion()
    long = backend.analyze(_spoken(220, 2.0, vibrato_st=5.0, tilt=0.3), level_dbfs=-14.0)
    word = backend.analyze(_spoken(220, 0.8, vibrato_st=5.0, tilt=0.3), level_dbfs=-14.0)
    assert long.label == "agitated"
    assert word.label == "moderate"
    assert calm_arousal() < word.arousal < long.arousal - 0.3
    # A voice without pauses (hum or noise as loud as the speech) says nothing at all.
    steady = backend.analyze(_voiced(220, vibrato_st=5.0, tilt=0.3), level_dbfs=-14.0)
    assert steady.arousal == pytest.approx(calm_arousal())


def test_the_shipped_model_reads_the_features_it_is_given() -> None:
    model = load_model()
    features = prosody_features(_spoken(150))
    assert set(model["features"]) <= set(features)
    assert len(model["coef"]) == len(model["mean"]) == len(model["scale"]) == 7
    # The personal baseline measures offsets from the same "ordinary calm speech".
    assert calm_arousal() == pytest.approx(REFERENCE_AROUSAL, abs=0.005)
    # Trained, never set by hand: a brighter spectrum above 800 Hz counts for arousal.
    assert model["coef"][model["features"].index("band_2500")] > 0


def test_arousal_ignores_unknown_level() -> None:
    feats = prosody_features(_voiced(150))
    assert "level_dbfs" not in feats
    assert 0.0 < arousal_from_features(feats) < 1.0


def test_labels_follow_thresholds() -> None:
    assert label_for(CALM_BELOW - 0.01) == "calm"
    assert label_for(CALM_BELOW) == "moderate"
    assert label_for(AGITATED_FROM) == "agitated"


def test_prosody_handles_tiny_clip() -> None:
    reading = ProsodyVoiceEmotion().analyze(np.zeros(100, dtype=np.float32))
    assert 0.0 <= reading.arousal <= 1.0


def test_pitch_is_relative_to_the_speakers_median_with_octave_errors_folded() -> None:
    # Two frames tracked at double / half the true 100 Hz are not a 24-semitone melody.
    st = pitch_semitones(np.array([100.0, 100.0, 100.0, 200.0, 50.0, 112.25]))
    assert st == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.0, 2.0], abs=0.01)
    # A deep and a high voice with the same melody get the same semitone contour.
    assert pitch_semitones(np.array([80.0, 160 / 1.5, 120.0])) == pytest.approx(
        pitch_semitones(np.array([160.0, 320 / 1.5, 240.0])))


def test_octave_errors_do_not_inflate_pitch_spread() -> None:
    clean = _voiced(120, seconds=2.0)
    # Frames exactly an octave up, as a tracker reads a creaky or breathy stretch.
    doubled = _voiced(240, seconds=0.6)
    feats = prosody_features(np.concatenate([clean, doubled, clean]))
    assert feats["pitch_spread_st"] < 1.0


@pytest.mark.parametrize(
    ("arousal", "history", "expected"),
    [
        (0.7, [], 0.7),  # no history: the population scale
        (0.7, [0.9, 0.9], 0.7),  # two notes are too few to judge
        (0.7, [0.13] * 10, 0.7),  # a person who sounds like everyone: unchanged
        (0.7, [0.7] * 5, 0.3713),  # lively person, five notes: half their offset removed
        (0.5, [0.05] * 5, 0.6276),  # very quiet person: the same note counts for more
        (0.7, [0.13, 0.13, 0.13, 0.13, 0.99], 0.7),  # one shouted note: the median stays
    ],
)
def test_personal_baseline(arousal: float, history: list[float], expected: float) -> None:
    assert personalise(arousal, history) == pytest.approx(expected, abs=1e-4)


def test_fusion_with_baseline_keeps_the_raw_voice_reading() -> None:
    words = TextReading("neutral", {"positive": 0.1, "negative": 0.1, "neutral": 0.8,
                                    "excited": 0.0}, "t")
    loud = VoiceReading("agitated", 0.7, {"agitated": 1.0}, "prosody")
    assert fuse(words, loud).label == "excited"
    lively_history = [0.8] * 20  # this person always sounds like this
    personal = fuse_with_baseline(fuse(words, loud), lively_history)
    assert personal.label == "neutral"
    assert personal.arousal < 0.4
    assert personal.voice is loud  # stored raw: the baseline of later notes is not shifted


def test_without_a_baseline_excited_needs_a_clearly_raised_voice() -> None:
    words = TextReading("neutral", {"positive": 0.1, "negative": 0.1, "neutral": 0.8,
                                    "excited": 0.0}, "t")
    borderline = VoiceReading("agitated", 0.7, {"agitated": 1.0}, "prosody")
    raised = VoiceReading("agitated", 0.9, {"agitated": 1.0}, "prosody")
    assert COLD_START_EXCITED_AROUSAL == 0.75 and MIN_HISTORY == 3
    # A first note (and a second): 0.7 would be excited on the population line, not here.
    assert fuse(words, borderline).label == "excited"
    for history in ([], [0.13], [0.13, 0.13]):
        first = fuse_with_baseline(fuse(words, borderline), history)
        assert (first.label, first.voice) == ("neutral", borderline)
        assert first.confidence == 0.8  # the words' own label decides, with their score
        clear = fuse_with_baseline(fuse(words, raised), history)
        # The confidence is measured from the stricter line: 0.9 is 0.15 of 0.25 past it.
        assert (clear.label, clear.confidence) == ("excited", 0.8)
    # With a baseline of ordinary calm notes the usual line is back.
    assert fuse_with_baseline(fuse(words, borderline), [0.13] * 3).label == "excited"
    assert fuse_with_baseline(fuse(None, None), []).label == "neutral"
