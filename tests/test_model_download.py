"""`voicemood models download` for real: the real command, huggingface_hub and funasr, against
a fake hub on 127.0.0.1 (tests/fake_hub.py) that serves the tiny models under the default
model ids. ModelScope's client builds https URLs from MODELSCOPE_DOMAIN, so it cannot be
pointed at a plain-HTTP loopback server; the test uses VOICEMOOD_MODEL_HUB=hf, which routes
the funasr models through the same Hugging Face code path.

After the download, `models status` must report the full tier and an analysis must use it;
a corrupt or cut-off download must leave nothing that `auto` would load.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.model_paths import FUNASR_SHORT_NAMES_HF, folder_name
from tests.audio_factory import speech_file
from tests.conftest import MODELS_DIR
from tests.fake_hub import FakeHub, serve
from tests.test_cli import run_cli
from tests.tiny_models import builder

#: The default model ids, as `models download` asks Hugging Face for them (hub "hf"). No
#: punctuation model: the default recogniser, SenseVoice-Small, punctuates itself.
ASR = FUNASR_SHORT_NAMES_HF["iic/SenseVoiceSmall"]
VAD = FUNASR_SHORT_NAMES_HF["fsmn-vad"]
VOICE = FUNASR_SHORT_NAMES_HF["iic/emotion2vec_plus_base"]
TEXT_ZH = "IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment"
TEXT_EN = "cardiffnlp/twitter-roberta-base-sentiment-latest"


@pytest.fixture(scope="module")
def tiny_repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny models, one folder per default repository id."""
    out = tmp_path_factory.mktemp("hub-repos")
    b = builder()
    return {
        ASR: b.build_sensevoice(out / "asr", language="en", emotion="HAPPY",
                                text="Hello world."),
        VAD: b.build_vad(out / "vad"),
        VOICE: b.build_emotion2vec(out / "voice", label="angry"),
        TEXT_ZH: b.build_text_classifier(out / "text-zh", label="positive"),
        TEXT_EN: b.build_text_classifier(out / "text-en", label="negative",
                                         labels=b.TEXT_LABELS_3),
    }


@pytest.fixture
def hub(tiny_repos: dict[str, Path]) -> Iterator[FakeHub]:
    with serve(FakeHub(repos=dict(tiny_repos))) as running:
        yield running


def _env(hub: FakeHub, models: Path, **extra: str) -> dict[str, str]:
    """Default model ids, the hf hub at the fake endpoint, downloads into ``models``."""
    return {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
            "NO_PROXY": "127.0.0.1,localhost", "VOICEMOOD_MODEL_HUB": "hf",
            "VOICEMOOD_MODELS_DIR": str(models), "HF_HOME": str(models.parent / "hf-home"),
            **extra}


def _status_rows(out: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    assert out.returncode == 0, out.stderr
    return {line.split()[0]: line.split() for line in out.stdout.splitlines()[2:]}


def test_download_then_status_and_analysis_use_the_full_tier(hub: FakeHub,
                                                             tmp_path: Path) -> None:
    models = tmp_path / "models"
    env = _env(hub, models)
    before = _status_rows(run_cli(["models", "status"], tmp_path, **env))
    assert [before[c][1] for c in ("asr", "text_emotion", "voice_emotion")] == ["offline"] * 3

    out = run_cli(["models", "download"], tmp_path, **env)

    assert out.returncode == 0, out.stderr
    folders = {c: models / folder_name(repo) for c, repo in (
        ("asr", ASR), ("vad", VAD), ("voice_emotion", VOICE),
        ("text_zh", TEXT_ZH), ("text_en", TEXT_EN))}
    assert out.stdout.splitlines() == [
        f"{'asr':14} {folders['asr']}", f"{'vad':14} {folders['vad']}",
        f"{'voice_emotion':14} {folders['voice_emotion']}",
        f"{'text_emotion':14} {folders['text_zh']}", f"{'text_emotion':14} {folders['text_en']}"]
    assert sorted(p.name for p in models.iterdir()) == sorted(p.name for p in folders.values())
    for repo, folder in zip((ASR, VAD, VOICE, TEXT_ZH, TEXT_EN), folders.values(),
                            strict=True):
        served = sorted(p.relative_to(hub.repos[repo]).as_posix()
                        for p in hub.repos[repo].rglob("*") if p.is_file())
        assert sorted(p.relative_to(folder).as_posix()
                      for p in folder.rglob("*") if p.is_file()) == served

    after = _status_rows(run_cli(["models", "status"], tmp_path, **env))
    assert [after[c][1] for c in ("asr", "text_emotion", "voice_emotion")] == ["full"] * 3
    assert after["asr"][2] == str(folders["asr"])
    assert after["text_emotion"][2] == f"zh={folders['text_zh']},en={folders['text_en']}"

    # The tiny SenseVoice hears "Hello world." in English in every clip.
    note = speech_file(tmp_path, "Any words.", "ogg")
    analysed = run_cli(["analyze", "--json", str(note)], tmp_path, **env,
                       VOICEMOOD_WHISPER_MODEL=str(MODELS_DIR / "whisper-base"))
    assert analysed.returncode == 0, analysed.stderr
    result = json.loads(analysed.stdout)
    assert (result["language"], result["transcript"]) == ("en", "Hello world.")
    assert result["models"]["asr"] == str(folders["asr"])
    assert result["models"]["voice_emotion"] == str(folders["voice_emotion"])
    assert result["emotion"]["voice"]["label"] == "angry"  # emotion2vec, downloaded
    assert result["emotion"]["text"]["label"] == "negative"  # the en classifier's
    assert result["models"]["text_emotion"] == (
        f"zh={folders['text_zh']},en={folders['text_en']}")


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
def test_a_failed_download_leaves_nothing_auto_would_load(
    hub: FakeHub, tmp_path: Path, fault: str
) -> None:
    getattr(hub, fault).add((ASR, "model.pt"))
    models = tmp_path / "models"
    models.mkdir()
    # A download killed earlier left its partial folder behind: it must never be loaded,
    # and the next download removes it.
    stale = models / f".partial-{folder_name(ASR)}-killed"
    stale.mkdir()
    (stale / "config.yaml").write_text("model: SenseVoiceSmall\n")
    env = _env(hub, models)

    out = run_cli(["models", "download", "--component", "asr"], tmp_path, **env)

    assert out.returncode == 1
    (error,) = [line for line in out.stderr.splitlines()
                if line.startswith("voicemood models download:")]
    assert error.startswith(f"voicemood models download: downloading the asr model {ASR} from "
                            "127.0.0.1 failed: ")
    if fault == "corrupt":
        assert "ModelUnavailable: model.pt is corrupt: its hash is " in error
    assert list(models.iterdir()) == []
    rows = _status_rows(run_cli(["models", "status"], tmp_path, **env))
    assert rows["asr"][1] == "offline"

    # Once the hub serves the file whole, the same command succeeds.
    getattr(hub, fault).clear()
    again = run_cli(["models", "download", "--component", "asr"], tmp_path, **env)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in models.iterdir()] == [folder_name(ASR)]

