"""Full-tier text emotion: any Hugging Face sequence classifier, mapped to the four tags.

The model's own class names (``config.id2label``) are mapped to :data:`~inference.types.TAGS`
by :func:`map_label`, case-insensitively, first rule that matches wins:

=====  ===============================================================  ==========
order  the class name contains                                          tag
=====  ===============================================================  ==========
1      ``LABEL_0`` / ``LABEL_1`` of a two-class model                    negative /
                                                                        positive
2      neutral, 中                                                       neutral
3      negative, neg, unhappy, sad, fear, disgust, 负, 悲                negative
4      positive, pos, joy, happy, love, 正                               positive
5      anger, angry, surprise, excite, 激                                excited
6      anything else (including ``LABEL_n`` of a larger model)          neutral
=====  ===============================================================  ==========

Negative words are tried before positive ones so that "unhappy" is not read as "happy".
``VOICEMOOD_TEXT_EMOTION_LABELS`` replaces the table for models whose class names say
nothing (``LABEL_0``...): a comma-separated tag per output column, in column order, e.g.
``negative,neutral,positive`` for a 3-class or ``negative,neutral,positive,excited`` for a
4-class model; a list whose length is not the model's number of classes, or a word that is
not a tag, is refused when the model loads.

A tag's score is the sum of the probabilities of the classes mapped to it; every tag is a
key of ``scores`` (0.0 when no class maps to it), and ``label`` is the tag with the
highest score, except for a model with no neutral class: its label is neutral while
``P(positive) - P(negative)`` stays inside the fusion band (±0.2). The default model,
IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment, has the classes ``Negative``/``Positive``.

A blank text is not sent to the model: it reads as neutral with certainty.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelUnavailable
from .fusion import VALENCE_BAND
from .model_paths import resolve_model_source
from .types import TAGS, ModelInfo, TextReading

if TYPE_CHECKING:
    from .config import InferenceConfig
    from .types import TextEmotionBackend

#: Longest input, in tokens; a voice note's transcript rarely comes near it.
MAX_LENGTH = 256

_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("neutral", ("neutral", "中")),
    ("negative", ("negative", "neg", "unhappy", "sad", "fear", "disgust", "负", "悲")),
    ("positive", ("positive", "pos", "joy", "happy", "love", "正")),
    ("excited", ("anger", "angry", "surprise", "excite", "激")),
)
_GENERIC = re.compile(r"^label[_ ]?(\d+)$")


def map_label(name: str, num_labels: int = 2) -> str:
    """Map a classifier's class name to one of the four tags (table in the module docstring).

    ``num_labels`` only matters for generic names: ``LABEL_0``/``LABEL_1`` are read as
    negative/positive when the model has exactly two classes, else as neutral.
    """
    lowered = name.strip().lower()
    generic = _GENERIC.match(lowered)
    if generic:
        index = int(generic.group(1))
        if num_labels == 2 and index in (0, 1):
            return ("negative", "positive")[index]
        return "neutral"
    for tag, needles in _RULES:
        if any(needle in lowered for needle in needles):
            return tag
    return "neutral"


def parse_labels(value: str) -> list[str]:
    """The tags of ``VOICEMOOD_TEXT_EMOTION_LABELS`` ("" -> [], meaning the name table)."""
    return [part.strip().lower() for part in value.split(",") if part.strip()]


def column_tags_from_setting(labels: Sequence[str], num_labels: int) -> list[str]:
    """Check the configured tags against the model: one known tag per output column."""
    unknown = [tag for tag in labels if tag not in TAGS]
    if unknown:
        raise ModelUnavailable(
            f"VOICEMOOD_TEXT_EMOTION_LABELS: {', '.join(unknown)} is not one of "
            f"{', '.join(TAGS)}"
        )
    if len(labels) != num_labels:
        raise ModelUnavailable(
            f"VOICEMOOD_TEXT_EMOTION_LABELS names {len(labels)} classes, but the text "
            f"emotion model has {num_labels}"
        )
    return list(labels)


class TransformersTextEmotion:
    """:class:`~inference.types.TextEmotionBackend` over a sequence classifier."""

    def __init__(self, tokenizer: Any, model: Any, info: ModelInfo, device: str,
                 labels: Sequence[str] | None = None) -> None:
        self._tokenizer = tokenizer
        self._model = model
        self._device = device
        self._lock = threading.Lock()  # fast tokenizers are not safe to share across threads
        id2label = dict(getattr(model.config, "id2label", None) or {})
        n = int(getattr(model.config, "num_labels", len(id2label)) or len(id2label))
        #: tag of each output column, in column order
        self.column_tags: list[str] = (
            column_tags_from_setting(labels, n) if labels
            else [map_label(str(id2label.get(i, f"LABEL_{i}")), n) for i in range(n)]
        )
        self._has_neutral = "neutral" in self.column_tags
        self.info = info

    def classify_batch(self, texts: Sequence[str], languages: Sequence[str]) -> list[TextReading]:
        """One reading per text; ``languages`` is accepted for the protocol and not needed."""
        import torch

        blank = {tag: 1.0 if tag == "neutral" else 0.0 for tag in TAGS}
        readings: list[TextReading] = [
            TextReading(label="neutral", scores=dict(blank), model=self.info.model) for _ in texts
        ]
        todo = [i for i, t in enumerate(texts) if t and t.strip()]
        if todo:
            with self._lock:
                batch = self._tokenizer(
                    [texts[i] for i in todo],
                    padding=True,
                    truncation=True,
                    max_length=MAX_LENGTH,
                    return_tensors="pt",
                )
            batch = {k: v.to(self._device) for k, v in batch.items()}
            with torch.inference_mode():
                logits = self._model(**batch).logits
            probs = torch.softmax(logits.float(), dim=-1).cpu().tolist()
            for i, row in zip(todo, probs, strict=True):
                scores = {tag: 0.0 for tag in TAGS}
                for tag, p in zip(self.column_tags, row, strict=False):
                    scores[tag] += float(p)
                label = max(TAGS, key=lambda tag: scores[tag])
                valence = scores["positive"] - scores["negative"]
                if not self._has_neutral and label != "excited" and abs(valence) < VALENCE_BAND:
                    label = "neutral"
                readings[i] = TextReading(label=label, scores=scores, model=self.info.model)
        return readings


def load_transformers_text(settings: InferenceConfig, device: str) -> TextEmotionBackend:
    """Load ``settings.text_emotion_model`` (one model) with transformers' Auto classes.

    ``settings.text_emotion_labels`` (VOICEMOOD_TEXT_EMOTION_LABELS), when set, names the
    tag of each output column instead of the class-name table. Per-language models
    (``zh=...,en=...``) are loaded by :func:`inference.backends.load_text`, one
    :func:`load_transformers_model` each.
    """
    return load_transformers_model(settings.text_emotion_model,
                                   getattr(settings, "text_emotion_labels", "") or "",
                                   settings, device)


def load_transformers_model(model_id: str, labels_setting: str, settings: InferenceConfig,
                            device: str) -> TransformersTextEmotion:
    """Load one sequence classifier; ``labels_setting`` is its comma-separated tag list.

    A local folder (see :func:`~inference.model_paths.local_model_dir`) is read with
    ``local_files_only=True``; a hub id is fetched from Hugging Face only when the hub
    answers a 2 s probe, else :class:`~inference.errors.ModelUnavailable` is raised.
    """
    source = resolve_model_source(
        model_id,
        settings.models_dir,
        "hf",
        component="text emotion",
        env_var="VOICEMOOD_TEXT_EMOTION_MODEL",
    )
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except Exception as exc:  # noqa: BLE001 - a broken install shows up as any error
        raise ModelUnavailable(f"transformers cannot be imported: {exc}") from exc

    # resolve_model_source returns a folder when the model is on disk, else a hub id.
    local = Path(source).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        model = AutoModelForSequenceClassification.from_pretrained(source, local_files_only=local)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, HTTP errors...
        raise ModelUnavailable(
            f"could not load the text emotion model {source!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if device.startswith("cuda"):
        # A sequence classifier's argmax survives fp16; it halves memory and time on a GPU.
        model.half()
    model.to(device)
    model.eval()
    info = ModelInfo(
        component="text_emotion",
        tier="full",
        model=source,
        device=device,
        detail=f"transformers {type(model).__name__}",
        extra={"configured": model_id, **({"labels": labels_setting} if labels_setting else {})},
    )
    return TransformersTextEmotion(tokenizer, model, info, device,
                                   labels=parse_labels(labels_setting))
