"""SenseVoice-Small as the full-tier recogniser, on a tiny SenseVoice built with funasr's own
class (scripts/make_tiny_models.py): its output layer is forced, so every clip comes back as
``<|en|><|HAPPY|><|Speech|><|withitn|>Hello world.`` (or the language/emotion asked for),
read through the real ``funasr.AutoModel`` and the real post-processing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inference.asr_routing import RoutedAsr
from inference.asr_sensevoice import AsrEmotion, SenseVoiceAsr, parse_rich
from inference.backends import load_asr, load_voice, plan
from inference.config import InferenceConfig
from inference.device import resolve_device
from inference.types import Transcript
from tests.audio_factory import speech_file
from tests.conftest import MODELS_DIR
from tests.test_cli import run_cli
from tests.tiny_models import builder, one_torch_thread, spoken_clip

#: Where the models under test run: VOICEMOOD_DEVICE (auto, cpu, cuda, cuda:N), default cpu.
DEVICE = resolve_device(os.environ.get("VOICEMOOD_DEVICE", "cpu"))

SR = 16_000


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("<|en|><|HAPPY|><|Speech|><|withitn|>Hello world.", ("Hello world.", "en", "happy")),
        # VAD segments joined by funasr: the language and emotion heard most win; the
        # laughter event's emoji is dropped with the tags.
        ("<|zh|><|SAD|><|Speech|><|withitn|>你好。<|zh|><|ANGRY|><|Laughter|><|withitn|>再见。"
         "<|en|><|SAD|><|Speech|><|withitn|>OK.", ("你好。再见。 OK.", "zh", "sad")),
        ("<|ja|><|EMO_UNKNOWN|><|BGM|><|woitn|>こんにちは", ("こんにちは", "ja", "unk")),
        ("<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|><|woitn|>", ("", "", "unk")),
        ("", ("", "", "")),
    ],
)
def test_parse_rich(raw: str, parsed: tuple[str, str, str]) -> None:
    assert parse_rich(raw) == parsed


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():  # see tests/tiny_models.py: funasr keeps the count it loads with
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tiny-sensevoice")
    b = builder()
    return {
        "en": b.build_sensevoice(out / "sv-en", language="en", emotion="HAPPY",
                                 text="Hello world."),
        "ja": b.build_sensevoice(out / "sv-ja", language="ja", emotion="ANGRY",
                                 text="こんにちは"),
        "vad": b.build_vad(out / "fsmn-vad"),
    }


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About two seconds of English speech at 16 kHz."""
    return spoken_clip("hello there, how are you today", tmp_path_factory.mktemp("speech"))


def _config(model: Path, **overrides: object) -> InferenceConfig:
    values: dict[str, object] = {
        "models_dir": MODELS_DIR, "asr_backend": "auto", "asr_model": str(model),
        "vad_model": "", "punc_model": "ct-punc", "languages": ("zh", "en"),
        "voice_emotion_backend": "auto", "voice_emotion_model": "nobody/no-emotion2vec",
    }
    values.update(overrides)
    return InferenceConfig(**values)  # type: ignore[arg-type]


