"""The training step shared by ``build_zh_text_model.py`` and ``build_en_text_model.py``.

Both words models are one multinomial logistic regression (scikit-learn, balanced class
weights) over sublinear tf-idf n-grams plus a few dense features, saved in the ``.npz``
layout that :class:`inference.text_ngram_model.LinearNgramModel` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def train_and_save(texts: Sequence[str], labels: Sequence[str], extras: np.ndarray, *,
                   counts: Any, c: float, max_iter: int, out: Path, source: str,
                   weights: Sequence[float] | None = None) -> None:
    """Fit the model on ``texts`` (n-grams from the ``counts`` CountVectorizer, then
    ``extras``: one row of dense features per text) and write it to ``out``."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    print(f"{len(texts)} sentences: " + ", ".join(
        f"{c} {list(labels).count(c)}" for c in ("positive", "negative", "neutral")), flush=True)
    tfidf = TfidfTransformer(sublinear_tf=True)
    grams = tfidf.fit_transform(counts.fit_transform(texts))
    features = sp.hstack([grams, sp.csr_matrix(extras)]).tocsr()
    clf = LogisticRegression(C=c, max_iter=max_iter, class_weight="balanced")
    clf.fit(features, labels, sample_weight=None if weights is None else np.asarray(weights))
    print(f"training accuracy {clf.score(features, labels):.3f}", flush=True)

    vocab = counts.get_feature_names_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        vocab=np.array(vocab, dtype=str),
        idf=tfidf.idf_.astype(np.float32),
        coef=clf.coef_.astype(np.float32),
        intercept=clf.intercept_.astype(np.float32),
        classes=np.array(clf.classes_, dtype=str),
        source=np.array(source),
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(vocab)} n-grams)")
