"""inference.audio: every platform format decodes to 16 kHz mono; every bad input is refused."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from inference.audio import DecodedAudio, decode_audio, frame_dbfs, sniff_container
from inference.errors import (
    CorruptAudio,
    EmptyInput,
    NotAudio,
    Silent,
    TooLarge,
    TooLong,
    UnsupportedCodec,
)
from tests.audio_factory import encode, speak, tone_or_silence

LIMITS = {"max_bytes": 20_000_000, "max_seconds": 60.0, "timeout_s": 20.0}


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("speech")
    return speak("Testing the voice note decoder with a short sentence.", tmp / "s.wav")


@pytest.mark.parametrize("fmt", ["ogg", "mp3", "m4a", "mp4", "webm", "wav", "flac"])
async def test_platform_formats_decode_to_16k_mono(fmt: str, speech_wav: Path,
                                                   tmp_path: Path) -> None:
    src = encode(speech_wav, tmp_path / f"note.{fmt}", fmt)
    decoded = await decode_audio(src.read_bytes(), **LIMITS)
    # espeak-ng wrote 22.05 kHz; the output must be resampled to 16 kHz whatever came in.
    info = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(speech_wav)], capture_output=True, text=True, check=True)
    expected = float(info.stdout.strip())
    assert decoded.samples.dtype == np.float32
    assert decoded.samples.ndim == 1
    assert abs(decoded.duration_s - expected) < 0.15, (decoded.duration_s, expected)
    assert abs(len(decoded.samples) / 16_000 - decoded.duration_s) < 1e-6
    wav = decoded.wav_bytes()
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    channels, rate, bits = struct.unpack("<HI", wav[22:28]) + struct.unpack("<H", wav[34:36])
    assert (channels, rate, bits) == (1, 16_000, 16)


async def test_quiet_recording_is_normalised(shared_data: Path) -> None:
    # RAVDESS clips sit near -40 dBFS: speech must come out near the -20 dBFS target.
    clip = shared_data / "en_emotion_ravdess" / "audio" / "03-01-02-01-01-01-01.flac"
    decoded = await decode_audio(clip.read_bytes(), **LIMITS)
    assert decoded.source_dbfs < -35
    assert decoded.gain_db > 10
    levels = frame_dbfs(decoded.samples)
    active = levels[levels > levels.max() - 30]
    level = 10 * np.log10(np.mean(10 ** (active / 10)))
    assert -23 < level < -17
    assert np.max(np.abs(decoded.samples)) <= 1.0


async def test_empty_input_refused() -> None:
    with pytest.raises(EmptyInput) as err:
        await decode_audio(b"", **LIMITS)
    assert err.value.code == "empty"


async def test_too_large_refused_before_decoding(speech_wav: Path) -> None:
    data = speech_wav.read_bytes()
    with pytest.raises(TooLarge) as err:
        await decode_audio(data, max_bytes=len(data) - 1, max_seconds=60)
    assert "limit" in err.value.message


@pytest.mark.parametrize(
    "payload",
    [b"hello, this is a plain text file\n" * 20, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
     b"%PDF-1.4\n" + b"0" * 500],
    ids=["text", "png", "pdf"],
)
async def test_non_audio_refused(payload: bytes) -> None:
    with pytest.raises(NotAudio) as err:
        await decode_audio(payload, **LIMITS)
    assert err.value.code == "not_audio"


async def test_video_without_audio_track_refused(tmp_path: Path) -> None:
    out = tmp_path / "mute.mp4"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=red:s=64x64:r=5", "-t", "1", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", str(out)], check=True)
    with pytest.raises(NotAudio) as err:
        await decode_audio(out.read_bytes(), **LIMITS)
    assert "no audio track" in err.value.message


@pytest.mark.parametrize("cut", ["header", "magic"])
async def test_corrupt_audio_refused(cut: str, speech_wav: Path, tmp_path: Path) -> None:
    ogg = encode(speech_wav, tmp_path / "n.ogg", "ogg").read_bytes()
    data = ogg[:120] if cut == "header" else b"OggS" + bytes(4000)
    with pytest.raises(CorruptAudio) as err:
        await decode_audio(data, **LIMITS)
    assert err.value.code == "corrupt"


async def test_unsupported_codec_refused() -> None:
    pcm = (np.sin(np.arange(16000) / 5) * 8000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 16000, 32000, 2, 16)  # unknown WAVE format tag
    wav = (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<I", 16)
           + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm)
    with pytest.raises(UnsupportedCodec) as err:
        await decode_audio(wav, **LIMITS)
    assert err.value.code == "unsupported_codec"


async def test_too_long_refused(tmp_path: Path) -> None:
    tone = tone_or_silence(tmp_path, "tone", seconds=5.0, fmt="ogg")
    with pytest.raises(TooLong) as err:
        await decode_audio(tone.read_bytes(), max_bytes=10**7, max_seconds=3.0)
    assert "3 s" in err.value.message
    ok = await decode_audio(tone.read_bytes(), max_bytes=10**7, max_seconds=6.0)
    assert 4.9 < ok.duration_s < 5.1


async def test_silence_refused(tmp_path: Path) -> None:
    silence = tone_or_silence(tmp_path, "silence", seconds=3.0, fmt="ogg")
    with pytest.raises(Silent):
        await decode_audio(silence.read_bytes(), **LIMITS)


async def test_decoder_is_bounded_in_time(speech_wav: Path) -> None:
    # A timeout far below ffmpeg's start-up time must end in a typed refusal, not a hang.
    with pytest.raises(CorruptAudio) as err:
        await decode_audio(speech_wav.read_bytes(), max_bytes=10**7, max_seconds=60,
                           timeout_s=0.001)
    assert "too long" in err.value.message


def test_sniff_container() -> None:
    assert sniff_container(b"OggS\x00\x02") == "ogg"
    assert sniff_container(b"ID3\x04\x00") == "mp3"
    assert sniff_container(b"\x00\x00\x00\x20ftypM4A ") == "mp4"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x01") == "webm"
    assert sniff_container(b"fLaC\x00") == "flac"
    assert sniff_container(b"hello world") is None


def test_wav_bytes_round_trip() -> None:
    samples = (0.5 * np.sin(np.linspace(0, 200, 16000))).astype(np.float32)
    audio = DecodedAudio(samples=samples, duration_s=1.0, source_dbfs=-9.0, gain_db=0.0)
    wav = audio.wav_bytes()
    back = np.frombuffer(wav[44:], dtype="<i2").astype(np.float32) / 32767
    assert len(back) == 16000
    assert np.max(np.abs(back - samples)) < 1e-3
