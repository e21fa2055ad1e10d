"""Shared pieces of the web tests: clips in every format, a running server, HTTP helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from adapters.web.app import RunningWeb, running_web
from bot.core.service import AnalysisService
from inference.engine import InferenceEngine
from tests.audio_factory import encode, speak, tone_or_silence
from tests.conftest import make_settings

#: Every format the product accepts, as the platforms and browsers send it.
FORMATS = ["ogg", "mp3", "m4a", "mp4", "webm", "wav", "flac"]
SENTENCE = "I feel great about the new project."
#: A WAVE file whose format tag no decoder knows.
BAD_WAV = (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x99\x99\x01\x00\x80\x3e\x00\x00"
           b"\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x10\x00\x00" + b"\x00" * 4096)


def make_clips(folder: Path) -> dict[str, bytes]:
    """One spoken sentence in every format, plus the inputs each error code needs."""
    wav = speak(SENTENCE, folder / "sentence.src.wav")
    clips = {fmt: encode(wav, folder / f"sentence.{fmt}", fmt).read_bytes() for fmt in FORMATS}
    clips["silence"] = tone_or_silence(folder, "silence", 2.0, "ogg").read_bytes()
    clips["tone"] = tone_or_silence(folder, "tone", 2.0, "ogg").read_bytes()
    clips["long"] = tone_or_silence(folder, "tone", 25.0, "ogg").read_bytes()
    clips["unsupported"] = BAD_WAV
    clips["corrupt"] = b"OggS" + bytes(4000)
    clips["text"] = b"this is not audio\n" * 40
    return clips


@asynccontextmanager
async def web_server(engine: InferenceEngine, folder: Path,
                     **overrides: Any) -> AsyncIterator[tuple[RunningWeb, AnalysisService]]:
    """A real server on a free loopback port over a fresh database and the shared engine."""
    settings = make_settings(folder, web_host="127.0.0.1", **overrides)
    service = await AnalysisService.create(settings, engine=engine)
    try:
        async with running_web(service, settings, port=0) as web:
            yield web, service
    finally:
        await service.close(close_engine=False)


async def post_audio(client: httpx.AsyncClient, name: str, data: bytes,
                     path: str = "/api/analyze", **kwargs: Any) -> httpx.Response:
    """``POST /api/analyze`` with ``data`` in multipart field ``file`` named ``name``."""
    return await client.post(path, files={"file": (name, data)}, **kwargs)
