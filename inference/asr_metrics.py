"""Error rates for judging transcripts (tests and the benchmark share these)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence


def normalise_zh(text: str) -> str:
    """Drop punctuation and spaces, upper-case Latin letters (see shared/README.md)."""
    text = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in text if ch.isalnum())


def normalise_en(text: str) -> list[str]:
    """Lower-case words without punctuation; hyphenated words count as two."""
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return re.sub(r"[^a-z0-9' ]+", " ", text).split()


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance over characters (strings) or words (lists)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]
