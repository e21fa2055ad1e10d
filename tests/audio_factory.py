"""Make real speech audio for tests: espeak-ng speaks, ffmpeg encodes like each platform."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: ffmpeg arguments per format, the way each platform sends audio.
ENCODINGS: dict[str, list[str]] = {
    "ogg": ["-c:a", "libopus", "-b:a", "32k", "-ac", "1"],  # Telegram voice note
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "m4a": ["-c:a", "aac", "-b:a", "64k"],  # Slack clip / iPhone memo
    "webm": ["-c:a", "libopus", "-b:a", "32k", "-f", "webm"],  # Slack browser clip
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
}


def speak(text: str, out: Path, *, voice: str = "en", speed: int = 160) -> Path:
    """Speak ``text`` with espeak-ng into a WAV file."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text],
                   check=True, capture_output=True)
    return out


def encode(src: Path, out: Path, fmt: str) -> Path:
    """Encode ``src`` as ``fmt`` (a key of :data:`ENCODINGS`, or "mp4" for a video note)."""
    if fmt == "mp4":
        # A round video note: a small black video track plus the voice as AAC.
        cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
               "color=c=black:s=240x240:r=10", "-i", str(src), "-shortest",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-b:a", "64k", str(out)]
    else:
        cmd = ["ffmpeg", "-y", "-loglevel", "error", "-i", str(src), *ENCODINGS[fmt], str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def speech_file(tmp: Path, text: str, fmt: str = "ogg", *, name: str = "speech") -> Path:
    """espeak-ng speech encoded as ``fmt``; returns the path."""
    wav = speak(text, tmp / f"{name}.src.wav")
    return encode(wav, tmp / f"{name}.{fmt}", fmt)


def tone_or_silence(tmp: Path, kind: str, seconds: float = 2.0, fmt: str = "wav") -> Path:
    """``silence``, ``noise`` (quiet pink noise) or ``tone`` made by ffmpeg's lavfi."""
    source = {
        "silence": "anullsrc=r=16000:cl=mono",
        "noise": "anoisesrc=c=pink:a=0.05:r=16000",
        "tone": "sine=f=440:r=16000",
    }[kind]
    out = tmp / f"{kind}.{fmt}"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", source,
                    "-t", str(seconds), "-ac", "1", *ENCODINGS[fmt], str(out)],
                   check=True, capture_output=True)
    return out
