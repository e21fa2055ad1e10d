"""Quality floors of the words branch on the labelled dev sets in ../shared/data.

Each shipped text backend is run through ``voicemood text --json`` (a subprocess, as an
operator runs it) over the 600 Weibo posts and 600 tweets, and scored with
:mod:`bench.scoring`. Measured values are in README "Accuracy"; the offline
backend is deterministic, so its floors are the issue's targets or the measured value
rounded down, not a margin for noise. The transformers classifier is measured only where
real weights are on disk (the test says so when it skips).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scoring import CLASSES, score
from inference.model_paths import local_model_dir
from tests.conftest import MODELS_DIR, REPO, SHARED_DATA

#: (backend, language) -> (min accuracy, min macro-F1). Offline measured 2026-11-26:
#: zh 0.655 / 0.652, en 0.605 / 0.609 (VADER alone was 0.592 / 0.586). zh is issue 11's
#: target; en is below its 0.63 target (see README), so its floor guards the measured value.
FLOORS = {
    ("lexicon", "zh"): (0.65, 0.64),
    ("lexicon", "en"): (0.60, 0.60),
    # No measurement yet (no real weights here): a sanity floor well above chance (0.33).
    ("transformers", "zh"): (0.45, 0.40),
    ("transformers", "en"): (0.45, 0.40),
}
#: Real full-tier weights: VOICEMOOD_TEST_TEXT_MODEL, else the default model under models/.
DEFAULT_TEXT_MODEL = "IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment"


def test_scores_are_computed_per_class() -> None:
    truth = ["positive", "negative", "neutral", "positive"]
    predicted = ["positive", "neutral", "neutral", "negative"]
    result = score(truth, predicted)
    assert result.accuracy == 0.5
    # F1: positive 2/3, negative 0, neutral 2/3.
    assert result.macro_f1 == pytest.approx(4 / 9)
    assert result.confusion == ((1, 1, 0), (0, 0, 1), (0, 0, 1))
    assert CLASSES == ("positive", "negative", "neutral")
    with pytest.raises(ValueError, match="2 references but 1 predictions"):
        score(["positive", "neutral"], ["neutral"])


def _rows(name: str) -> list[dict[str, str]]:
    with (SHARED_DATA / name / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _real_text_model() -> Path | None:
    configured = os.environ.get("VOICEMOOD_TEST_TEXT_MODEL", "")
    if configured:
        return Path(configured)
    return local_model_dir(DEFAULT_TEXT_MODEL, MODELS_DIR)


def _run_cli(texts: list[str], language: str, env: dict[str, str], cwd: Path
             ) -> list[dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "text", "--json", "--lang", language],
        input="\n".join(texts) + "\n", capture_output=True, text=True, timeout=300,
        env=env, cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _measure(backend: str, language: str, cwd: Path, model: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEMOOD_")}
    env.update(PYTHONPATH=str(REPO), VOICEMOOD_TEXT_EMOTION_BACKEND=backend,
               VOICEMOOD_DEVICE="cpu", VOICEMOOD_LOG_LEVEL="WARNING")
    if model is not None:
        env["VOICEMOOD_TEXT_EMOTION_MODEL"] = str(model)
    rows = _rows(f"{language}_text_sentiment")
    results = _run_cli([r["text"] for r in rows], language, env, cwd)
    assert [r["text"] for r in results] == [r["text"] for r in rows]
    assert {r["label"] for r in results} <= set(CLASSES)  # words never say excited
    result = score([r["label"] for r in rows], [str(r["label"]) for r in results])
    print(f"\n{backend} {language}: accuracy {result.accuracy:.3f}, macro-F1 "
          f"{result.macro_f1:.3f}, confusion (rows truth, cols predicted; "
          f"{'/'.join(CLASSES)}) {result.confusion}")
    min_accuracy, min_f1 = FLOORS[(backend, language)]
    assert result.accuracy >= min_accuracy
    assert result.macro_f1 >= min_f1


@pytest.mark.shared_data
@pytest.mark.parametrize("language", ["zh", "en"])
def test_offline_words_branch_accuracy(language: str, tmp_path: Path) -> None:
    _measure("lexicon", language, tmp_path)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_transformers_words_branch_accuracy(language: str, tmp_path: Path) -> None:
    # Not marked shared_data: where the recordings are required (CI) the missing weights are
    # still a legitimate skip; the data check comes second.
    model = _real_text_model()
    if model is None or not model.is_dir():
        pytest.skip(f"no real text classifier weights ({DEFAULT_TEXT_MODEL} is not under "
                    f"{MODELS_DIR}; set VOICEMOOD_TEST_TEXT_MODEL to a model folder)")
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the dev sets in ../shared/data ({SHARED_DATA} is absent)")
    _measure("transformers", language, tmp_path, model)
