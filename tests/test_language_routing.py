"""Language routing of the full tier: each note goes to a recogniser that speaks it.

The Mandarin recogniser is the tiny Paraformer (scripts/make_tiny_models.py: it always says
"好"), so a transcript made of 好 proves the Paraformer route and a real English sentence
proves the Whisper route; the offline Whisper and the recordings are real.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inference.asr_routing import RoutedAsr, Speaks, choose_route, describe_routes, speaks_of
from inference.backends import load_asr, plan
from inference.config import InferenceConfig
from inference.device import resolve_device
from tests.conftest import MODELS_DIR
from tests.tiny_models import builder, one_torch_thread

#: Where the models under test run: VOICEMOOD_DEVICE (auto, cpu, cuda, cuda:N), default cpu.
DEVICE = resolve_device(os.environ.get("VOICEMOOD_DEVICE", "cpu"))

ZH = Speaks(frozenset({"zh"}), identifies=False)
SENSEVOICE = Speaks(frozenset({"zh", "en", "yue", "ja", "ko"}), identifies=True)
#: The tiny Paraformer behind VAD and punctuation: "好，好，…。"
PARAFORMER_TEXT = re.compile(r"^好(，好)*。$")
#: "should be a part of the whole scheme of the book."
EN_CLIP = "en_asr/audio/dctts_LJ001-0174.flac"
ZH_CLIPS = ("zh_asr_aishell/audio/BAC009S0150W0015.flac",  # 上海市第一食品商店
            "zh_asr_aishell/audio/BAC009S0150W0005.flac")  # 调高温度


@pytest.mark.parametrize(
    ("speaks", "languages", "route"),
    [
        (ZH, ["zh", "en"], "whisper"),  # Paraformer-zh cannot write English
        (ZH, ["zh"], "fixed"),  # the only language is the model's: no language ID needed
        (ZH, [], "whisper"),  # any language: Whisper tells which
        (ZH, ["en"], "whisper"),
        (SENSEVOICE, ["zh", "en"], "own"),
        (SENSEVOICE, ["zh", "en", "fr"], "whisper"),  # French is Whisper's alone
        (SENSEVOICE, [], "whisper"),
    ],
)
def test_choose_route(speaks: Speaks, languages: list[str], route: str) -> None:
    assert choose_route(speaks, languages) == route


@pytest.mark.parametrize(
    ("model_class", "model_id", "languages", "identifies"),
    [
        ("SeacoParaformer", "paraformer-zh", {"zh"}, False),
        ("", "funasr/paraformer-en", {"en"}, False),
        ("", "iic/speech_paraformer-large-vad-punc_asr_nat-en-16k-common-vocab10020", {"en"},
         False),
        ("Paraformer", "/models/my-folder", {"zh"}, False),
        ("SenseVoiceSmall", "/models/anything", {"zh", "en", "yue", "ja", "ko"}, True),
        ("", "iic/SenseVoiceSmall", {"zh", "en", "yue", "ja", "ko"}, True),
        # The folder's class wins over its name.
        ("Paraformer", "/models/sensevoice-like-name", {"zh"}, False),
    ],
)
def test_speaks_of(model_class: str, model_id: str, languages: set[str],
                   identifies: bool) -> None:
    assert speaks_of(model_class, model_id) == Speaks(frozenset(languages), identifies)


def test_describe_routes() -> None:
    assert describe_routes(ZH, ["zh", "en"], "P", "W") == (
        "routes: zh -> P; en -> W; language ID: W")
    assert describe_routes(ZH, ["zh"], "P", "W") == (
        "routes: zh -> P; language fixed by VOICEMOOD_LANGUAGES")
    assert describe_routes(SENSEVOICE, ["zh", "en"], "S", "W") == (
        "routes: zh/en -> S; language ID: the recogniser's own tag, and a tag outside "
        "VOICEMOOD_LANGUAGES -> W")
    assert describe_routes(ZH, [], "P", "W") == (
        "routes: zh -> P; any other language -> W; language ID: W")


# --- real recordings -----------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():  # see tests/tiny_models.py: funasr keeps the count it loads with
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return builder().build_tiny_models(tmp_path_factory.mktemp("tiny-routing"))


def _config(tiny: dict[str, str], **overrides: object) -> InferenceConfig:
    values: dict[str, object] = {
        "models_dir": MODELS_DIR, "asr_backend": "funasr",
        "asr_model": tiny["VOICEMOOD_ASR_MODEL"], "vad_model": tiny["VOICEMOOD_VAD_MODEL"],
        "punc_model": tiny["VOICEMOOD_PUNC_MODEL"], "languages": ("zh", "en"),
    }
    values.update(overrides)
    return InferenceConfig(**values)  # type: ignore[arg-type]


def _clip(path: Path) -> np.ndarray:
    pcm = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-ar", "16000",
                          "-ac", "1", "-f", "f32le", "-"], capture_output=True, check=True,
                         timeout=30).stdout
    return np.frombuffer(pcm, dtype=np.float32).copy()


@pytest.mark.shared_data
def test_english_goes_to_whisper_and_mandarin_to_paraformer(
    tiny: dict[str, str], shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asr = load_asr(_config(tiny), DEVICE)
    assert isinstance(asr, RoutedAsr) and asr.route == "whisper"
    assert asr.whisper is not None
    batches: list[int] = []
    real = asr.primary.transcribe_batch

    def counting(clips):  # type: ignore[no-untyped-def]
        batches.append(len(clips))
        return real(clips)

    monkeypatch.setattr(asr.primary, "transcribe_batch", counting)
    clips = [_clip(shared_data / ZH_CLIPS[0]), _clip(shared_data / EN_CLIP),
             _clip(shared_data / ZH_CLIPS[1])]

    zh1, en, zh2 = asr.transcribe_batch(clips)

    assert batches == [2]  # both Mandarin notes in one Paraformer batch
    assert en.language == "en" and en.model == "whisper-base (whisper-base)"
    words = re.sub(r"[^a-z ]", "", en.text.lower()).split()
    assert words == "should be a part of the whole scheme of the book".split(), en.text
    for zh in (zh1, zh2):
        assert zh.language == "zh" and zh.model == tiny["VOICEMOOD_ASR_MODEL"]
        assert PARAFORMER_TEXT.match(zh.text), zh.text
    assert "routes: zh -> " in asr.info.detail and "en -> whisper-base" in asr.info.detail


@pytest.mark.shared_data
def test_one_language_configured_needs_no_whisper(tiny: dict[str, str],
                                                   shared_data: Path) -> None:
    asr = load_asr(_config(tiny, languages=("zh",)), DEVICE)
    assert isinstance(asr, RoutedAsr) and asr.route == "fixed" and asr.whisper is None
    # Only Mandarin is expected, so even an English recording is read by Paraformer as zh.
    (out,) = asr.transcribe_batch([_clip(shared_data / EN_CLIP)])
    assert out.language == "zh" and PARAFORMER_TEXT.match(out.text), out
    assert out.model == tiny["VOICEMOOD_ASR_MODEL"]


def test_plan_shows_the_routes(tiny: dict[str, str]) -> None:
    (asr, *_rest) = plan(_config(tiny))
    assert asr.tier == "full" and asr.model == tiny["VOICEMOOD_ASR_MODEL"]
    whisper = "whisper-base (whisper-base)"
    assert asr.detail.endswith(f"routes: zh -> {tiny['VOICEMOOD_ASR_MODEL']}; en -> "
                               f"{whisper}; language ID: {whisper}")
