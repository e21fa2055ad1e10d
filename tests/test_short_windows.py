"""Short notes through short encoder windows, and the 30 s window when a short one is doubtful
(inference/whisper_batch.py, issue 21).

A note's window length must follow from its own speech alone, notes of different window
lengths in one batch must each keep their own words, and a short window that decodes
something the speech cannot hold (a sentence twice over, a loop) must give way to the 30 s
window, whose result is faster-whisper's own.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import numpy as np
import pytest

from bench.scoring import cer_zh, wer_en
from inference import whisper_batch
from inference.asr_whisper import WhisperAsr
from inference.whisper_batch import repeats_itself, short_window_frames, transcribe_clips
from tests.conftest import REPO, SHARED_DATA
from tests.test_engine import decode, to_ogg

needs_data = pytest.mark.shared_data

#: A Mandarin clip (3.2 s) that a 6 s window reads twice over:
#: "看到老婆肚皮在动。看到老婆肚皮在动。".
SAID_TWICE = ("zh_asr_aishell", "audio/BAC009S0150W0410.flac", "看到老婆肚皮在动")


def test_a_window_is_the_shortest_that_holds_the_speech_and_3_s_of_silence() -> None:
    # Frames are 10 ms: 12 s of speech + 3 s fit 15 s, 17 s + 3 s fit 20 s, more needs 30 s.
    assert short_window_frames(50) == 1500
    assert short_window_frames(1200) == 1500
    assert short_window_frames(1201) == 2000
    assert short_window_frames(1700) == 2000
    assert short_window_frames(1701) is None
    assert short_window_frames(2999) is None


def test_a_sentence_said_over_again_is_a_repetition_and_speech_is_not() -> None:
    assert repeats_itself("看到老婆肚皮在动。看到老婆肚皮在动。")
    assert repeats_itself("打开监狱两远打开监狱两远。")  # punctuation differs between copies
    assert repeats_itself("Thank you for watching. Thank you for watching. "
                          "Thank you for watching.")
    assert not repeats_itself("看到老婆肚皮在动。")
    assert not repeats_itself("No, no.")  # a piece under four letters is speech
    assert not repeats_itself("哈哈哈哈")
    assert not repeats_itself("I said it. I said it again.")
    assert not repeats_itself("")


def _ogg_samples(flac: Path, out: Path) -> np.ndarray:
    """``flac`` as Telegram sends it, decoded as the product decodes it."""
    return asyncio.run(decode(to_ogg(flac, out))).samples


def _rows(name: str) -> dict[str, dict[str, str]]:
    with (SHARED_DATA / name / "manifest.csv").open(encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def asr() -> WhisperAsr:
    return WhisperAsr(REPO / "models" / "whisper-base", cpu_threads=2)


@pytest.fixture
def encoded_lengths(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The frame count of every window the encoder reads, one list per encoder round."""
    rounds: list[list[int]] = []
    real = whisper_batch._encode

    def recording(asr, windows):  # type: ignore[no-untyped-def]
        rounds.append([w.shape[-1] for w in windows])
        return real(asr, windows)

    monkeypatch.setattr(whisper_batch, "_encode", recording)
    return rounds


@needs_data
def test_notes_of_three_window_lengths_in_one_batch_each_get_their_own_words(
        asr: WhisperAsr, encoded_lengths: list[list[int]], tmp_path: Path) -> None:
    en, zh = _rows("en_asr"), _rows("zh_asr_aishell")
    short_en = "audio/dctts_LJ001-0009.flac"   # 6.5 s: a 15 s window
    longest_en = "audio/dctts_LJ001-0092.flac"  # 12.4 s: a 20 s window
    short_zh = "audio/BAC009S0150W0030.flac"
    parts = ["audio/dctts_LJ003-0007.flac", "audio/dctts_LJ003-0008.flac"]  # 24 s together
    clips = [_ogg_samples(SHARED_DATA / "en_asr" / short_en, tmp_path / "a.ogg"),
             _ogg_samples(SHARED_DATA / "en_asr" / longest_en, tmp_path / "b.ogg"),
             _ogg_samples(SHARED_DATA / "zh_asr_aishell" / short_zh, tmp_path / "c.ogg"),
             np.concatenate([_ogg_samples(SHARED_DATA / "en_asr" / p, tmp_path / f"{i}.ogg")
                             for i, p in enumerate(parts)])]
    references = [("en", en[short_en]["transcript"]), ("en", en[longest_en]["transcript"]),
                  ("zh", zh[short_zh]["transcript"]),
                  ("en", " ".join(en[p]["transcript"] for p in parts))]

    transcripts = transcribe_clips(asr, clips)

    assert encoded_lengths[0] == [1500, 2000, 1500, 3000]
    assert [t.language for t in transcripts] == [lang for lang, _ in references]
    for i, ((language, reference), transcript) in enumerate(
            zip(references, transcripts, strict=True)):
        score = cer_zh if language == "zh" else wer_en
        own = score([reference], [transcript.text])
        assert own <= 0.4, (reference, transcript.text)
        for j, (other_lang, other) in enumerate(references):
            if j != i and other_lang == language:
                assert own < score([other], [transcript.text]), (i, j, transcript.text)
    # The same words alone as in a batch of other window lengths.
    encoded_lengths.clear()
    assert [transcribe_clips(asr, [clip])[0] for clip in clips] == transcripts


