"""The page's analyze event opens only what this page's upload route stored (issue 18, item 1).

Gradio names an event's input file by a server path (a ``FileData``), and the client sends
that path back in ``queue/join``. Mounted with ``mount_gradio_app``, Gradio's "is this in my
upload folder" check was skipped, so a logged-in user who sent a path that was never
uploaded got that server file transcribed, stored in their history and deleted; ``/dev/zero``
wedged the whole server (hashed on the event loop, SIGTERM ignored).

The server here is ``voicemood web`` as a real process (a wedged server must not take the
test run with it), spoken to over raw HTTP the way a hand-written client would: log in,
read ``/config``, upload, ``queue/join``, read the event stream. The handler's own check
(:func:`adapters.web.app._read_upload`) is tested directly below, since Gradio's check
stands in front of it on the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.web.app import NotUploaded, _read_upload
from inference.errors import TooLarge
from tests.audio_factory import speech_file
from tests.conftest import MODELS_DIR
from tests.test_cli import FORCED_OFFLINE

ALICE = ("alice", "wonderland")
#: Seconds for the server to load its models and answer.
START_S = 240.0
#: Seconds for one analysis of a short clip on a loaded 2-core machine.
ANALYSIS_S = 90.0
#: A refusal involves no decoding and no model: this is generous, and far below what
#: reading /dev/zero (forever) or a large file whole would take.
REFUSAL_S = 15.0
#: The liveness probe while or after a refusal.
HEALTH_S = 5.0


@dataclass
class Page:
    """A running ``voicemood web`` process and what the tests need to know about it."""

    url: str
    folder: Path  # the server's working directory (relative paths resolve from here)
    uploads: Path  # Gradio's upload folder (GRADIO_TEMP_DIR)
    victim: Path  # a real recording on the server, outside the upload folder
    victim_bytes: bytes
    proc: asyncio.subprocess.Process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
async def page(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Page]:
    """``voicemood web`` with one login, in its own process; killed if SIGTERM is ignored."""
    folder = tmp_path_factory.mktemp("web_security")
    uploads = folder / "gradio-uploads"
    victim = speech_file(folder, "This is a private recording on the server.", "ogg",
                         name="victim")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VOICEMOOD_", "TELEGRAM_", "SLACK_", "GRADIO_"))}
    env.update(FORCED_OFFLINE, VOICEMOOD_DB=str(folder / "web.db"),
               VOICEMOOD_MODELS_DIR=str(MODELS_DIR), VOICEMOOD_DEVICE="cpu",
               VOICEMOOD_WEB_HOST="127.0.0.1", VOICEMOOD_WEB_PORT=str(_free_port()),
               VOICEMOOD_WEB_USERS=f"{ALICE[0]}:{ALICE[1]}", GRADIO_TEMP_DIR=str(uploads))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "web", cwd=folder, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("web page at" in line for line in lines):
            line = (await asyncio.wait_for(proc.stdout.readline(), START_S)).decode()
            assert line, "voicemood web exited:\n" + "".join(lines)
            lines.append(line)
        url = lines[-1].split("web page at", 1)[1].strip()
        # Drain the output, so a chatty server never blocks on a full pipe.
        drain = asyncio.create_task(proc.stdout.read())
        yield Page(url, folder, uploads, victim, victim.read_bytes(), proc)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        await drain
    finally:
        if proc.returncode is None:  # a wedged server ignores SIGTERM
            proc.kill()
            await proc.wait()


@pytest.fixture
async def alice(page: Page) -> AsyncIterator[GradioClient]:
    """A logged-in client of the page, as a browser would be after the login form."""
    async with httpx.AsyncClient(base_url=page.url, timeout=30) as http:
        client = GradioClient(http)
        await client.login(*ALICE)
        yield client


class GradioClient:
    """Gradio 6's browser protocol by hand: login, config, upload, queue/join, queue/data."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def login(self, user: str, password: str) -> None:
        reply = await self.http.post("/login", data={"username": user, "password": password})
        assert reply.status_code == 200, reply.text

    async def upload(self, name: str, data: bytes) -> str:
        """The server path Gradio's upload route gives the file."""
        reply = await self.http.post("/gradio_api/upload", files={"files": (name, data)})
        assert reply.status_code == 200, reply.text
        return str(reply.json()[0])

    async def analyze(self, file: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run the ``analyze`` event on ``file`` (a FileData) -> Gradio's final message."""
        config = (await self.http.get("/config")).json()
        dep = next(d for d in config["dependencies"] if d.get("api_name") == "analyze")
        session = uuid.uuid4().hex
        joined = await self.http.post("/gradio_api/queue/join", json={
            "data": [file, "en"], "fn_index": dep["id"], "trigger_id": dep["targets"][0][0],
            "session_hash": session, "event_data": None})
        assert joined.status_code == 200, joined.text
        return await asyncio.wait_for(self._completed(session), timeout)

    async def _completed(self, session: str) -> dict[str, Any]:
        async with self.http.stream("GET", "/gradio_api/queue/data",
                                    params={"session_hash": session},
                                    timeout=httpx.Timeout(30, read=None)) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return dict(message)
        raise AssertionError("the event stream ended without a result")

    async def call(self, api_name: str, data: list[Any], timeout: float) -> tuple[str, str]:
        """Gradio's REST-style route (what gradio_client uses) -> (last event, its data)."""
        started = await self.http.post(f"/gradio_api/call/{api_name}", json={"data": data})
        assert started.status_code == 200, started.text
        event_id = started.json()["event_id"]
        return await asyncio.wait_for(self._call_result(api_name, event_id), timeout)

    async def _call_result(self, api_name: str, event_id: str) -> tuple[str, str]:
        event = ""
        async with self.http.stream("GET", f"/gradio_api/call/{api_name}/{event_id}",
                                    timeout=httpx.Timeout(30, read=None)) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    return event, line[5:].strip()
        raise AssertionError("the event stream ended without a result")

    async def history(self) -> list[dict[str, Any]]:
        reply = await self.http.get("/api/history?limit=100", auth=ALICE)
        assert reply.status_code == 200, reply.text
        return list(reply.json()["items"])


def file_data(path: str, *, meta: bool = True) -> dict[str, Any]:
    """A FileData as the page sends it for the clip ``path``."""
    data: dict[str, Any] = {"path": path, "orig_name": Path(path).name or "note.ogg"}
    if meta:
        data["meta"] = {"_type": "gradio.FileData"}
    return data


async def assert_responsive(page: Page) -> None:
    """The server still answers others at once."""
    async with httpx.AsyncClient(timeout=HEALTH_S) as http:
        reply = await http.get(page.url + "healthz")
    assert reply.status_code == 200


def copies_in(folder: Path, data: bytes) -> list[Path]:
    """Files under ``folder`` holding exactly ``data``."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*") if p.is_file() and p.read_bytes() == data]


async def test_an_upload_is_analysed(page: Page, alice: GradioClient, tmp_path: Path) -> None:
    # The control: the same client, doing what the page does, is answered, so a refusal
    # below is the check at work and not a protocol mistake.
    clip = speech_file(tmp_path, "I feel great about the new project.", "ogg").read_bytes()
    before = len(await alice.history())
    path = await alice.upload("note.ogg", clip)
    result = await alice.analyze(file_data(path), ANALYSIS_S)
    assert result["success"], result
    # Outputs: status, result area, tag, readings, transcript, ...
    assert "great" in result["output"]["data"][4].lower()
    assert len(await alice.history()) == before + 1
    assert not Path(path).exists()  # read, then deleted


@pytest.mark.parametrize("how", ["absolute", "relative", "without_meta"])
async def test_a_server_path_never_uploaded_is_refused(how: str, page: Page,
                                                      alice: GradioClient) -> None:
    # Before the fix the recording came back transcribed, went into alice's history, and
    # the file was deleted from the server.
    path = {"absolute": str(page.victim), "relative": page.victim.name,
            "without_meta": str(page.victim)}[how]
    before = await alice.history()
    cached = copies_in(page.uploads, page.victim_bytes)
    started = time.monotonic()
    result = await alice.analyze(file_data(path, meta=how != "without_meta"), REFUSAL_S)
    assert time.monotonic() - started < REFUSAL_S
    assert result["success"] is False, result
    assert "private" not in json.dumps(result).lower()
    assert await alice.history() == before
    assert page.victim.read_bytes() == page.victim_bytes  # neither deleted nor changed
    # Not copied into Gradio's cache either, where /gradio_api/file= would serve it.
    assert copies_in(page.uploads, page.victim_bytes) == cached == []
    await assert_responsive(page)


async def test_the_call_route_refuses_a_server_path_too(page: Page,
                                                       alice: GradioClient) -> None:
    # /gradio_api/call/analyze (gradio_client's route) runs the same event through the
    # same queue: the check holds there as well.
    before = await alice.history()
    event, data = await alice.call("analyze", [file_data(str(page.victim)), "en"], REFUSAL_S)
    assert event == "error", (event, data)
    assert "private" not in data.lower()
    assert await alice.history() == before
    assert page.victim.read_bytes() == page.victim_bytes
    assert copies_in(page.uploads, page.victim_bytes) == []


async def test_the_refusal_does_not_tell_whether_a_file_exists(page: Page,
                                                             alice: GradioClient) -> None:
    # The answer for a file that exists and one that does not is the same, so the event
    # cannot be used to map the server's files either.
    answers = []
    for path in (str(page.victim), str(page.folder / "no-such-file.ogg")):
        result = await alice.analyze(file_data(path), REFUSAL_S)
        answers.append({k: v for k, v in result.items() if k != "event_id"})
    assert answers[0] == answers[1]
    assert answers[0]["success"] is False


async def test_dev_zero_is_refused_and_the_server_stays_up(page: Page,
                                                           alice: GradioClient) -> None:
    # Before the fix Gradio hashed /dev/zero on the event loop: no answer, no /healthz,
    # and SIGTERM ignored, for good. The timeout turns that into a failure, not a hang.
    before = await alice.history()
    result = await alice.analyze(file_data("/dev/zero"), REFUSAL_S)
    assert result["success"] is False, result
    await assert_responsive(page)
    assert await alice.history() == before


# --- the handler's own check, below Gradio's -----------------------------------------------

@pytest.fixture
def upload_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Gradio's upload folder for this test (Gradio reads GRADIO_TEMP_DIR on every call)."""
    folder = tmp_path / "uploads"
    (folder / "abc123").mkdir(parents=True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_read_upload_takes_an_upload_and_deletes_it(upload_folder: Path) -> None:
    clip = upload_folder / "abc123" / "note.ogg"
    clip.write_bytes(b"OggS" + bytes(100))
    assert _read_upload(str(clip), {str(clip)}, 1000) == b"OggS" + bytes(100)
    assert not clip.exists()


def test_read_upload_refuses_what_no_upload_wrote(upload_folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.ogg"
    outside.write_bytes(b"secret")
    stray = upload_folder / "abc123" / "cached.ogg"  # in the folder, but not an upload
    stray.write_bytes(b"cached")
    link = upload_folder / "abc123" / "link.ogg"  # an "upload" that leads outside
    link.symlink_to(outside)
    fifo = upload_folder / "abc123" / "pipe.ogg"  # would block a plain open() for good
    os.mkfifo(fifo)
    for path, uploaded in [(str(outside), {str(outside)}), (str(stray), set()),
                           ("/dev/zero", {"/dev/zero"}), (str(link), {str(link)}),
                           (str(fifo), {str(fifo)}),
                           (str(upload_folder / "abc123" / ".." / ".." / "secret.ogg"),
                            {str(upload_folder / "abc123" / ".." / ".." / "secret.ogg")})]:
        with pytest.raises(NotUploaded):
            _read_upload(path, uploaded, 1000)
    assert outside.read_bytes() == b"secret" and stray.read_bytes() == b"cached"
    assert link.is_symlink()


def test_read_upload_bounds_the_size_before_reading(upload_folder: Path) -> None:
    # A sparse terabyte: read whole, it would take the machine's memory and minutes.
    huge = upload_folder / "abc123" / "huge.ogg"
    with huge.open("wb") as fh:
        fh.truncate(10**12)
    started = time.monotonic()
    with pytest.raises(TooLarge) as caught:
        _read_upload(str(huge), {str(huge)}, 50 * 1024 * 1024)
    assert time.monotonic() - started < 1.0
    # The size in the one wording of every refusal (#20.12), not "1000000.0 MB; ... 52.4 MB".
    assert caught.value.message == "The file is 931.3 GB; the limit is 50 MB."
    assert not huge.exists()
