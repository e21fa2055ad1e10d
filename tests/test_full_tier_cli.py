"""The full tier through the whole product: `auto` finds local models, the CLI runs them.

The tiny models come from scripts/make_tiny_models.py (funasr's and transformers' own
classes, random weights with forced output biases), so the tags below are known in advance.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.audio_factory import speech_file
from tests.test_cli import run_cli
from tests.tiny_models import builder


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("tiny")
    # Text: zh= a classifier forced to neutral, en= a 3-class one forced to negative.
    env = builder().build_tiny_models(out, text_label="neutral", voice_label="angry",
                                      per_language_text=True)
    # `auto` everywhere: the product must find the local models on its own. The device is
    # VOICEMOOD_DEVICE's (default cpu), so a GPU run of the suite exercises CUDA here too.
    env = {k: ("auto" if k.endswith("_BACKEND") else v) for k, v in env.items()}
    return {**env, "VOICEMOOD_DEVICE": os.environ.get("VOICEMOOD_DEVICE", "cpu")}


def test_models_status_reports_full_tier(tiny_env: dict[str, str], tmp_path: Path) -> None:
    out = run_cli(["models", "status"], tmp_path, **tiny_env)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[2:]}
    assert rows["asr"].split()[1] == "full"
    assert tiny_env["VOICEMOOD_ASR_MODEL"] in rows["asr"]
    # The Mandarin model answers Mandarin only; English goes to the offline Whisper.
    assert rows["asr"].endswith(f"routes: zh -> {tiny_env['VOICEMOOD_ASR_MODEL']}; "
                                "en -> whisper-base (whisper-base); "
                                "language ID: whisper-base (whisper-base))")
    assert rows["text_emotion"].split()[1] == "full"
    assert rows["voice_emotion"].split()[1] == "full"


def test_analyze_runs_full_tier(tiny_env: dict[str, str], tmp_path: Path) -> None:
    note = speech_file(tmp_path, "An angry voice saying ordinary words.", "ogg")
    # Mandarin only: the note's language is known from the setting, so Paraformer takes it
    # (espeak's Mandarin is unintelligible, so the words do not matter here).
    out = run_cli(["analyze", "--json", str(note)], tmp_path, **tiny_env,
                  VOICEMOOD_LANGUAGES="zh")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    # The tiny Paraformer only knows "好"; VAD + punctuation wrap it in Chinese punctuation.
    assert result["transcript"] and set(result["transcript"]) <= set("好，。")
    assert result["language"] == "zh"
    assert result["models"]["asr"] == tiny_env["VOICEMOOD_ASR_MODEL"]
    assert result["models"]["voice_emotion"] == tiny_env["VOICEMOOD_VOICE_EMOTION_MODEL"]
    emotion = result["emotion"]
    assert emotion["text"]["label"] == "neutral"
    assert emotion["voice"]["label"] == "angry"
    assert emotion["voice"]["arousal"] > 0.85
    # Angry voice + neutral words: the fusion rule says excited.
    assert emotion["label"] == "excited"


@pytest.mark.shared_data
def test_analyze_routes_each_note_by_language(tiny_env: dict[str, str], tmp_path: Path,
                                              shared_data: Path) -> None:
    english = shared_data / "en_asr/audio/dctts_LJ001-0174.flac"
    mandarin = shared_data / "zh_asr_aishell/audio/BAC009S0150W0015.flac"
    out = run_cli(["analyze", "--json", str(english), str(mandarin)], tmp_path, **tiny_env)
    assert out.returncode == 0, out.stderr
    en, zh = (json.loads(line) for line in out.stdout.splitlines())
    assert en["language"] == "en"
    words = re.sub(r"[^a-z ]", "", en["transcript"].lower()).split()
    assert words == "should be a part of the whole scheme of the book".split()
    assert en["models"]["asr"] == "whisper-base (whisper-base)"
    assert zh["language"] == "zh" and set(zh["transcript"]) <= set("好，。")
    assert zh["models"]["asr"] == tiny_env["VOICEMOOD_ASR_MODEL"]
    # Each note's words were read by its language's classifier.
    assert en["emotion"]["text"]["label"] == "negative"
    assert zh["emotion"]["text"]["label"] == "neutral"
