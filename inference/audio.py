"""Decode whatever a chat platform sends into 16 kHz mono 16-bit PCM.

ffmpeg does the decoding (OGG/Opus, MP3, M4A/AAC, MP4 and WebM audio tracks, WAV, FLAC...)
under a wall-clock timeout, so hostile input cannot hang a worker; numpy measures and
normalises the loudness. Every refusal is a typed :class:`~inference.errors.InputError`.

ffmpeg and ffprobe only ever read the bytes they were given. Left to itself ffmpeg guesses
the container from the content, and some of its demuxers open further inputs: a 100-byte
"note.ogg" that is really an HLS playlist (``#EXTM3U``) or a concat list (``ffconcat``)
naming another local file would be "decoded" into that file's audio, and a live playlist
(no end tag) would hold a decode slot until the timeout. So every ffmpeg/ffprobe run gets
``-format_whitelist`` (:data:`ALLOWED_DEMUXERS`, checked by ffmpeg right after it guesses
the container and before it reads a packet) and ``-protocol_whitelist file``; the input is
one file in a private, otherwise empty folder. Anything else is refused as ``not_audio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from inference.errors import (
    CorruptAudio,
    EmptyInput,
    NotAudio,
    Silent,
    TooLarge,
    TooLong,
    UnsupportedCodec,
    human_bytes,
)
from inference.types import SAMPLE_RATE

with __import__("warnings").catch_warnings():
    # pydub imports audioop, deprecated in 3.11-3.12; the warning is not ours to fix.
    __import__("warnings").simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment

#: Loudness the speech is brought to; quiet phone recordings (-40 dBFS) become audible.
TARGET_DBFS = -20.0
#: Most gain applied, so that hiss in a near-silent file is not blown up into "speech".
MAX_GAIN_DB = 30.0
#: Below this, the loudest 50 ms of the file holds no usable sound.
SILENCE_DBFS = -55.0

_FRAME = SAMPLE_RATE // 20  # 50 ms

#: The demuxers ffmpeg may use for an upload (its ``-format_whitelist``): the containers
#: chat platforms, phones and browsers send (Ogg/Opus voice notes, WebM/Matroska, MP4/M4A/
#: 3GP, MP3, WAV, FLAC, raw AAC and AMR, AIFF, CAF, WMA, AU). None of them opens another
#: input (the MOV demuxer's external references, ``enable_drefs``, stay off by default).
#: Deliberately absent: hls, concat, webm_dash_manifest, image sequences, devices, and
#: every other demuxer that reads a list of further files or URLs.
ALLOWED_DEMUXERS: tuple[str, ...] = (
    "ogg", "matroska", "webm", "mov", "mp4", "m4a", "3gp", "mp3", "wav", "w64", "flac",
    "aac", "amr", "amrnb", "amrwb", "aiff", "caf", "asf", "au",
)
#: ffmpeg's error when the guessed container is not in :data:`ALLOWED_DEMUXERS`.
_NOT_ALLOWED = "format not on whitelist"


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded, normalised audio ready for the models."""

    samples: np.ndarray  # float32 mono 16 kHz in [-1, 1], loudness-normalised
    duration_s: float
    source_dbfs: float  # loudness of the active part before normalisation
    gain_db: float

    def wav_bytes(self) -> bytes:
        """The clip as a 16 kHz mono 16-bit WAV file."""
        pcm = (np.clip(self.samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        seg = AudioSegment(data=pcm, sample_width=2, frame_rate=SAMPLE_RATE, channels=1)
        buf = io.BytesIO()
        seg.export(buf, format="wav")
        return buf.getvalue()


def ffmpeg_path() -> str:
    """The ffmpeg executable, or a clear error when it is missing."""
    path = shutil.which("ffmpeg")
    if not path:
        raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
    return path


def sniff_container(data: bytes) -> str | None:
    """Name the container from magic bytes, or None when it looks like no audio format."""
    head = data[:16]
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"#!AMR"):
        return "amr"
    if head.startswith(b"FORM") and data[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    return None


def check_size(data: bytes, max_bytes: int) -> None:
    """Refuse an empty or over-large file (EmptyInput, TooLarge) without looking inside."""
    if not data:
        raise EmptyInput("The file is empty.")
    if len(data) > max_bytes:
        raise TooLarge(
            f"The file is {human_bytes(len(data))}; the limit is {human_bytes(max_bytes)}."
        )


def _input_args(path: str) -> list[str]:
    """ffmpeg/ffprobe arguments that open ``path`` and nothing else.

    Input options, so they must come before ``-i``. The format allow-list is the gate: a
    playlist or concat list is refused before any demuxer could read what it names; the
    protocol allow-list keeps even an allowed demuxer from reaching the network or a
    ``data:``/``subfile:``/``concat:`` URL.
    """
    return ["-protocol_whitelist", "file", "-format_whitelist", ",".join(ALLOWED_DEMUXERS),
            "-i", path]


def too_long(max_seconds: float) -> TooLong:
    """The refusal for a recording over ``max_seconds``."""
    return TooLong(
        f"The recording is longer than {_fmt_seconds(max_seconds)}; please send a shorter one."
    )


async def probe_seconds(data: bytes, *, timeout_s: float = 10.0) -> float | None:
    """Duration the container declares, read by ffprobe without decoding (~50 ms).

    None when ffprobe cannot tell (not audio, a container outside
    :data:`ALLOWED_DEMUXERS`, a damaged file, or a stream without a duration such as a
    browser's WebM recording); the decoder then has the last word.
    """
    ffprobe = shutil.which("ffprobe")
    if not ffprobe:
        return None
    with _temp_copy(data) as path:
        proc = await asyncio.create_subprocess_exec(
            ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
            "format=duration", "-of", "csv=p=0", *_input_args(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return None
    try:
        seconds = float(out.decode("ascii", "replace").strip().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


@contextlib.contextmanager
def _temp_copy(data: bytes) -> Iterator[str]:
    # A file rather than stdin: MP4/M4A keep their index (moov) at the end, which
    # ffmpeg and ffprobe can only reach by seeking (ffmpeg 5.1's pipe: never seeks).
    # Alone in a private folder (0700), so a relative name inside the upload, should a
    # demuxer ever follow one, finds nothing, in particular not other notes in flight.
    with tempfile.TemporaryDirectory(prefix="voicemood-") as folder:
        path = os.path.join(folder, "note.in")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path


async def decode_audio(
    data: bytes,
    *,
    max_bytes: int,
    max_seconds: float,
    timeout_s: float = 30.0,
) -> DecodedAudio:
    """Decode ``data`` to normalised 16 kHz mono, or raise an :class:`InputError`.

    Raises EmptyInput, TooLarge, NotAudio, CorruptAudio, UnsupportedCodec, TooLong, Silent.
    """
    check_size(data, max_bytes)
    container = sniff_container(data)
    pcm = await _run_ffmpeg(data, max_seconds=max_seconds, timeout_s=timeout_s, known=container)
    if len(pcm) < 2:
        if container is None:
            raise NotAudio("This does not look like an audio file.")
        raise CorruptAudio("The audio could not be decoded: the file seems damaged.")
    # One float32 copy of the samples, scaled in place: a 10-minute note costs 38 MB here,
    # not the ~230 MB that pydub's copies and float64 temporaries took (bench/run.py flood).
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float32)
    del pcm
    samples *= 1.0 / 32768.0
    if len(samples) / SAMPLE_RATE > max_seconds:
        raise too_long(max_seconds)
    return normalise(samples)


def normalise(samples: np.ndarray) -> DecodedAudio:
    """Measure the speech level and bring it to :data:`TARGET_DBFS`, refusing silence.

    ``samples`` (float32 in [-1, 1]) is scaled in place and becomes the result's.
    """
    duration = len(samples) / SAMPLE_RATE
    if duration < 0.1:
        raise Silent("The recording is too short to hold any speech.")
    frame_db = frame_dbfs(samples)
    loudest = float(frame_db.max()) if frame_db.size else -120.0
    if loudest < SILENCE_DBFS:
        raise Silent("The recording is silent: no sound was picked up.")
    # Level of the active frames only, so pauses do not make speech look quiet.
    active = frame_db[frame_db > loudest - 30.0]
    source_dbfs = float(10 * np.log10(np.mean(10 ** (active / 10)))) if active.size else loudest
    peak = max(float(samples.max()), -float(samples.min())) or 1e-9
    gain = min(TARGET_DBFS - source_dbfs, MAX_GAIN_DB, -20 * math.log10(peak) - 0.5)
    gain = max(gain, -30.0)
    samples *= np.float32(10 ** (gain / 20))
    return DecodedAudio(samples=samples, duration_s=duration, source_dbfs=source_dbfs,
                        gain_db=gain)


def frame_dbfs(samples: np.ndarray, frame: int = _FRAME) -> np.ndarray:
    """RMS level in dBFS of consecutive 50 ms frames."""
    n = len(samples) // frame
    if n == 0:
        n, frame = 1, len(samples)
    frames = samples[: n * frame].reshape(n, frame)  # a view: no copy of a long clip
    power = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / frame
    return 20 * np.log10(np.sqrt(power) + 1e-10)


async def _run_ffmpeg(data: bytes, *, max_seconds: float, timeout_s: float,
                      known: str | None) -> bytes:
    with _temp_copy(data) as path:
        # Decode a little past the limit so "too long" is detectable without decoding hours.
        limit = f"{max_seconds + 1.0:.3f}"
        cmd = [
            ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error",
            *_input_args(path),
            "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE),
            "-t", limit, "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
        ]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CorruptAudio("Decoding took too long; the file may be damaged.") from None
    if proc.returncode != 0:
        _raise_for_stderr(err.decode("utf-8", "replace"), known)
    return out


def _raise_for_stderr(stderr: str, known: str | None) -> None:
    text = stderr.lower()
    if _NOT_ALLOWED in text:
        # A playlist, concat list or other container we do not open: whatever its first
        # bytes claim (an ID3 tag can precede one), it is not a recording.
        raise NotAudio("This does not look like an audio file.")
    if "decoder" in text and "not found" in text or "unsupported codec" in text:
        raise UnsupportedCodec("This audio uses a codec that cannot be decoded.")
    if "matches no streams" in text or "does not contain any stream" in text:
        if known in ("mp4", "webm"):
            raise NotAudio("This file holds no audio track.")
        raise NotAudio("This does not look like an audio file.")
    if known is None:
        raise NotAudio("This does not look like an audio file.")
    raise CorruptAudio("The audio could not be decoded: the file seems damaged.")


def _fmt_seconds(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
