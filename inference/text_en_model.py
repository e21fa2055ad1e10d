"""A small linear English sentiment model over word n-grams and VADER's reading, in numpy.

The model file (``inference/en_sentiment_ngram.npz``, well under 1 MB) is built by
``scripts/build_en_text_model.py`` from the human-rated sentences that ship inside the
vaderSentiment 3.3.2 sdist on PyPI (MIT; tweets, New York Times editorial snippets, movie
and product review snippets, each rated from -4 to +4 by at least 20 people);
``models/manifest.json`` names the sources. Nothing is learnt from the project's dev sets.

Features of a text, exactly as the build script computes them with scikit-learn:

1. its word 1-2-grams (:func:`word_ngrams`: lower-cased, links, @mentions and numbers
   folded to one token each, ``#`` dropped from hashtags, emoticons, emoji, ``!`` and ``?``
   kept as tokens) that are in the model's vocabulary, as ``(1 + ln count) * idf``, scaled to
   unit length;
2. four VADER features (:func:`vader_features`): compound, positive share, negative share,
   and "VADER found any sentiment word".

Scores are ``softmax(W · features + b)`` over negative, neutral, positive. A text in which
VADER finds no sentiment word at all is neutral without asking the model: the model judges
VADER's evidence in its context (is it sentiment, and which way), it does not invent any.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from inference.text_ngram_model import LinearNgramModel

MODEL_PATH = Path(__file__).resolve().parent / "en_sentiment_ngram.npz"
NGRAMS = (1, 2)

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
#: Western emoticons, eyes first (":-)", ";D", ":'(", "=P") or heart "<3"; kept before
#: lower-casing so ":D" and ":d" stay what they are.
_EMOTICON = r"[:;=8][\-o\*']?[\)\]\(\[dDpP/\\|@3]|<3"
_TOKEN = re.compile(
    r"@user|" + _EMOTICON
    + r"|[a-z]+(?:'[a-z]+)?"  # words, with their contraction ("don't", "it's")
    + r"|\d+(?:[.,:]\d+)*"  # numbers, times and prices
    + r"|[!?]"  # emphasis and questions carry sentiment in tweets
    + r"|[^\w\s]",  # anything else that is one symbol: emoji, "&"
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
#: Punctuation that is not part of an emoticon says nothing on its own.
_SILENT = frozenset("<>@/\\-_.,;:'\"()[]*")


def tokens(text: str) -> list[str]:
    """The words and symbols of ``text`` as the model sees them."""
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = text.replace("\u2019", "'")  # typographic apostrophe: "don’t" is "don't"
    text = _MENTION.sub(" @user ", _URL.sub(" http ", text))
    out: list[str] = []
    for tok in _TOKEN.findall(text.replace("#", " ")):
        if tok[0].isalpha() or tok == "@user":
            out.append(tok.lower())
        elif _NUMBER.match(tok):
            out.append("0")
        elif tok in _SILENT:
            continue
        else:
            out.append(tok)
    return out


def word_ngrams(text: str) -> list[str]:
    """Word 1-2-grams of :func:`tokens`, joined by a space (scikit-learn's analyzer)."""
    toks = tokens(text)
    lo, hi = NGRAMS
    return [" ".join(toks[i:i + n]) for n in range(lo, hi + 1)
            for i in range(len(toks) - n + 1)]


def vader_features(polarity: Mapping[str, float]) -> list[float]:
    """The four VADER features of the module docstring, from ``polarity_scores``' dict."""
    pos, neg = float(polarity["pos"]), float(polarity["neg"])
    return [float(polarity["compound"]), pos, neg, 1.0 if pos + neg > 0 else 0.0]


class EnSentimentModel(LinearNgramModel):
    """The English words model: word 1-2-grams and four VADER features."""

    def __init__(self, path: Path = MODEL_PATH) -> None:
        super().__init__(path)

    def predict(self, text: str, polarity: Mapping[str, float]) -> dict[str, float]:
        """Class probabilities of one text, given VADER's ``polarity_scores`` of it."""
        features = vader_features(polarity)
        if not any(features):
            # The neutral gate: no sentiment word, no sentiment. Function words alone lean
            # polar in the model ("this is" is frequent in the reviews it learnt from), which
            # would tag a plain "This is a note." as negative.
            return {c: 1.0 if c == "neutral" else 0.0 for c in self.classes}
        return self.probabilities(word_ngrams(text), features)


@cache
def en_model() -> EnSentimentModel | None:
    """The shipped English model, or None when its file is missing."""
    return EnSentimentModel() if MODEL_PATH.exists() else None