@needs_data
def test_a_sentence_said_twice_in_a_short_window_is_read_again_from_a_30_s_window(
        asr: WhisperAsr, encoded_lengths: list[list[int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, file, reference = SAID_TWICE
    clip = _ogg_samples(SHARED_DATA / name / file, tmp_path / "twice.ogg")
    # A 6 s window is where Whisper says this note twice (too short to ship; see
    # SHORT_WINDOWS_S).
    monkeypatch.setattr(whisper_batch, "SHORT_WINDOWS_S", (6, 15, 20))

    (heard,) = transcribe_clips(asr, [clip])

    assert encoded_lengths == [[600], [3000]]  # the short window, then the 30 s one
    assert heard.language == "zh"
    assert heard.text.rstrip("。") == reference


@needs_data
def test_a_doubtful_short_window_gives_way_to_faster_whispers_30_s_result(
        asr: WhisperAsr, encoded_lengths: list[list[int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    clips = [_ogg_samples(SHARED_DATA / "en_asr" / "audio/dctts_LJ001-0045.flac",
                          tmp_path / "en.ogg"),
             _ogg_samples(SHARED_DATA / "zh_asr_aishell" / "audio/BAC009S0150W0015.flac",
                          tmp_path / "zh.ogg")]
    monkeypatch.setattr(asr, "short_windows", False)
    thirty = transcribe_clips(asr, clips)
    monkeypatch.setattr(asr, "short_windows", True)
    # Any token is too many for the speech: every short window is doubtful.
    monkeypatch.setattr(whisper_batch, "MAX_TOKENS_PER_SPEECH_S", 0.0)
    encoded_lengths.clear()

    assert transcribe_clips(asr, clips) == thirty
    assert encoded_lengths == [[1500, 1500], [3000, 3000]]


class _AsIfCuda:
    """The loaded CTranslate2 model, saying it runs on CUDA: the GPU path's grouping of
    windows into one encoder batch per length runs for real, on the CPU."""

    device = "cuda"

    def __init__(self, real: object) -> None:
        self._real = real
        self.encoded_shapes: list[tuple[int, ...]] = []

    def encode(self, features, to_cpu=False):  # type: ignore[no-untyped-def]
        self.encoded_shapes.append(tuple(features.shape))
        return self._real.encode(features, to_cpu=to_cpu)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._real, name)


@needs_data
def test_on_cuda_the_windows_of_one_length_are_encoded_in_one_batch(
        asr: WhisperAsr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    en, zh = _rows("en_asr"), _rows("zh_asr_aishell")
    picked = [("en_asr", "audio/dctts_LJ001-0009.flac"),   # 15 s window
              ("en_asr", "audio/dctts_LJ001-0092.flac"),   # 20 s window
              ("zh_asr_aishell", "audio/BAC009S0150W0030.flac"),  # 15 s window
              ("en_asr", "audio/dctts_LJ001-0010.flac")]   # 15 s window
    clips = [_ogg_samples(SHARED_DATA / name / file, tmp_path / f"{i}.ogg")
             for i, (name, file) in enumerate(picked)]
    references = [(en if name == "en_asr" else zh)[file]["transcript"] for name, file in picked]
    on_cuda = _AsIfCuda(asr.model.model)
    monkeypatch.setattr(asr.model, "model", on_cuda)

    transcripts = transcribe_clips(asr, clips)

    # One encoder call per window length in the first round, not one per note.
    assert sorted(on_cuda.encoded_shapes[:2]) == [(1, 80, 2000), (3, 80, 1500)]
    for (name, _file), reference, transcript in zip(picked, references, transcripts,
                                                    strict=True):
        score = cer_zh if name == "zh_asr_aishell" else wer_en
        assert score([reference], [transcript.text]) <= 0.4, (reference, transcript.text)
