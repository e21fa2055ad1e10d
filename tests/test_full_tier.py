"""The full tier (funasr Paraformer + VAD + punctuation, emotion2vec, a transformers text
classifier) run for real on tiny, randomly initialised models whose output layers are
forced, so every assertion is on what the real loading and inference code produced.

The models load on the device VOICEMOOD_DEVICE names (default cpu), so on a GPU machine
``VOICEMOOD_DEVICE=cuda .venv/bin/pytest tests/test_full_tier.py`` proves the CUDA paths;
weights and results are compared on the CPU. Also: model folder lookup, and the no-network
failures (fast, with a useful message).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.ops.settings import Settings
from inference.asr_funasr import (
    FunasrAsr,
    build_automodel,
    clean_transcript,
    language_of,
    load_funasr_asr,
)
from inference.backends import load_text
from inference.config import InferenceConfig
from inference.device import resolve_device
from inference.errors import ModelUnavailable
from inference.model_download import download_models, plan_downloads
from inference.model_paths import FUNASR_SHORT_NAMES_MS, local_model_dir
from inference.text_emotion_transformers import load_transformers_text, map_label
from inference.types import TAGS, Transcript
from inference.voice_emotion2vec import (
    AROUSAL_VALENCE,
    english_label,
    load_emotion2vec,
    reading_from_scores,
)
from tests.tiny_models import builder, one_torch_thread, spoken_clip

SR = 16_000
#: Where the models under test run: VOICEMOOD_DEVICE (auto, cpu, cuda, cuda:N), default cpu.
DEVICE = resolve_device(os.environ.get("VOICEMOOD_DEVICE", "cpu"))


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():  # see tests/tiny_models.py: funasr keeps the count it loads with
        yield


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """VOICEMOOD_* settings pointing at freshly built tiny models (text: positive,
    voice: angry, ASR: always "好", punctuation: "，" after every token)."""
    out = tmp_path_factory.mktemp("tiny-models")
    return builder().build_tiny_models(out, text_label="positive", voice_label="angry")


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About two seconds of English speech at 16 kHz."""
    clip = spoken_clip("hello there, how are you today", tmp_path_factory.mktemp("speech"))
    assert 1.0 < len(clip) / SR < 5.0
    return clip


@pytest.fixture(scope="session")
def empty_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models-empty")


def _settings(tiny: dict[str, str], models_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "asr_backend": "funasr",
        "asr_model": tiny["VOICEMOOD_ASR_MODEL"],
        "vad_model": tiny["VOICEMOOD_VAD_MODEL"],
        "punc_model": tiny["VOICEMOOD_PUNC_MODEL"],
        "text_emotion_backend": "transformers",
        "text_emotion_model": tiny["VOICEMOOD_TEXT_EMOTION_MODEL"],
        "voice_emotion_backend": "emotion2vec",
        "voice_emotion_model": tiny["VOICEMOOD_VOICE_EMOTION_MODEL"],
        "models_dir": str(models_dir),
    }
    values.update(overrides)
    return _plain_settings(**values)


def _plain_settings(**values: object) -> Settings:
    """Settings from these values and defaults only (no .env file of the developer's)."""
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def asr_full(tiny: dict[str, str], empty_models_dir: Path) -> FunasrAsr:
    backend = load_funasr_asr(_settings(tiny, empty_models_dir), DEVICE)
    assert isinstance(backend, FunasrAsr)
    return backend