def test_language_and_emotion_come_from_the_tags(models: dict[str, Path],
                                                 speech: np.ndarray,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    asr = load_asr(_config(models["en"]), DEVICE)
    # SenseVoice speaks zh and en and tells them apart itself: no Whisper language ID.
    assert isinstance(asr, RoutedAsr) and asr.route == "own"
    assert isinstance(asr.primary, SenseVoiceAsr)
    assert asr.primary.info.detail == "sensevoice"  # ct-punc is not loaded for SenseVoice
    calls: list[int] = []
    real = asr.primary.automodel.generate

    def counting(input, **cfg):  # type: ignore[no-untyped-def]  # "input": funasr's keyword
        calls.append(len(input) if isinstance(input, list) else 1)
        return real(input=input, **cfg)

    monkeypatch.setattr(asr.primary.automodel, "generate", counting)

    out = asr.transcribe_batch([speech, speech[: SR // 2], speech])

    assert calls == [3]  # one batch
    assert out == [Transcript("Hello world.", "en")] * 3
    for t in out:
        assert t.model == str(models["en"])
        assert t.voice is not None and t.voice.label == "happy"
        assert t.voice.scores == {"happy": 1.0}
        # inference/voice_emotion2vec.py's table: happy = arousal 0.70, valence 0.90
        assert (t.voice.arousal, t.voice.valence) == (pytest.approx(0.7), pytest.approx(0.9))


def test_a_tag_outside_the_languages_goes_to_whisper(models: dict[str, Path],
                                                     speech: np.ndarray) -> None:
    asr = load_asr(_config(models["ja"]), DEVICE)
    assert isinstance(asr, RoutedAsr) and asr.route == "own"
    (out,) = asr.transcribe_batch([speech])
    # Japanese is not in VOICEMOOD_LANGUAGES=zh,en: Whisper writes the note instead.
    assert out.language == "en" and out.model == "whisper-base (whisper-base)"
    assert "how are you" in out.text.lower()
    assert out.voice is not None and out.voice.label == "angry"  # SenseVoice heard it


def test_with_vad_each_clip_is_one_call(models: dict[str, Path], speech: np.ndarray) -> None:
    asr = load_asr(_config(models["en"], vad_model=str(models["vad"])), DEVICE)
    assert isinstance(asr, RoutedAsr) and asr.primary.info.detail == "sensevoice+vad"
    assert asr.transcribe_batch([speech, speech[:50]]) == [
        Transcript("Hello world.", "en"), Transcript("", "")]


def test_voice_reading_is_sensevoices_unless_emotion2vec_is_there(
    models: dict[str, Path], tmp_path: Path
) -> None:
    config = _config(models["en"])
    asr = load_asr(config, DEVICE)
    voice = load_voice(config, DEVICE, asr=asr)
    assert isinstance(voice, AsrEmotion) and voice.info.model == str(models["en"])
    infos = {i.component: i for i in plan(config)}
    assert infos["voice_emotion"].tier == "full"
    assert infos["voice_emotion"].model == str(models["en"])
    assert infos["voice_emotion"].detail == (
        "SenseVoice's emotion tag (nobody/no-emotion2vec not found locally)")
    assert infos["asr"].detail.startswith("sensevoice + vad: off; routes: zh/en -> ")
    # Forced prosody stays prosody; a local emotion2vec stays emotion2vec.
    prosody = load_voice(_config(models["en"], voice_emotion_backend="prosody"), DEVICE, asr=asr)
    assert prosody is not None and prosody.info.model == "prosody-arousal (numpy)"
    e2v = builder().build_emotion2vec(tmp_path / "e2v", label="sad")
    real = load_voice(_config(models["en"], voice_emotion_model=str(e2v)), DEVICE, asr=asr)
    assert real is not None and real.info.model == str(e2v)


def test_analyze_reports_sensevoices_language_and_emotion(models: dict[str, Path],
                                                          tmp_path: Path) -> None:
    note = speech_file(tmp_path, "Any words at all.", "ogg")
    out = run_cli(["analyze", "--json", str(note)], tmp_path,
                  VOICEMOOD_ASR_MODEL=str(models["en"]), VOICEMOOD_VAD_MODEL="",
                  VOICEMOOD_VOICE_EMOTION_MODEL="nobody/no-emotion2vec",
                  VOICEMOOD_TEXT_EMOTION_BACKEND="lexicon",
                  VOICEMOOD_DEVICE=os.environ.get("VOICEMOOD_DEVICE", "cpu"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["transcript"], result["language"]) == ("Hello world.", "en")
    assert result["models"]["asr"] == str(models["en"])
    assert result["models"]["voice_emotion"] == str(models["en"])
    voice = result["emotion"]["voice"]
    assert (voice["label"], voice["arousal"]) == ("happy", pytest.approx(0.7))
