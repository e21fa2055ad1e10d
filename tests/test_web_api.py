"""The JSON API over real HTTP against the running web server, and its start-up rules."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from adapters.web.app import RunningWeb
from adapters.web.auth import Access, WebAccessError
from adapters.web.texts import lang_from_header
from inference.engine import InferenceEngine
from tests.conftest import MODELS_DIR, make_settings
from tests.fake_telegram import FakeTelegram
from tests.test_cli import FORCED_OFFLINE, run_cli
from tests.web_fixtures import FORMATS, make_clips, post_audio, web_server

ALICE = ("alice", "wonderland")
BOB = ("bob", "builder")
TOKEN = "t0ken-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: What `voicemood analyze --json` prints for a file it analysed.
ANALYSIS_KEYS = {"file", "transcript", "language", "duration_s", "emotion", "models", "timings"}
#: `htpasswd -B` style entry for alice's password.
ALICE_BCRYPT = "alice:$2y$05$obD6qlVptCPvBpKYfX5ZteLvtArDZNEFdlHTBk0V22Vt0LSL1PPA2"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The spoken sentence in every format and the inputs of every error code, made once."""
    return make_clips(tmp_path_factory.mktemp("web_clips"))


@pytest.fixture(scope="module")
async def guarded(engine: InferenceEngine,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningWeb]:
    """Logins alice and bob, an API token, and small limits (2 MB, 20 s) to reach them."""
    async with web_server(engine, tmp_path_factory.mktemp("guarded"),
                          web_users=f"{ALICE[0]}:{ALICE[1]},{BOB[0]}:{BOB[1]}",
                          api_token=TOKEN, max_audio_bytes=2_000_000,
                          max_audio_seconds=20) as (web, _):
        yield web


@pytest.fixture
async def client(guarded: RunningWeb) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=guarded.url, timeout=120) as c:
        yield c


async def test_every_format_gives_the_cli_json(client: httpx.AsyncClient,
                                               clips: dict[str, bytes]) -> None:
    replies = await asyncio.gather(*(post_audio(client, f"note.{fmt}", clips[fmt],
                                                auth=ALICE) for fmt in FORMATS))
    for fmt, reply in zip(FORMATS, replies, strict=True):
        assert reply.status_code == 200, (fmt, reply.text)
        body = reply.json()
        assert set(body) == ANALYSIS_KEYS, fmt
        assert body["file"] == f"note.{fmt}"
        assert "great" in body["transcript"].lower(), (fmt, body["transcript"])
        assert body["language"] == "en"
        assert 2.0 < body["duration_s"] < 4.0
        assert set(body["emotion"]) == {"label", "confidence", "valence", "text", "voice"}
        assert body["emotion"]["text"]["label"] == "positive"
        assert body["timings"]["total"] > 0
        assert body["models"]["asr"].startswith("whisper-base")


ERRORS = {
    # case: (clip or None for none, HTTP status, error code)
    "empty": (b"", 400, "empty"),
    "text": ("text", 415, "not_audio"),
    "unsupported": ("unsupported", 415, "unsupported_codec"),
    "corrupt": ("corrupt", 422, "corrupt"),
    "long": ("long", 422, "too_long"),
    "silence": ("silence", 422, "silent"),
    "tone": ("tone", 422, "no_speech"),
    "large": (b"\0" * 2_100_000, 413, "too_large"),
}


@pytest.mark.parametrize("case", list(ERRORS))
async def test_each_error_code(case: str, client: httpx.AsyncClient,
                               clips: dict[str, bytes]) -> None:
    clip, status, code = ERRORS[case]
    data = clip if isinstance(clip, bytes) else clips[clip]
    reply = await post_audio(client, f"{case}.bin", data, headers=BEARER)
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    if status != 413:  # refused before the upload was read: no file name to echo
        assert body["file"] == f"{case}.bin"


async def test_chunked_body_over_the_limit_is_cut_off(guarded: RunningWeb) -> None:
    # A chunked body (no Content-Length) that passes the 2 MB limit and then never ends:
    # only a server that counts what arrives can answer before the body is complete.
    url = httpx.URL(guarded.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    boundary = "voicemoodboundary"

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    writer.write(f"POST /api/analyze HTTP/1.1\r\nHost: {url.host}\r\n"
                 f"Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n"
                 f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode())
    writer.write(chunk(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                       f"filename=\"big.ogg\"\r\n\r\n".encode()))
    for _ in range(48):  # 3 MB
        writer.write(chunk(b"\1" * 65536))
        await writer.drain()
    try:
        status = await asyncio.wait_for(reader.readline(), timeout=30)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 413 "), status
    assert b"application/json" in head


async def test_malformed_requests(client: httpx.AsyncClient) -> None:
    no_file = await client.post("/api/analyze", data={"note": "x"}, files={"other": b"x"},
                                headers=BEARER)
    assert no_file.status_code == 400 and no_file.json()["error"]["code"] == "bad_request"
    raw = await client.post("/api/analyze", content=b"OggS", headers=BEARER)
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "bad_request"
    for path in ("/api/history?limit=0", "/api/history?limit=lots", "/api/trend?days=forever",
                 "/api/trend?days=400", "/api/trend.png?days=0"):
        reply = await client.get(path, headers=BEARER)
        assert reply.status_code == 400, path
        assert reply.json()["error"]["code"] == "bad_request", path


async def test_wrong_method_and_unknown_route_answer_in_the_error_shape(
        client: httpx.AsyncClient) -> None:
    # Both used to fall through to the page: Gradio's 404 {"detail": "Not Found"}.
    wrong = await client.get("/api/analyze", headers=BEARER)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert wrong.json() == {"error": {"code": "method_not_allowed",
                                      "message": "/api/analyze takes POST, not GET"}}
    assert (await client.post("/api/history", headers=BEARER)).status_code == 405
    missing = await client.get("/api/moods", headers=BEARER)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message":
                                        "no API route /api/moods; the routes are /api/analyze, "
                                        "/api/history, /api/trend, /api/trend.png"}}