@pytest.fixture(scope="module", params=["seaco", "plain"])
def asr_bare(
    request: pytest.FixtureRequest,
    tiny: dict[str, str],
    empty_models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> FunasrAsr:
    """ASR alone (no VAD, no punctuation): SeACo-Paraformer, then plain Paraformer."""
    if request.param == "seaco":
        model = tiny["VOICEMOOD_ASR_MODEL"]
    else:
        out = tmp_path_factory.mktemp("plain-paraformer")
        model = str(builder().build_paraformer(out / "paraformer-plain", kind="plain"))
    settings = _settings(tiny, empty_models_dir, asr_model=model, vad_model="", punc_model="")
    backend = load_funasr_asr(settings, DEVICE)
    assert isinstance(backend, FunasrAsr)
    return backend


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point both hubs at a host that cannot resolve (RFC 2606 ``.invalid``)."""
    monkeypatch.setenv("MODELSCOPE_DOMAIN", "nohub.invalid")
    monkeypatch.setenv("HF_ENDPOINT", "https://nohub.invalid")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def isolated_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Empty ModelScope and Hugging Face caches, so the developer's own do not leak in."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path


def _count_generate_calls(backend: FunasrAsr, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = backend.automodel.generate

    def counting(input, **cfg):  # "input": funasr's keyword
        calls.append(len(input) if isinstance(input, list) else 1)
        return real(input=input, **cfg)

    monkeypatch.setattr(backend.automodel, "generate", counting)
    return calls


# --- ASR -----------------------------------------------------------------------------------

FULL_PIPELINE = re.compile(r"^好(，好)*。$")  # forced token, forced comma, final "。"
ASR_ONLY = re.compile(r"^好+$")


def test_asr_batch_of_three_matches_single_calls(asr_full: FunasrAsr, speech: np.ndarray):
    clips = [speech, speech[: len(speech) // 2], np.concatenate([speech, speech])]
    batch = asr_full.transcribe_batch(clips)

    assert len(batch) == 3 and all(isinstance(t, Transcript) for t in batch)
    assert [t.language for t in batch] == ["zh"] * 3
    for t in batch:
        assert FULL_PIPELINE.match(t.text), t.text
    # The CIF predictor fires at a fixed rate, so more audio gives more tokens.
    counts = [t.text.count("好") for t in batch]
    assert counts[1] < counts[0] < counts[2]
    assert batch == [asr_full.transcribe_batch([c])[0] for c in clips]
    assert asr_full.info.tier == "full" and asr_full.info.component == "asr"
    assert asr_full.info.detail == "paraformer+vad+punc"


def test_asr_without_vad_decodes_the_batch_in_one_call(
    asr_bare: FunasrAsr, speech: np.ndarray, monkeypatch: pytest.MonkeyPatch
):
    clips = [speech, speech[: len(speech) // 2], speech[: len(speech) // 3]]
    singles = [asr_bare.transcribe_batch([c])[0] for c in clips]
    calls = _count_generate_calls(asr_bare, monkeypatch)

    batch = asr_bare.transcribe_batch(clips)

    assert calls == [3]
    assert batch == singles
    # SeACo-Paraformer says "好 好 好": the spaces between CJK characters are removed.
    assert all(ASR_ONLY.match(t.text) for t in batch), batch
    assert asr_bare.info.detail == "paraformer"


def test_asr_short_and_tokenless_clips_give_empty_text(asr_bare: FunasrAsr, speech: np.ndarray):
    # 0.1 s fires no CIF token: a batch of only such clips comes back from funasr as one
    # result (Paraformer) or none (SeACo), which must still become one "" per clip.
    short, tiny_clip = speech[: SR // 10], speech[:100]
    out = asr_bare.transcribe_batch([speech, short])
    assert [bool(t.text) for t in out] == [True, False]
    assert asr_bare.transcribe_batch([short, short, tiny_clip]) == [Transcript("", "")] * 3
    assert asr_bare.transcribe_batch([]) == []


def test_asr_retries_clip_by_clip_when_funasr_batch_crashes(
    asr_bare: FunasrAsr, speech: np.ndarray, monkeypatch: pytest.MonkeyPatch
):
    # funasr 1.4.16's cif_v1 raises this IndexError when the last clip of a padded batch
    # fires no token (e.g. generate(input=[speech, speech[:1600]], batch_size=2)).
    clips = [speech, speech[: SR // 10]]
    expected = [asr_bare.transcribe_batch([c])[0] for c in clips]
    real = asr_bare.automodel.generate

    def crash_on_lists(input, **cfg):  # "input": funasr's keyword
        if isinstance(input, list):
            raise IndexError("index 10 is out of bounds for dimension 0 with size 10")
        return real(input=input, **cfg)

    monkeypatch.setattr(asr_bare.automodel, "generate", crash_on_lists)
    assert asr_bare.transcribe_batch(clips) == expected


def test_asr_vad_path_calls_funasr_once_per_clip(
    asr_full: FunasrAsr, speech: np.ndarray, monkeypatch: pytest.MonkeyPatch
):
    calls = _count_generate_calls(asr_full, monkeypatch)
    out = asr_full.transcribe_batch([speech, speech[:50], speech[: SR // 2]])
    # With VAD, funasr drops clips that decode to nothing from a list result, so each clip
    # is sent alone; the 50-sample clip never reaches funasr.
    assert calls == [1, 1]
    assert out[1] == Transcript("", "") and out[0].text and out[2].text


def test_language_comes_from_the_transcript_not_the_model_name(
    tmp_path: Path, empty_models_dir: Path, speech: np.ndarray, asr_bare: FunasrAsr
):
    # A model folder named like the Chinese default, whose decoder says an English word:
    # the note must be tagged "en" (and so scored with the English lexicon).
    folder = builder().build_paraformer(tmp_path / "paraformer-zh", token="hello", kind="plain")
    settings = _plain_settings(asr_backend="funasr", asr_model=str(folder), vad_model="",
                               punc_model="", models_dir=str(empty_models_dir))
    english = load_funasr_asr(settings, DEVICE).transcribe_batch([speech])[0]
    assert re.fullmatch(r"hello( hello)+", english.text), english.text
    assert english.language == "en"
    chinese = asr_bare.transcribe_batch([speech])[0]
    assert ASR_ONLY.match(chinese.text) and chinese.language == "zh"


@pytest.mark.parametrize(
    ("raw", "language"),
    [
        ("你 好 ， 世 界 。", "zh"),
        ("hello world", "en"),
        ("我 用 iPhone 打 电 话", "zh"),  # four Han characters outweigh one Latin word
        ("I love you, 北京", "en"),
        ("OK 好", "zh"),  # a tie goes to Chinese
        ("<|en|><|NEUTRAL|>你 好", "en"),  # the model's own tag wins
        ("こんにちは", "ja"),
        ("。，", ""),
        ("", ""),
    ],
)
def test_language_of_a_transcript(raw: str, language: str):
    assert language_of(raw) == language


def test_tiny_funasr_folders_load_every_weight(asr_full: FunasrAsr, tiny: dict[str, str]):
    auto = asr_full.automodel
    for module, key in (
        (auto.model, "VOICEMOOD_ASR_MODEL"),
        (auto.vad_model, "VOICEMOOD_VAD_MODEL"),
        (auto.punc_model, "VOICEMOOD_PUNC_MODEL"),
    ):
        saved = torch.load(Path(tiny[key]) / "model.pt", map_location="cpu")
        loaded = module.state_dict()
        assert set(loaded) == set(saved), key
        assert all(torch.equal(loaded[k].cpu(), saved[k]) for k in loaded), key
        assert {str(t.device) for t in loaded.values()} == {DEVICE}, key
    assert asr_full.info.device == DEVICE

def test_loading_leaves_root_logger_and_torch_threads_alone(tiny: dict[str, str]):
    root = logging.getLogger()
    before = (root.level, list(root.handlers), torch.get_num_threads())
    build_automodel("VAD", model=tiny["VOICEMOOD_VAD_MODEL"], device=DEVICE, hub="ms")
    assert (root.level, list(root.handlers), torch.get_num_threads()) == before


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("你 好 ， 世 界 。", "你好，世界。"),
        ("我 用 GPU 训 练", "我用 GPU 训练"),
        ("hello  world", "hello world"),
        ("<|zh|><|NEUTRAL|>你 好", "你好"),
        ("  ", ""),
    ],
)
def test_clean_transcript(raw: str, clean: str):
    assert clean_transcript(raw) == clean


# --- text emotion --------------------------------------------------------------------------

def test_text_classifier_returns_forced_tag_with_all_scores(
    tiny: dict[str, str], empty_models_dir: Path
):
    backend = load_transformers_text(_settings(tiny, empty_models_dir), DEVICE)
    texts = ["我今天很开心", "i am so happy today", "   "]
    readings = backend.classify_batch(texts, ["zh", "en", "zh"])

    assert [r.label for r in readings] == ["positive", "positive", "neutral"]
    for r in readings:
        assert set(r.scores) == set(TAGS)
        assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert readings[0].scores["positive"] > 0.99
    assert backend.info.tier == "full" and backend.info.component == "text_emotion"
    # A long text is truncated, not an error.
    assert backend.classify_batch(["好" * 2000], ["zh"])[0].label == "positive"


def test_text_classifier_maps_model_labels_to_tags(tmp_path: Path, empty_models_dir: Path):
    folder = builder().build_text_classifier(tmp_path / "angry-text", label="angry")
    settings = _plain_settings(text_emotion_model=str(folder), models_dir=str(empty_models_dir))
    reading = load_transformers_text(settings, DEVICE).classify_batch(["我很生气"], ["zh"])[0]
    assert reading.label == "excited"  # the model's "angry" class
    assert reading.scores["excited"] > 0.99


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("Positive", "positive"),
        ("POS", "positive"),
        ("joy", "positive"),
        ("love", "positive"),
        ("正面", "positive"),
        ("Negative", "negative"),
        ("sadness", "negative"),
        ("fear", "negative"),
        ("disgust", "negative"),
        ("unhappy", "negative"),
        ("负面", "negative"),
        ("悲伤", "negative"),
        ("neutral", "neutral"),
        ("中性", "neutral"),
        ("anger", "excited"),
        ("angry", "excited"),
        ("surprise", "excited"),
        ("excited", "excited"),
        ("激动", "excited"),
        ("LABEL_0", "negative"),
        ("LABEL_1", "positive"),
        ("something-else", "neutral"),
    ],
)
def test_map_label(name: str, tag: str):
    assert map_label(name) == tag


def test_map_label_generic_names_of_bigger_models_are_neutral():
    assert map_label("LABEL_1", num_labels=3) == "neutral"
    assert map_label("LABEL_5", num_labels=2) == "neutral"


# --- voice emotion -------------------------------------------------------------------------

def test_emotion2vec_returns_forced_label_and_table_arousal(
    tiny: dict[str, str], empty_models_dir: Path, speech: np.ndarray
):
    backend = load_emotion2vec(_settings(tiny, empty_models_dir), DEVICE)
    readings = backend.analyze_batch([speech, speech[: SR // 2], speech[:100]])

    assert len(readings) == 3
    for r in readings:
        assert r.label == "angry"
        assert set(r.scores) == set(AROUSAL_VALENCE)  # English halves of the 9 labels
        assert r.scores["angry"] > 0.99
        expect_a = sum(p * AROUSAL_VALENCE[k][0] for k, p in r.scores.items())
        expect_v = sum(p * AROUSAL_VALENCE[k][1] for k, p in r.scores.items())
        assert r.arousal == pytest.approx(expect_a, abs=1e-6)
        assert r.valence == pytest.approx(expect_v, abs=1e-6)
        assert 0.85 < r.arousal <= 1.0 and r.valence < -0.75
    assert backend.info.tier == "full" and backend.info.component == "voice_emotion"


def test_emotion2vec_other_forced_label(tmp_path: Path, empty_models_dir: Path,
                                        speech: np.ndarray):
    folder = builder().build_emotion2vec(tmp_path / "sad-e2v", label="sad")
    settings = _plain_settings(voice_emotion_model=str(folder), models_dir=str(empty_models_dir))
    reading = load_emotion2vec(settings, DEVICE).analyze_batch([speech])[0]
    assert reading.label == "sad"
    assert reading.arousal == pytest.approx(0.25, abs=0.01)
    assert reading.valence == pytest.approx(-0.8, abs=0.01)


@pytest.mark.skipif(DEVICE == "cpu", reason="compares a GPU run with the CPU: "
                    "set VOICEMOOD_DEVICE=cuda on a machine with CUDA")
def test_gpu_results_match_the_cpu(tiny: dict[str, str], empty_models_dir: Path,
                                   speech: np.ndarray):
    settings = _settings(tiny, empty_models_dir)
    clips = [speech, speech[: SR // 2]]
    gpu_asr, cpu_asr = (load_funasr_asr(settings, d) for d in (DEVICE, "cpu"))
    assert gpu_asr.info.device == DEVICE
    assert gpu_asr.transcribe_batch(clips) == cpu_asr.transcribe_batch(clips)
    gpu_voice, cpu_voice = (load_emotion2vec(settings, d).analyze_batch(clips)
                            for d in (DEVICE, "cpu"))
    for g, c in zip(gpu_voice, cpu_voice, strict=True):
        assert g.label == c.label
        assert g.scores == pytest.approx(c.scores, abs=1e-3)
    texts = ["我今天很开心", "i am so happy today"]
    gpu_text, cpu_text = (load_transformers_text(settings, d).classify_batch(texts, ["zh", "en"])
                          for d in (DEVICE, "cpu"))
    for g, c in zip(gpu_text, cpu_text, strict=True):
        assert g.label == c.label
        assert g.scores == pytest.approx(c.scores, abs=1e-2)  # fp16 on the GPU


def test_reading_from_scores_uses_the_table():
    r = reading_from_scores({"happy": 0.5, "neutral": 0.5}, "m")
    assert r.label in ("happy", "neutral")
    assert r.arousal == pytest.approx(0.5) and r.valence == pytest.approx(0.45)
    assert reading_from_scores({"brand-new": 1.0}, "m").arousal == pytest.approx(0.4)
    assert [english_label(x) for x in ("生气/angry", "<unk>", "Happy")] == [
        "angry", "unk", "happy"]


# --- model folders -------------------------------------------------------------------------

def test_local_model_dir_finds_folders(tmp_path: Path, isolated_caches: Path,
                                       tiny: dict[str, str]):
    models = tmp_path / "models"
    by_path = Path(tiny["VOICEMOOD_TEXT_EMOTION_MODEL"])
    assert local_model_dir(str(by_path), models) == by_path

    erlangshen = models / "IDEA-CCNL--Erlangshen-Roberta-110M-Sentiment"
    erlangshen.mkdir(parents=True)
    (erlangshen / "config.json").write_text("{}")
    assert local_model_dir("IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment", models) == erlangshen

    # A funasr short name is found under its full ModelScope id.
    vad = models / FUNASR_SHORT_NAMES_MS["fsmn-vad"].replace("/", "--")
    vad.mkdir()
    (vad / "config.yaml").write_text("model: FsmnVADStreaming\n")
    assert local_model_dir("fsmn-vad", models) == vad

    assert local_model_dir("", models) is None
    assert local_model_dir("nobody/no-such-model", models) is None
    assert local_model_dir("paraformer-zh", models) is None
    (models / "no-config").mkdir()
    assert local_model_dir(str(models / "no-config"), models) is None


def test_local_model_dir_reads_hub_caches(tmp_path: Path, isolated_caches: Path):
    ms = isolated_caches / "ms-cache" / "models" / "iic" / "emotion2vec_plus_base"
    ms.mkdir(parents=True)
    (ms / "config.yaml").write_text("model: Emotion2vec\n")
    assert local_model_dir("emotion2vec_plus_base", tmp_path / "models") == ms

    repo = isolated_caches / "hf-cache" / "models--someone--tiny-bert"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert local_model_dir("someone/tiny-bert", tmp_path / "models") == snapshot


# --- no network ----------------------------------------------------------------------------

@pytest.mark.usefixtures("no_network", "isolated_caches")
def test_hub_ids_not_local_fail_fast_with_a_helpful_message(empty_models_dir: Path):
    settings = _plain_settings(models_dir=str(empty_models_dir))  # defaults: hub ids, nothing local
    def forced_text(settings: Settings, device: str) -> object:
        # The default is one classifier per language: each must fail the same way.
        config = replace(InferenceConfig.from_settings(settings),
                         text_emotion_backend="transformers")
        return load_text(config, device)

    for load, env_var in (
        (load_funasr_asr, "VOICEMOOD_ASR_MODEL"),
        (load_emotion2vec, "VOICEMOOD_VOICE_EMOTION_MODEL"),
        (forced_text, "VOICEMOOD_TEXT_EMOTION_MODEL"),
    ):
        start = time.monotonic()
        with pytest.raises(ModelUnavailable) as caught:
            load(settings, "cpu")
        assert time.monotonic() - start < 10
        message = str(caught.value)
        assert "cannot be reached" in message
        assert "voicemood models download" in message and env_var in message
        assert caught.value.code == "model_unavailable"


def test_missing_local_folder_names_the_setting(tmp_path: Path, empty_models_dir: Path):
    settings = _plain_settings(asr_model=str(tmp_path / "nope"), models_dir=str(empty_models_dir))
    with pytest.raises(ModelUnavailable, match="VOICEMOOD_ASR_MODEL"):
        load_funasr_asr(settings, "cpu")


@pytest.mark.usefixtures("no_network", "isolated_caches")
def test_download_models_without_network(empty_models_dir: Path):
    settings = _plain_settings(models_dir=str(empty_models_dir))
    start = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        download_models(settings, None)
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert message.startswith("no network access to nohub.invalid")
    assert "copy the model folders into" in message
    assert "iic--SenseVoiceSmall" in message  # the default recogniser
    # SenseVoice punctuates itself: no punctuation model is fetched for it.
    assert "punc_ct-transformer" not in message
    # One folder per language of the default text models.
    assert "IDEA-CCNL--Erlangshen-Roberta-110M-Sentiment" in message
    assert "cardiffnlp--twitter-roberta-base-sentiment-latest" in message


@pytest.mark.usefixtures("no_network")
def test_download_models_skips_what_is_local(tiny: dict[str, str], empty_models_dir: Path):
    settings = _settings(tiny, empty_models_dir)
    done = download_models(settings, None)
    assert [c for c, _ in done] == ["asr", "vad", "punc", "voice_emotion", "text_emotion"]
    assert dict(done)["asr"] == Path(tiny["VOICEMOOD_ASR_MODEL"])
    _, missing = plan_downloads(_settings(tiny, empty_models_dir, vad_model="fsmn-vad"), ["vad"])
    assert [(m.component, m.repo_id) for m in missing] == [
        ("vad", FUNASR_SHORT_NAMES_MS["fsmn-vad"])]
