"""Uploads are admitted before their body is read, and an aborted page upload leaves no
file behind (issue #18, items 8 and 10). A real server on a free loopback port
(tests/web_fixtures.py), spoken to over raw HTTP so a test controls what is sent when."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from gradio.utils import get_upload_folder

from adapters.web.app import RunningWeb
from bot.core.service import AnalysisService
from inference.engine import InferenceEngine
from tests.audio_factory import speech_file
from tests.web_fixtures import post_audio, web_server

LIMIT = 2_000_000
BOUNDARY = "voicemoodboundary"
#: A refusal reads no body and runs no model; generous for a loaded 2-core machine.
REFUSAL_S = 30.0


async def until(condition: Callable[[], object], within: float, what: str) -> None:
    """Wait for ``condition()`` without blocking the server that shares this loop."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {within:.0f} s waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def site(engine: InferenceEngine,
               tmp_path: Path) -> AsyncIterator[tuple[RunningWeb, AnalysisService]]:
    """The open server (no logins), a 2 MB limit and room for one note at a time."""
    async with web_server(engine, tmp_path, max_audio_bytes=LIMIT, queue_size=1) as served:
        yield served


async def _head(web: RunningWeb, path: str, length: int | None,
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send only a POST's headers (and the multipart part's head); no audio yet."""
    url = httpx.URL(web.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {url.host}\r\n{size}\r\n"
                 f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status = await asyncio.wait_for(reader.readline(), REFUSAL_S)
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REFUSAL_S)).decode()
    headers = dict(line.split(": ", 1) for line in head.strip().split("\r\n"))
    headers = {k.lower(): v for k, v in headers.items()}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])),
                                  REFUSAL_S)
    return int(status.split()[1]), headers, body


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


PART_HEAD = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; "
             f"filename=\"note.ogg\"\r\nContent-Type: audio/ogg\r\n\r\n").encode()


@pytest.mark.parametrize("path", ["/api/analyze", "/gradio_api/upload"])
async def test_a_declared_length_over_the_limit_is_refused_unread(
        site: tuple[RunningWeb, AnalysisService], path: str) -> None:
    web, _ = site
    reader, writer = await _head(web, path, 3_000_000)  # the 3 MB never follow
    try:
        status, _, body = await _answer(reader)
    finally:
        writer.close()
    assert status == 413
    assert json.loads(body) == {"error": {"code": "too_large", "message":
                                          "The file is larger than the limit of 1.9 MB."}}


@pytest.mark.parametrize("path", ["/api/analyze", "/gradio_api/upload"])
async def test_while_the_queue_is_full_an_upload_is_refused_unread(
        site: tuple[RunningWeb, AnalysisService], path: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    web, service = site
    gate = asyncio.Event()
    infer = service.pipeline.engine.infer

    async def held(audio, on_stage=None):  # type: ignore[no-untyped-def]
        await gate.wait()  # the one admitted note stays admitted until the gate opens
        return await infer(audio, on_stage=on_stage)

    monkeypatch.setattr(service.pipeline.engine, "infer", held)
    clip = speech_file(tmp_path, "Hello there.", "ogg")
    async with httpx.AsyncClient(base_url=web.url, timeout=240) as c:
        first = asyncio.create_task(post_audio(c, "first.ogg", clip.read_bytes()))
        try:
            await until(lambda: service.pipeline.admitted_jobs == 1, 120, "one admitted note")
            reader, writer = await _head(web, path, 500_000)  # the body never follows
            try:
                status, headers, body = await _answer(reader)
            finally:
                writer.close()
            assert status == 503
            assert json.loads(body)["error"]["code"] == "busy"
            assert json.loads(body)["error"]["message"].startswith(
                "voicemood is busy right now; please try again in about ")
            assert int(headers["retry-after"]) >= 1
        finally:
            gate.set()
            reply = await first
    assert reply.status_code == 200, reply.text


def _uploads() -> set[Path]:
    return {p for p in Path(get_upload_folder()).rglob("*") if p.is_file()}


async def test_a_chunked_page_upload_over_the_limit_is_cut_off(
        site: tuple[RunningWeb, AnalysisService]) -> None:
    web, _ = site
    before = _uploads()
    reader, writer = await _head(web, "/gradio_api/upload", None)
    try:
        writer.write(_chunk(PART_HEAD))
        for _ in range(48):  # 3 MB, then the body would go on forever
            writer.write(_chunk(b"\1" * 65536))
            await writer.drain()
        status, _, body = await _answer(reader)
    finally:
        writer.close()
    assert status == 413
    assert body == b"File size exceeded maximum allowed size of 1.9 MB."
    await until(lambda: _uploads() <= before, REFUSAL_S, "the partial upload to go")


async def test_an_aborted_page_upload_leaves_no_file(
        site: tuple[RunningWeb, AnalysisService]) -> None:
    web, _ = site
    before = _uploads()
    reader, writer = await _head(web, "/gradio_api/upload", 1_500_000)
    writer.write(PART_HEAD + b"\1" * 200_000)  # part of the promised body
    await writer.drain()
    await until(lambda: _uploads() - before, REFUSAL_S, "Gradio to start writing the upload")
    writer.close()  # the browser tab closed mid-upload
    await until(lambda: not (_uploads() - before), REFUSAL_S, "the partial file to go")


async def test_api_bodies_share_a_memory_budget(engine: InferenceEngine, tmp_path: Path) -> None:
    """Each API body is read whole and held until its answer; past the budget the next
    upload is refused unread (30 parallel 45 MB uploads took 1.4 GB; bench/upload_flood.py)."""
    async with web_server(engine, tmp_path, max_audio_bytes=LIMIT,
                          web_upload_memory_bytes=3_000_000) as (web, _):
        reader, writer = await _head(web, "/api/analyze", 1_900_000)  # its body on its way
        try:
            second, w2 = await _head(web, "/api/analyze", 1_900_000)
            try:
                status, headers, body = await _answer(second)
            finally:
                w2.close()
            assert status == 503 and headers["retry-after"] == "5"
            assert json.loads(body) == {"error": {"code": "busy", "message":
                                                  "voicemood is busy right now; please try "
                                                  "again in about 5 s."}}
        finally:
            writer.close()
        # Once the first is gone, a body as large is read again (and refused as not audio).
        junk = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"junk.ogg\"\r\n\r\n").encode() + b"\1" * 1_800_000 + \
            f"\r\n--{BOUNDARY}--\r\n".encode()
        deadline = time.monotonic() + REFUSAL_S
        while True:
            async with httpx.AsyncClient(base_url=web.url, timeout=120) as c:
                reply = await c.post("/api/analyze", content=junk, headers={
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            if reply.status_code != 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert reply.status_code == 415, reply.text


def test_an_upload_budget_below_one_largest_file_is_refused() -> None:
    from pydantic import ValidationError

    from bot.ops.settings import Settings

    with pytest.raises(ValidationError, match="VOICEMOOD_WEB_UPLOAD_MEMORY_BYTES must be at "
                                              "least VOICEMOOD_MAX_AUDIO_BYTES"):
        Settings(_env_file=None, max_audio_bytes=LIMIT, web_upload_memory_bytes=LIMIT - 1)
    assert Settings(_env_file=None, max_audio_bytes=LIMIT).web_upload_budget == 4 * LIMIT