async def test_a_bad_period_is_explained_in_api_terms(client: httpx.AsyncClient) -> None:
    for days in ("forever", "400"):
        reply = await client.get(f"/api/trend?days={days}", headers=BEARER)
        assert reply.status_code == 400
        assert reply.json() == {"error": {"code": "bad_request", "message":
                                          "days must be a period of 1 to 365 days: a number "
                                          "of days (7), days (30d) or weeks (2w); got "
                                          f"'{days}'"}}


async def test_credentials(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"  # probes need no login
    for kwargs in ({}, {"headers": {"Authorization": "Bearer wrong"}},
                   {"auth": ("alice", "builder")}, {"auth": ("mallory", "wonderland")},
                   {"headers": {"Authorization": "Basic !!!"}}):
        reply = await client.get("/api/history", **kwargs)
        assert reply.status_code == 401, kwargs
        assert reply.json()["error"]["code"] == "unauthorized"
        assert "Bearer" in reply.headers["WWW-Authenticate"]
    refused = await post_audio(client, "n.ogg", b"OggS")
    assert refused.status_code == 401
    assert (await client.get("/api/history", headers=BEARER)).json()["user"] == "api"
    assert (await client.get("/api/history", auth=BOB)).json()["user"] == "bob"


async def test_each_user_sees_only_their_history(client: httpx.AsyncClient,
                                                 clips: dict[str, bytes]) -> None:
    before = len((await client.get("/api/history?limit=100", auth=BOB)).json()["items"])
    posted = await post_audio(client, "a.ogg", clips["ogg"], auth=BOB)
    assert posted.status_code == 200
    kept = await post_audio(client, "b.mp3", clips["mp3"], auth=BOB, params={"store": "false"})
    assert kept.status_code == 200 and "great" in kept.json()["transcript"].lower()
    bob = (await client.get("/api/history?limit=100", auth=BOB)).json()
    assert bob["user"] == "bob"
    assert len(bob["items"]) == before + 1  # store=false added nothing
    newest = bob["items"][0]
    assert set(newest) == ANALYSIS_KEYS - {"file"} | {"created_at"}
    assert "great" in newest["transcript"].lower()
    # Only bob posted through the token-less path here; the api user has none of his notes.
    api_items = (await client.get("/api/history?limit=100", headers=BEARER)).json()["items"]
    assert len(api_items) == 0
    api_trend = await client.get("/api/trend", headers=BEARER)
    assert api_trend.json()["notes"] == 0


async def test_trend_json_and_chart(client: httpx.AsyncClient, clips: dict[str, bytes]) -> None:
    for fmt in ("wav", "flac", "webm"):  # answered from the cache: fast
        assert (await post_audio(client, f"t.{fmt}", clips[fmt], auth=ALICE)).status_code == 200
    trend = (await client.get("/api/trend?days=30", auth=ALICE)).json()
    assert trend["days"] == 30 and len(trend["daily"]) == 30
    assert trend["notes"] >= 3
    assert set(trend["tag_shares"]) == {"positive", "negative", "neutral", "excited"}
    assert abs(sum(trend["tag_shares"].values()) - 1.0) < 0.01
    assert trend["text"].startswith("Your mood, last 30 days")
    zh = (await client.get("/api/trend?days=7&lang=zh", auth=ALICE)).json()
    assert "天" in zh["text"]
    png = await client.get("/api/trend.png?days=7", auth=ALICE)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    none = await client.get("/api/trend.png?days=7", headers=BEARER)
    assert none.status_code == 404 and none.json()["error"]["code"] == "no_chart"


async def test_open_server_serves_one_local_user(engine: InferenceEngine, tmp_path: Path,
                                                 clips: dict[str, bytes]) -> None:
    async with web_server(engine, tmp_path) as (web, _), \
            httpx.AsyncClient(base_url=web.url, timeout=120) as c:
        reply = await post_audio(c, "n.ogg", clips["ogg"])
        assert reply.status_code == 200
        history = (await c.get("/api/history")).json()
        assert history["user"] == "local" and len(history["items"]) == 1
        assert (await c.get("/")).status_code == 200  # the page, no login asked
        assert (await c.get("/config")).json()["title"] == "voicemood"
        for docs in ("/docs", "/redoc"):  # FastAPI's pages would load Swagger from a CDN
            assert "swagger" not in (await c.get(docs)).text.lower()


async def test_busy_engine_answers_503_with_retry_after(engine: InferenceEngine,
                                                        tmp_path: Path,
                                                        clips: dict[str, bytes]) -> None:
    async with web_server(engine, tmp_path, queue_size=1) as (web, _), \
            httpx.AsyncClient(base_url=web.url, timeout=120) as c:
        replies = await asyncio.gather(*(post_audio(c, f"n.{fmt}", clips[fmt])
                                         for fmt in ("ogg", "mp3", "m4a", "wav")))
    statuses = sorted(r.status_code for r in replies)
    assert statuses[0] == 200 and statuses[-1] == 503, [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 503:
            assert reply.json()["error"]["code"] == "busy"
            assert int(reply.headers["Retry-After"]) >= 1


def test_htpasswd_file_with_bcrypt(tmp_path: Path) -> None:
    users = tmp_path / "users.htpasswd"
    users.write_text(f"# voicemood logins\n{ALICE_BCRYPT}\n")
    access = Access.from_settings(make_settings(tmp_path, web_users=str(users),
                                                web_host="0.0.0.0"))
    assert access.check_password("alice", "wonderland")
    assert not access.check_password("alice", "Wonderland")
    assert not access.check_password("bob", "wonderland")
    users.write_text("carol:$apr1$abcdefgh$0123456789abcdefghijk/\n")
    with pytest.raises(WebAccessError, match="line 1: only bcrypt"):
        Access.from_settings(make_settings(tmp_path, web_users=str(users)))
    with pytest.raises(WebAccessError, match="no such file"):
        Access.from_settings(make_settings(tmp_path, web_users=str(tmp_path / "missing")))


@pytest.mark.parametrize("command", ["web", "serve"])
def test_refuses_public_address_without_logins(command: str, tmp_path: Path) -> None:
    out = run_cli([command], tmp_path, timeout=60, VOICEMOOD_WEB_HOST="0.0.0.0",
                  VOICEMOOD_WEB_PORT="6006")
    assert out.returncode == 2
    assert f"voicemood {command}: VOICEMOOD_WEB_HOST=0.0.0.0 is not a loopback" in out.stderr
    assert "VOICEMOOD_WEB_USERS" in out.stderr
    assert "Traceback" not in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def serving(tmp_path: Path, **env_extra: str) -> AsyncIterator[tuple[str, list[str]]]:
    """``voicemood serve`` as a real process; yields the page's address and stdout so far."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VOICEMOOD_", "TELEGRAM_", "SLACK_"))}
    env.update(FORCED_OFFLINE, VOICEMOOD_DB=str(tmp_path / "serve.db"),
               VOICEMOOD_MODELS_DIR=str(MODELS_DIR), VOICEMOOD_DEVICE="cpu", **env_extra)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("web page at" in line for line in lines):
            line = (await asyncio.wait_for(proc.stdout.readline(), 240)).decode()
            assert line, "serve exited:\n" + "".join(lines)
            lines.append(line)
        address = lines[-1].split("web page at", 1)[1].strip()
        yield address, lines
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serve_without_a_bot_runs_the_page(tmp_path: Path) -> None:
    port = _free_port()
    async with serving(tmp_path, VOICEMOOD_WEB_PORT=str(port)) as (address, lines):
        assert address == f"http://127.0.0.1:{port}/"
        notice = next(line for line in lines if "no bot configured" in line)
        assert "TELEGRAM_BOT_TOKEN" in notice and "SLACK_BOT_TOKEN" in notice
        async with httpx.AsyncClient(timeout=30) as c:
            assert (await c.get(address + "healthz")).json()["status"] == "ok"


async def test_serve_runs_a_bot_and_the_page_together(tmp_path: Path,
                                                      clips: dict[str, bytes]) -> None:
    telegram = FakeTelegram("123:ABC")
    await telegram.start()
    try:
        async with serving(tmp_path, TELEGRAM_BOT_TOKEN=telegram.token,
                           TELEGRAM_API_BASE_URL=telegram.api_base,
                           TELEGRAM_FILE_BASE_URL=telegram.file_base,
                           VOICEMOOD_WEB_PORT=str(_free_port())) as (address, lines):
            assert not any("no bot configured" in line for line in lines)
            await telegram.wait_for(lambda: telegram.calls_to("getUpdates"))  # the bot polls
            async with httpx.AsyncClient(timeout=120) as c:
                reply = await post_audio(c, "n.ogg", clips["ogg"], path=address + "api/analyze")
            assert reply.status_code == 200 and "great" in reply.json()["transcript"].lower()
    finally:
        await telegram.stop()


@pytest.mark.parametrize(("header", "lang"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("de-DE,de;q=0.9,zh-TW;q=0.5", "zh"),
    ("en;q=0.4,zh;q=0.6", "zh"),
    ("de-DE", "en"),
    ("", "en"),
])
def test_page_language_from_the_browser(header: str, lang: str) -> None:
    assert lang_from_header(header) == lang
