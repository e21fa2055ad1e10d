"""A text classifier per language (VOICEMOOD_TEXT_EMOTION_MODEL=zh=...,en=...), and the
offline words model for a language without one. The classifiers are tiny BERTs with forced
outputs (scripts/make_tiny_models.py): the zh one always says positive, the en one (3
classes, like the English default) always negative, so who read which text is known.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.backends import load_text, plan
from inference.config import InferenceConfig
from inference.device import resolve_device
from inference.errors import ModelUnavailable
from inference.text_emotion_by_language import (
    ByLanguageText,
    parse_text_labels,
    parse_text_models,
)
from inference.text_emotion_lexicon import LexiconTextEmotion
from tests.tiny_models import builder, one_torch_thread

#: Where the models under test run: VOICEMOOD_DEVICE (auto, cpu, cuda, cuda:N), default cpu.
DEVICE = resolve_device(os.environ.get("VOICEMOOD_DEVICE", "cpu"))


@pytest.mark.parametrize(
    ("value", "models"),
    [
        ("IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment",
         {"*": "IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment"}),
        ("zh=a/b, en=/models/c", {"zh": "a/b", "en": "/models/c"}),
        ("", {}),
    ],
)
def test_parse_text_models(value: str, models: dict[str, str]) -> None:
    assert parse_text_models(value) == models


@pytest.mark.parametrize("value", ["zh=a,b", "zh=a,zh=b", "=a,en=b"])
def test_parse_text_models_refuses_bad_lists(value: str) -> None:
    with pytest.raises(ValueError, match="VOICEMOOD_TEXT_EMOTION_MODEL"):
        parse_text_models(value)


def test_parse_text_labels() -> None:
    assert parse_text_labels("negative,neutral,positive") == {"*": "negative,neutral,positive"}
    assert parse_text_labels("zh=negative,positive; en=negative,neutral,positive") == {
        "zh": "negative,positive", "en": "negative,neutral,positive"}
    assert parse_text_labels("") == {}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():  # see tests/tiny_models.py: funasr keeps the count it loads with
        yield


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tiny-text")
    b = builder()
    return {
        "zh": b.build_text_classifier(out / "zh", label="positive"),
        "en": b.build_text_classifier(out / "en", label="negative", labels=b.TEXT_LABELS_3),
    }


def _config(tmp_path: Path, value: str, **overrides: object) -> InferenceConfig:
    values: dict[str, object] = {"models_dir": tmp_path, "text_emotion_backend": "auto",
                                 "text_emotion_model": value}
    values.update(overrides)
    return InferenceConfig(**values)  # type: ignore[arg-type]


TEXTS = ["我今天很开心", "i am so happy today", "je suis très content", "   "]
LANGUAGES = ["zh", "en", "fr", "en"]


def test_each_language_is_read_by_its_classifier(
    classifiers: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"zh={classifiers['zh']},en={classifiers['en']}"
    backend = load_text(_config(tmp_path, value), DEVICE)
    assert isinstance(backend, ByLanguageText)
    calls: list[list[str]] = []
    for lang in ("zh", "en"):
        real = backend.classifiers[lang].classify_batch

        def spy(texts, languages, real=real):  # type: ignore[no-untyped-def]
            calls.append(list(languages))
            return real(texts, languages)

        monkeypatch.setattr(backend.classifiers[lang], "classify_batch", spy)

    readings = backend.classify_batch(TEXTS, LANGUAGES)

    assert sorted(calls) == [["en", "en"], ["zh"]]  # one batch per classifier
    assert [r.label for r in readings[:2]] == ["positive", "negative"]
    assert [r.model for r in readings] == [
        str(classifiers["zh"]), str(classifiers["en"]), LexiconTextEmotion().info.model,
        str(classifiers["en"])]
    assert readings[3].label == "neutral"  # blank text: neutral, without the model
    assert backend.info.model == f"zh={classifiers['zh']},en={classifiers['en']}"
    assert backend.info.detail == "per language; words model for any other language"


def test_labels_per_language(classifiers: dict[str, Path], tmp_path: Path) -> None:
    value = f"zh={classifiers['zh']},en={classifiers['en']}"
    # The en model's first column (forced) read as positive instead of negative.
    labels = "zh=negative,neutral,positive,excited;en=positive,neutral,negative"
    backend = load_text(_config(tmp_path, value, text_emotion_labels=labels), DEVICE)
    assert [r.label for r in backend.classify_batch(TEXTS[:2], LANGUAGES[:2])] == [
        "positive", "positive"]


def test_a_missing_classifier_leaves_its_language_to_the_words_model(
    classifiers: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://nohub.invalid")  # no hub, however the net is
    value = f"zh={classifiers['zh']},en=nobody/not-downloaded"
    config = _config(tmp_path, value)
    backend = load_text(config, DEVICE)
    assert isinstance(backend, ByLanguageText) and set(backend.classifiers) == {"zh"}
    words = LexiconTextEmotion().info.model
    readings = backend.classify_batch(["我今天很开心", "i am so happy today"], ["zh", "en"])
    assert [r.model for r in readings] == [str(classifiers["zh"]), words]
    assert readings[1].label == "positive"  # the English words model hears "happy"
    (info,) = [i for i in plan(config) if i.component == "text_emotion"]
    assert (info.tier, info.model) == ("full", f"zh={classifiers['zh']}")
    assert info.detail == ("per language; words model for en (nobody/not-downloaded not found "
                           "locally), any other language")
    # Forced transformers: a classifier that cannot load is an error, not a fallback.
    with pytest.raises(ModelUnavailable, match="nobody/not-downloaded"):
        load_text(_config(tmp_path, value, text_emotion_backend="transformers",
                          model_hub="hf"), DEVICE)


def test_nothing_local_is_the_offline_tier(tmp_path: Path) -> None:
    config = _config(tmp_path, "zh=nobody/a,en=nobody/b")
    assert isinstance(load_text(config, DEVICE), LexiconTextEmotion)
    (info,) = [i for i in plan(config) if i.component == "text_emotion"]
    assert info.tier == "offline"
