"""Notes batched together each get their own words (issue 21).

The batch decoder (inference/whisper_batch.py) encodes one window per note (a short one for
these notes), groups windows of equal prompt and window length into one beam search, and
hands the results back by index. A mistake in
that bookkeeping would give a note another note's words, or make a note's words depend on
its batch-mates: these tests put different real notes (Mandarin and English, 1.7-10 s, as
OGG/Opus) into one batch and check each transcript against its own reference from the
manifest.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.scoring import cer_zh, wer_en
from inference.asr_whisper import WhisperAsr
from inference.whisper_batch import transcribe_clips
from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.shared_data

#: Held-out rows (2, 7, 12, ... as bench/peer.py; the quality tests read 0, 5, 10, ...).
NOTES_PER_LANGUAGE = 3
#: A note's own reference must be matched at least this well (per-note CER / WER).
MAX_OWN_ERROR = 0.4


def _rows(name: str) -> list[dict[str, str]]:
    with (SHARED_DATA / name / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[2::5]
    return [r for r in rows if 1.7 <= float(r["duration_s"]) <= 10.0][:NOTES_PER_LANGUAGE]


@pytest.fixture(scope="module")
def asr() -> WhisperAsr:
    return WhisperAsr(REPO / "models" / "whisper-base", cpu_threads=2)


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, np.ndarray]]:
    """(language, reference, 16 kHz samples) of Mandarin and English notes, interleaved so
    that neighbours in the batch differ in language and length."""
    from faster_whisper import decode_audio

    tmp = tmp_path_factory.mktemp("notes")
    out = []
    for zh, en in zip(_rows("zh_asr_aishell"), _rows("en_asr"), strict=True):
        for name, row in (("zh_asr_aishell", zh), ("en_asr", en)):
            ogg = tmp / f"{Path(row['file']).stem}.ogg"
            subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i",
                            str(SHARED_DATA / name / row["file"]), "-c:a", "libopus", "-b:a",
                            "32k", "-ac", "1", str(ogg)], check=True, capture_output=True)
            out.append((row["language"], row["transcript"], decode_audio(str(ogg))))
    return out


def _error(language: str, reference: str, text: str) -> float:
    return (cer_zh if language == "zh" else wer_en)([reference], [text])


def test_each_note_of_a_mixed_batch_gets_its_own_words(
        asr: WhisperAsr, notes: list[tuple[str, str, np.ndarray]]) -> None:
    transcripts = transcribe_clips(asr, [clip for _, _, clip in notes])
    assert [t.language for t in transcripts] == [lang for lang, _, _ in notes]
    for i, ((language, reference, _), transcript) in enumerate(
            zip(notes, transcripts, strict=True)):
        own = _error(language, reference, transcript.text)
        assert own <= MAX_OWN_ERROR, (reference, transcript.text)
        # Closer to its own reference than to any other note's of the same language.
        for j, (other_lang, other_ref, _) in enumerate(notes):
            if j != i and other_lang == language:
                assert own < _error(language, other_ref, transcript.text), (
                    f"note {i} reads like note {j}: {transcript.text!r}")


def test_a_note_gets_the_same_words_in_a_batch_as_alone(
        asr: WhisperAsr, notes: list[tuple[str, str, np.ndarray]]) -> None:
    clips = [clip for _, _, clip in notes]
    batched = transcribe_clips(asr, clips)
    alone = [transcribe_clips(asr, [clip])[0] for clip in clips]
    assert batched == alone
