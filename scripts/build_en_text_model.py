"""Build ``inference/en_sentiment_ngram.npz``, the offline English words model.

Usage::

    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d /tmp/vader
    python scripts/build_en_text_model.py /tmp/vader/vaderSentiment-3.3.2.tar.gz

Training data: the human-rated sentences of Hutto & Gilbert (ICWSM 2014) that ship in the
vaderSentiment 3.3.2 sdist (MIT licence) as ``additional_resources/hutto_ICWSM_2014.tar.gz``:
4,200 tweet-like texts, 5,190 New York Times editorial snippets, 10,605 movie review snippets
and 3,708 product review snippets, each with the mean of at least 20 people's ratings on a
-4 .. +4 scale whose 0 is "neutral (or neither)". A sentence is *neutral* when that mean rounds
to 0 (``|mean| <` :data:`NEUTRAL_BELOW`), else positive or negative by its sign.

The project's dev sets (``../shared/data/*_text_sentiment``) are never read here. The model is
a multinomial logistic regression (scikit-learn, balanced class weights, as the Chinese model)
over the features described in :mod:`inference.text_en_model`; the vocabulary is the
:data:`VOCAB` most frequent word 1-2-grams seen in at least :data:`MIN_DF` sentences. The
regularisation :data:`C` and the weight :data:`TWEET_WEIGHT` of the tweets (the part of the
corpus nearest to short personal messages) were chosen by 5-fold cross-validation on those
tweets, training on everything else (macro-F1: C=1 0.739, C=0.3 0.752, C=0.1 0.758, C=0.03
0.736; tweets x3 at C=0.1 0.765). Deterministic: the same corpus gives the same file.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.text_en_model import MODEL_PATH, vader_features, word_ngrams  # noqa: E402
from scripts.ngram_training import train_and_save  # noqa: E402

VOCAB = 20_000
MIN_DF = 2
C = 0.1
TWEET_WEIGHT = 3.0
#: Ratings were whole points from -4 to +4: a mean under half a point rounds to "neutral".
NEUTRAL_BELOW = 0.5
FILES = ("tweets_GroundTruth.txt", "nytEditorialSnippets_GroundTruth.txt",
         "movieReviewSnippets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt")
SOURCE = ("vaderSentiment==3.3.2 sdist (MIT): additional_resources/hutto_ICWSM_2014.tar.gz, "
          + ", ".join(FILES))


def _ground_truth(source: Path) -> dict[str, str]:
    """File name -> text of the four ``*_GroundTruth.txt`` files (sdist, inner tar or dir)."""
    if source.is_dir():
        return {name: next(source.rglob(name)).read_bytes().decode("utf-8", "replace")
                for name in FILES}
    with tarfile.open(source) as outer:
        inner_name = next(n for n in outer.getnames() if n.endswith("hutto_ICWSM_2014.tar.gz"))
        fh = outer.extractfile(inner_name)
        assert fh is not None
        with tarfile.open(fileobj=io.BytesIO(fh.read())) as inner:
            out = {}
            for name in FILES:
                member = next(n for n in inner.getnames() if n.endswith(name))
                data = inner.extractfile(member)
                assert data is not None
                out[name] = data.read().decode("utf-8", "replace")
            return out


def read_corpus(source: Path) -> tuple[list[str], list[str], list[float]]:
    """(texts, labels, sample weights) from the vaderSentiment sdist or a folder of the files."""
    texts, labels, weights = [], [], []
    for name, raw in _ground_truth(source).items():
        for line in raw.splitlines():
            parts = line.strip().split("\t")
            if len(parts) < 3 or not parts[2].strip():
                continue
            mean = float(parts[1])
            texts.append(parts[2].strip())
            labels.append("neutral" if abs(mean) < NEUTRAL_BELOW
                          else "positive" if mean > 0 else "negative")
            weights.append(TWEET_WEIGHT if name.startswith("tweets") else 1.0)
    return texts, labels, weights


def main(argv: list[str] | None = None) -> int:
    """Train and write the model file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vader", type=Path,
                        help="vaderSentiment-3.3.2.tar.gz, or a folder with the rated files")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)

    from sklearn.feature_extraction.text import CountVectorizer
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts, labels, weights = read_corpus(args.vader)
    counts = CountVectorizer(analyzer=word_ngrams, min_df=MIN_DF, max_features=VOCAB,
                             dtype=np.float64)
    vader = SentimentIntensityAnalyzer()
    extras = np.array([vader_features(vader.polarity_scores(t)) for t in texts])
    train_and_save(texts, labels, extras, counts=counts, c=C, max_iter=3000, out=args.out,
                   source=SOURCE, weights=weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
