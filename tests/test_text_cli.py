"""``voicemood text``: the words branch alone, from arguments or stdin, plain or JSON."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from tests.conftest import REPO
from tests.tiny_models import builder

KEYS = {"text", "language", "label", "valence", "scores", "model"}


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Offline words branch; an ASR that could not load, to prove it is never loaded."""
    for name in ("VOICEMOOD_TEXT_EMOTION_MODEL", "VOICEMOOD_TEXT_EMOTION_LABELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("VOICEMOOD_TEXT_EMOTION_BACKEND", "lexicon")
    monkeypatch.setenv("VOICEMOOD_ASR_BACKEND", "whisper")
    monkeypatch.setenv("VOICEMOOD_WHISPER_MODEL", str(tmp_path / "no-such-whisper"))
    monkeypatch.setenv("VOICEMOOD_DEVICE", "cpu")
    return tmp_path


def _json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_json_per_text_argument(offline_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["text", "--json", "我今天非常开心，太好了", "I feel sad and lonely.",
                 "The meeting is at three in room four."])
    assert code == 0
    results = _json_lines(capsys.readouterr().out)
    assert [set(r) for r in results] == [KEYS] * 3
    assert [(r["language"], r["label"]) for r in results] == [
        ("zh", "positive"), ("en", "negative"), ("en", "neutral")]
    assert results[0]["text"] == "我今天非常开心，太好了"
    sad = results[1]
    # The English n-gram model's P(positive) - P(negative) (inference/en_sentiment_ngram.npz).
    assert sad["valence"] == pytest.approx(-0.9052, abs=1e-4)
    assert sad["scores"]["excited"] == 0.0
    assert set(sad["scores"]) == {"positive", "negative", "neutral", "excited"}
    assert "vaderSentiment" in str(sad["model"])


def test_stdin_lines_in_order_with_blank_lines_kept(
    offline_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("I love this, it is wonderful!\n\n我很难过\n"))
    assert main(["text", "--json"]) == 0
    results = _json_lines(capsys.readouterr().out)
    assert [(r["text"], r["label"]) for r in results] == [
        ("I love this, it is wonderful!", "positive"), ("", "neutral"), ("我很难过", "negative")]
    assert results[1]["valence"] == 0.0


def test_plain_output_and_forced_language(
    offline_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["text", "--lang", "en", "I feel sad and lonely."]) == 0
    assert capsys.readouterr().out == "negative -0.91  I feel sad and lonely.\n"
    assert main(["text", "--json", "--lang", "en", "我很开心"]) == 0
    forced = _json_lines(capsys.readouterr().out)[0]
    # Read as English, the Chinese words mean nothing to VADER.
    assert (forced["language"], forced["label"], forced["valence"]) == ("en", "neutral", 0.0)


def test_bad_language_is_refused(offline_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["text", "--lang", "fr", "bonjour"])
    assert stop.value.code == 2
    assert "invalid choice: 'fr'" in capsys.readouterr().err


def test_text_branch_off_says_so(
    offline_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEMOOD_TEXT_EMOTION_BACKEND", "off")
    assert main(["text", "hello"]) == 2
    assert "text emotion is off (VOICEMOOD_TEXT_EMOTION_BACKEND=off)" in capsys.readouterr().err


def test_only_the_text_backend_is_loaded(tmp_path: Path) -> None:
    # A fresh interpreter: nothing else in the test session has imported the audio models.
    script = (
        "import sys\n"
        "from app.cli import main\n"
        "code = main(['text', '--json', 'hello there'])\n"
        "heavy = sorted(m for m in ('faster_whisper', 'ctranslate2', 'funasr', 'torch')"
        " if m in sys.modules)\n"
        "print('LOADED', heavy, code)\n"
    )
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
           "VOICEMOOD_TEXT_EMOTION_BACKEND": "lexicon", "VOICEMOOD_DEVICE": "cpu"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "LOADED [] 0" in proc.stdout


# --- the full tier's classifier and VOICEMOOD_TEXT_EMOTION_LABELS --------------------------

@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny 4-class classifier (negative, neutral, positive, angry); column 1 always wins."""
    folder = tmp_path_factory.mktemp("tiny-text") / "text-emotion"
    return builder().build_text_classifier(folder, label="neutral")


@pytest.fixture
def full_env(offline_env: Path, monkeypatch: pytest.MonkeyPatch, tiny_text_model: Path) -> Path:
    monkeypatch.setenv("VOICEMOOD_TEXT_EMOTION_BACKEND", "transformers")
    monkeypatch.setenv("VOICEMOOD_TEXT_EMOTION_MODEL", str(tiny_text_model))
    return tiny_text_model


def test_classifier_tags_come_from_class_names_by_default(
    full_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["text", "--json", "好"]) == 0
    result = _json_lines(capsys.readouterr().out)[0]
    assert result["label"] == "neutral"  # column 1 is named "neutral"
    assert result["scores"]["neutral"] > 0.99
    assert result["model"] == str(full_env)


def test_labels_setting_renames_the_columns(
    full_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEMOOD_TEXT_EMOTION_LABELS", "negative, positive,neutral,excited")
    assert main(["text", "--json", "好"]) == 0
    result = _json_lines(capsys.readouterr().out)[0]
    assert result["label"] == "positive"  # column 1 is now "positive"
    assert result["scores"]["positive"] > 0.99
    assert result["valence"] > 0.99


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("negative,neutral,positive",
         "VOICEMOOD_TEXT_EMOTION_LABELS names 3 classes, but the text emotion model has 4"),
        ("negative,neutral,happy,excited",
         "VOICEMOOD_TEXT_EMOTION_LABELS: happy is not one of positive, negative, neutral, "
         "excited"),
    ],
)
def test_labels_setting_that_does_not_fit_the_model_is_refused(
    full_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    labels: str, message: str,
) -> None:
    monkeypatch.setenv("VOICEMOOD_TEXT_EMOTION_LABELS", labels)
    assert main(["text", "好"]) == 1
    assert message in capsys.readouterr().err
