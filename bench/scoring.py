"""Scores for the quality tests and the benchmark (not part of the product).

jiwer computes the transcript error rates; this module only normalises the texts, the same
way on both sides of every comparison (a reference and any recogniser's output):

* Chinese as ../shared/README.md asks: no punctuation or spaces, Latin letters upper-cased,
  and each Arabic digit written as the Chinese digit it is read as (``2`` -> ``二``), since
  the references spell numbers out ("一三七零…") while Whisper writes some as digits
  ("137…"); scored per character (CER).
* English by Whisper's own English normaliser (the ``whisper-normalizer`` package, the
  normaliser the Whisper paper scores with): lower case, no punctuation, spelled numbers as
  digits ("two" and "2." both become "2"), "Mr." as "mister", British spellings as American,
  contractions expanded; scored per word (WER).

Words-branch scores (:func:`score`): accuracy, macro-F1 and the confusion matrix, by
scikit-learn.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import jiwer

#: Arabic digits as the Chinese digits a reading of them says.
_ZH_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")


def normalise_zh(text: str) -> str:
    """Drop punctuation and spaces, upper-case Latin letters, Arabic digits as Chinese ones."""
    text = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in text if ch.isalnum()).translate(_ZH_DIGITS)


def normalise_en(text: str) -> str:
    """Whisper's English normalisation: lower-case words without punctuation, one space
    apart, numbers as digits, standard spellings (see the module docstring)."""
    return " ".join(_english_normaliser()(text).split())


@cache
def _english_normaliser():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def cer_zh(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate over all the pairs (errors / reference characters)."""
    refs, hyps = _pairs([normalise_zh(r) for r in references],
                        [normalise_zh(h) for h in hypotheses])
    return float(jiwer.cer(refs, hyps))


def wer_en(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over all the pairs (errors / reference words)."""
    refs, hyps = _pairs([normalise_en(r) for r in references],
                        [normalise_en(h) for h in hypotheses])
    return float(jiwer.wer(refs, hyps))


def _pairs(refs: list[str], hyps: list[str]) -> tuple[list[str], list[str]]:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    # jiwer refuses an empty reference; a clip with nothing to say has nothing to score.
    kept = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if not kept:
        raise ValueError("no non-empty reference to score against")
    return [r for r, _ in kept], [h for _, h in kept]


#: Classes of the words branch, in the order of the confusion matrix's rows (truth) and
#: columns (prediction).
CLASSES: tuple[str, ...] = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class TextScore:
    """How a words branch's predictions compare with the references."""

    accuracy: float
    macro_f1: float
    #: ``confusion[i][j]``: texts of class ``CLASSES[i]`` predicted as ``CLASSES[j]``.
    confusion: tuple[tuple[int, ...], ...]


def score(truth: Sequence[str], predicted: Sequence[str]) -> TextScore:
    """Accuracy, macro-F1 over :data:`CLASSES` and the confusion matrix (scikit-learn).

    A prediction outside :data:`CLASSES` (say *excited*) counts as wrong and appears in no
    column.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} references but {len(predicted)} predictions")
    if not truth:
        raise ValueError("nothing to score")
    unknown = sorted(set(truth) - set(CLASSES))
    if unknown:
        raise ValueError(f"reference label {unknown[0]!r} is not one of {', '.join(CLASSES)}")
    labels = list(CLASSES)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    return TextScore(
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, labels=labels, average="macro",
                                zero_division=0)),
        confusion=tuple(tuple(int(n) for n in row) for row in matrix),
    )
