"""The page's analyze event, driven over Gradio's own protocol against an in-process server
(tests/web_fixtures.py), so its log and stderr can be read: a refusal is one INFO line,
never a traceback (issue #20, item 5), shown in place of the result (item 2), and its
toast is titled in the page's language (item 11)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.web.app import RunningWeb
from inference.engine import InferenceEngine
from tests.audio_factory import speech_file
from tests.test_web_security import GradioClient, file_data
from tests.web_fixtures import web_server

NOT_AUDIO = b"this is not audio\n" * 40


class Page(GradioClient):
    """The page's protocol (tests/test_web_security.py) with the language the page is in."""

    async def analyze_in(self, file: dict[str, Any], lang: str,
                         timeout: float) -> dict[str, Any]:
        config = (await self.http.get("/config")).json()
        dep = next(d for d in config["dependencies"] if d.get("api_name") == "analyze")
        session = uuid.uuid4().hex
        joined = await self.http.post("/gradio_api/queue/join", json={
            "data": [file, lang], "fn_index": dep["id"], "trigger_id": dep["targets"][0][0],
            "session_hash": session, "event_data": None})
        assert joined.status_code == 200, joined.text
        return await asyncio.wait_for(self._messages(session), timeout)

    async def _messages(self, session: str) -> dict[str, Any]:
        """The event's final message, with the toasts it sent before as ``toasts`` and its
        progress updates as ``progress`` (``(desc, fraction)`` each)."""
        toasts, progress = [], []
        async with self.http.stream("GET", "/gradio_api/queue/data",
                                    params={"session_hash": session},
                                    timeout=httpx.Timeout(30, read=None)) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "log":
                        toasts.append((message["level"], message["title"], message["log"]))
                    if message.get("msg") == "progress":
                        progress += [(unit["desc"], unit["progress"])
                                     for unit in message["progress_data"]]
                    if message.get("msg") == "process_completed":
                        return {**message, "toasts": toasts, "progress": progress}
        raise AssertionError("the event stream ended without a result")


@pytest.fixture(scope="module")
async def site(engine: InferenceEngine,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningWeb]:
    async with web_server(engine, tmp_path_factory.mktemp("events")) as (web, _):
        yield web


@pytest.fixture
async def page(site: RunningWeb) -> AsyncIterator[Page]:
    async with httpx.AsyncClient(base_url=site.url, timeout=60) as http:
        yield Page(http)


@pytest.mark.parametrize(("lang", "title", "message"), [
    ("en", "Not analysed", "That doesn't look like audio. Send a voice note or an audio file "
                           "(ogg, mp3, m4a, mp4, webm, wav, flac)."),
    ("zh", "未能分析", "这看起来不是音频。请发送语音消息或音频文件"
                       "（ogg、mp3、m4a、mp4、webm、wav、flac）。"),
])
async def test_a_refusal_is_one_info_line_and_a_titled_toast(
        page: Page, lang: str, title: str, message: str,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    path = await page.upload("notes.ogg", NOT_AUDIO)
    caplog.set_level(logging.INFO)
    capfd.readouterr()
    done = await page.analyze_in(file_data(path), lang, timeout=120)
    assert done["success"] is True, done
    status, result_box, *_ = done["output"]["data"]
    # The refusal stands where the result would be, and the result is hidden (#20.2).
    assert status["value"] == f"**{title}**: {message}"
    assert result_box["visible"] is False
    assert done["toasts"] == [("warning", title, message)]
    mine = [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "adapters.web.app"]
    assert mine == [("INFO", "web upload refused: not_audio")]
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("lang", "text", "voice", "stages"), [
    ("en", "We are meeting at three o'clock tomorrow.", "en",
     ["Analysing the recording…", "Checking the file…", "Decoding the audio…",
      "Waiting for the speech models…", "Transcribing…",
      "Reading the mood in the words and the voice…"]),
    ("zh", "Thank you very much for the flowers.", "en",
     ["正在分析录音…", "正在检查文件…", "正在解码音频…", "正在等待语音模型…", "正在转写…",
      "正在从话语和声音中识别情绪…"]),
])
async def test_progress_moves_with_the_real_stages(
        page: Page, tmp_path_factory: pytest.TempPathFactory, lang: str, text: str,
        voice: str, stages: list[str]) -> None:
    """Issue #20, item 7: the bar no longer sits at one figure for the whole run; it
    names the stage the note is in, in the page's language, and only moves forward."""
    clip = speech_file(tmp_path_factory.mktemp("progress"), text, "ogg")
    path = await page.upload("note.ogg", clip.read_bytes())
    done = await page.analyze_in(file_data(path), lang, timeout=240)
    assert done["success"] is True, done
    seen = [desc for desc, _ in done["progress"]]
    # Gradio sends the newest update every 10 ms, so a stage shorter than that may be
    # overwritten by the next one; the order never changes, and transcription (always
    # far longer than 10 ms) is always seen.
    assert seen and set(seen) <= set(stages), seen
    order = [stages.index(desc) for desc in seen]
    assert order == sorted(order), seen
    assert stages[4] in seen
    fractions = [fraction for _, fraction in done["progress"]]
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] < 1.0
