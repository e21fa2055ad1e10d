"""The decoder reads only the bytes it was given (issue 18, item 2).

An upload is a few bytes from a stranger. Left to guess the container, ffmpeg would take a
text file named ``note.ogg`` holding an HLS playlist or a concat list for what it is and
open the local recording it names, so the sender got another file's transcript; a live
playlist (no end tag) held a decode slot for the whole timeout. These tests send exactly
such files through the real ffmpeg/ffprobe, by the decoder, the admission probe and the
pipeline that every front end (API, Telegram document, Slack, CLI) ends in, and expect a
quick ``not_audio`` refusal, while every platform format still decodes and is measured.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from inference.audio import decode_audio, probe_seconds
from inference.config import InferenceConfig
from inference.errors import NotAudio
from inference.pipeline import Pipeline
from tests.audio_factory import encode, speak

#: Generous decode timeout: a refusal must come from the format check, not from the clock.
TIMEOUT_S = 20.0
#: A refusal takes one ffmpeg start (~0.1 s); this leaves room for a loaded 2-core machine
#: while staying far below TIMEOUT_S, so "refused by the timeout" cannot pass for it.
QUICK_S = 5.0
LIMITS = {"max_bytes": 20_000_000, "max_seconds": 60.0, "timeout_s": TIMEOUT_S}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the decoder's temporary copies go to, with another recording in it.

    Before the fix a copy lay directly in the temp folder, next to whatever else was there
    (other notes in flight): a relative name in a concat list reached those.
    """
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def victim(private_tmp: Path) -> Path:
    """A real voice note on the server that the sender must never hear back (OGG, ~3 s).

    OGG (or FLAC, MP3...): Debian's ffmpeg 5.1 lets an HLS playlist name a segment only
    when the segment's container has a matching extension, and WAV has none.
    """
    wav = speak("This is somebody else's private voice note.", private_tmp / "victim.src.wav")
    return encode(wav, private_tmp / "victim.ogg", "ogg")


def hls_playlist(target: Path, *, live: bool = False) -> bytes:
    """A ~120-byte HLS playlist naming ``target``; without the end tag it is a live one."""
    text = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{target}\n"
    return (text if live else text + "#EXT-X-ENDLIST\n").encode()


def attacks(victim: Path) -> dict[str, bytes]:
    """Every shape of "a list of other files" the decoder must refuse."""
    return {
        "hls": hls_playlist(victim),
        # An ID3 tag in front makes the upload sniff as MP3; ffmpeg skips it and still
        # finds the playlist behind it.
        "hls_behind_id3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + hls_playlist(victim),
        # The concat demuxer's default "safe" mode refuses absolute names but follows
        # relative ones, from the folder the upload was copied to.
        "concat": f"ffconcat version 1.0\nfile '{victim.name}'\n".encode(),
    }


@pytest.mark.parametrize("kind", ["hls", "hls_behind_id3", "concat"])
async def test_playlists_are_refused_not_followed(kind: str, victim: Path) -> None:
    data = attacks(victim)[kind]
    assert len(data) < 200  # a tiny text file, named note.ogg by the sender
    started = time.monotonic()
    with pytest.raises(NotAudio) as err:
        await decode_audio(data, **LIMITS)
    assert err.value.code == "not_audio"
    assert time.monotonic() - started < QUICK_S


async def test_live_playlist_does_not_hold_a_decode_slot(victim: Path) -> None:
    # Before the fix ffmpeg played the segment, then kept reloading the playlist for more
    # until the decode timeout killed it: four such uploads held every slot for a minute.
    started = time.monotonic()
    with pytest.raises(NotAudio):
        await decode_audio(hls_playlist(victim, live=True), **LIMITS)
    assert time.monotonic() - started < QUICK_S


async def test_admission_probe_does_not_open_what_a_playlist_names(victim: Path) -> None:
    # ffprobe used to report the named recording's duration (or the playlist's, 10 s): the
    # probe must see no audio at all, so nothing is read on the sender's behalf.
    for data in attacks(victim).values():
        assert await probe_seconds(data, timeout_s=TIMEOUT_S) is None


async def test_pipeline_refuses_a_playlist_before_any_model(victim: Path) -> None:
    # The path every front end takes. The engine is never started: a refusal that needed
    # the models would fail here with an error other than NotAudio.
    pipeline = Pipeline(InferenceConfig(decode_timeout_s=TIMEOUT_S))
    try:
        started = time.monotonic()
        with pytest.raises(NotAudio):
            await pipeline.run(hls_playlist(victim))
        assert time.monotonic() - started < QUICK_S
        assert pipeline.admitted_jobs == 0
    finally:
        await pipeline.close()


@pytest.mark.parametrize("fmt", ["ogg", "mp3", "m4a", "mp4", "webm", "wav", "flac"])
async def test_platform_formats_pass_the_allow_list(fmt: str, tmp_path: Path) -> None:
    # The allow-list must not cost a real format its decode nor its declared duration
    # (without one, admission falls back to a size guess).
    wav = speak("Allowed formats still decode.", tmp_path / "src.wav")
    data = encode(wav, tmp_path / f"note.{fmt}", fmt).read_bytes()
    expected = float(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(wav)], capture_output=True, text=True, check=True).stdout)
    declared = await probe_seconds(data, timeout_s=TIMEOUT_S)
    # The container's duration: a video note's runs to the end of its last (10 fps) frame.
    assert declared is not None and abs(declared - expected) < 0.5, (declared, expected)
    decoded = await decode_audio(data, **LIMITS)
    assert abs(decoded.duration_s - expected) < 0.15
