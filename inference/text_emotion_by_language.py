"""A text classifier per language, and the offline words model for the languages without one.

``VOICEMOOD_TEXT_EMOTION_MODEL`` holds either one model (hub id or folder), read for every
language as before, or per-language models::

    zh=IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment,en=cardiffnlp/twitter-roberta-base-sentiment-latest

A note is read by the classifier of its language (the language the ASR settled, see
inference/asr_routing.py); a language with no classifier, or whose classifier is not
downloaded (``auto``), is read by the offline words model of that language
(inference/text_emotion_lexicon.py). ``VOICEMOOD_TEXT_EMOTION_LABELS`` is one list for every
classifier (``negative,neutral,positive``) or one per language, separated by ``;``
(``zh=negative,positive;en=negative,neutral,positive``).

The defaults and their class names, mapped to tags by the table in
inference/text_emotion_transformers.py:

==  ===============================================  ==================================
zh  IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment      ``Negative`` -> negative,
                                                     ``Positive`` -> positive (no neutral
                                                     class: neutral inside ±0.2)
en  cardiffnlp/twitter-roberta-base-sentiment-latest ``negative`` -> negative,
                                                     ``neutral`` -> neutral,
                                                     ``positive`` -> positive
==  ===============================================  ==================================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from inference.types import ModelInfo, TextEmotionBackend, TextReading

log = logging.getLogger(__name__)

#: The key of a model that reads every language (a value without ``lang=``).
ANY = "*"


def parse_text_models(value: str) -> dict[str, str]:
    """``"zh=A,en=B"`` -> ``{"zh": "A", "en": "B"}``; ``"A"`` -> ``{"*": "A"}``; ``""`` -> {}.

    Raises ValueError on an entry without ``=`` in a per-language list, or a language twice.
    """
    value = (value or "").strip()
    if not value:
        return {}
    if "=" not in value:
        return {ANY: value}
    models: dict[str, str] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        lang, sep, model = (s.strip() for s in entry.partition("="))
        if not sep or not lang or not model:
            raise ValueError(f"VOICEMOOD_TEXT_EMOTION_MODEL: {entry!r} is not language=model")
        if lang in models:
            raise ValueError(f"VOICEMOOD_TEXT_EMOTION_MODEL names {lang!r} twice")
        models[lang] = model
    return models


def parse_text_labels(value: str) -> dict[str, str]:
    """``VOICEMOOD_TEXT_EMOTION_LABELS`` per language: ``{"*": "a,b,c"}`` for one list,
    ``{"zh": "a,b", "en": "a,b,c"}`` for ``zh=a,b;en=a,b,c``, ``{}`` when empty."""
    value = (value or "").strip()
    if not value:
        return {}
    if "=" not in value:
        return {ANY: value}
    out: dict[str, str] = {}
    for entry in (part.strip() for part in value.split(";")):
        if entry:
            lang, _sep, labels = (s.strip() for s in entry.partition("="))
            out[lang] = labels
    return out


def labels_for(labels: dict[str, str], language: str) -> str:
    """The label list that applies to ``language``'s classifier ("" = by class name)."""
    return labels.get(language, labels.get(ANY, ""))


@dataclass
class ByLanguageText:
    """:class:`~inference.types.TextEmotionBackend` with one classifier per language."""

    classifiers: dict[str, TextEmotionBackend]  # language (or "*") -> classifier
    words: TextEmotionBackend  # the offline words model, for every other language
    info: ModelInfo

    def backend_for(self, language: str) -> TextEmotionBackend:
        """The classifier that reads ``language``."""
        return self.classifiers.get(language) or self.classifiers.get(ANY) or self.words

    def classify_batch(self, texts: Sequence[str], languages: Sequence[str]) -> list[TextReading]:
        """One reading per text; each backend runs once over its texts (one batch each)."""
        out: list[TextReading | None] = [None] * len(texts)
        groups: dict[int, tuple[TextEmotionBackend, list[int]]] = {}
        for i, language in enumerate(languages):
            backend = self.backend_for(language)
            groups.setdefault(id(backend), (backend, []))[1].append(i)
        for backend, members in groups.values():
            readings = backend.classify_batch([texts[i] for i in members],
                                              [languages[i] for i in members])
            for i, reading in zip(members, readings, strict=True):
                out[i] = reading
        assert all(r is not None for r in out)
        return out  # type: ignore[return-value]
