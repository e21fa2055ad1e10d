"""The guards of a note's download (adapters/download.py, adapters/slack/files.py) against
a real HTTP server on 127.0.0.1: Slack's sign-in page is not taken for the file, and a
transfer that stalls ends at its deadline instead of holding the note forever.

The server is owned by a fixture: its stalled handlers are released and it is shut down at
teardown, whatever the test did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from adapters.download import fetch_limited
from adapters.slack.files import download_file
from bot.core.intake import DownloadFailed

TOKEN = "xoxb-download-guard-test-token"
#: Stands in for an OGG file: only the bytes matter to the download.
AUDIO = b"OggS" + bytes(range(256)) * 8
SIGN_IN_PAGE = b"<!DOCTYPE html><html><body>Sign in to your workspace</body></html>"
#: Longest any single test here may wait for the code under test: a download that does not
#: end by then (a deadline that is gone) fails the test rather than hanging it.
GUARD_S = 15.0


@dataclass
class FileHost:
    """The running server: its base URL, what it was asked, and the stalled handlers."""

    url: str
    #: ``(path, Authorization header)`` of every request, in order.
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    #: Set once a stalling handler has started to stall.
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set at teardown: stalled handlers return.
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def host() -> AsyncIterator[FileHost]:
    """A file host on a free loopback port: an audio file, Slack's sign-in page (status 200,
    as Slack sends it when it won't authorise), and two transfers that stall."""
    state = FileHost(url="")

    async def record(request: web.Request) -> None:
        state.requests.append((request.path, request.headers.get("Authorization")))

    async def audio(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=AUDIO, content_type="audio/ogg")

    async def sign_in(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=SIGN_IN_PAGE, content_type="text/html", charset="utf-8")

    async def no_headers(request: web.Request) -> web.Response:
        await record(request)
        state.stalled.set()
        await state.release.wait()  # never answers while the test runs
        return web.Response(body=AUDIO, content_type="audio/ogg")

    async def half_body(request: web.Request) -> web.StreamResponse:
        await record(request)
        resp = web.StreamResponse(headers={"Content-Type": "audio/ogg"})
        resp.content_length = len(AUDIO)
        await resp.prepare(request)
        await resp.write(AUDIO[:100])
        state.stalled.set()
        await state.release.wait()  # the rest never comes while the test runs
        return resp

    app = web.Application()
    app.router.add_get("/files/clip.ogg", audio)
    app.router.add_get("/files/sign-in", sign_in)
    app.router.add_get("/files/no-headers", no_headers)
    app.router.add_get("/files/half-body", half_body)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield state
    finally:
        state.release.set()  # stalled handlers end, so shutting down does not wait on them
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_slack_download_takes_the_file_but_refuses_the_sign_in_page(
        host: FileHost, session: aiohttp.ClientSession) -> None:
    api_base = f"{host.url}/api/"  # the token may go to the API base's origin
    async with asyncio.timeout(GUARD_S):
        got = await download_file(session, f"{host.url}/files/clip.ogg", TOKEN,
                                  api_base_url=api_base, max_bytes=1_000_000)
        assert got == AUDIO
        with pytest.raises(DownloadFailed) as refused:
            await download_file(session, f"{host.url}/files/sign-in", TOKEN,
                                api_base_url=api_base, max_bytes=1_000_000)
    assert str(refused.value) == "got an HTML page instead of the file"
    # Both requests carried the token: the page came although the request was authorised.
    assert host.requests == [("/files/clip.ogg", f"Bearer {TOKEN}"),
                             ("/files/sign-in", f"Bearer {TOKEN}")]


async def test_html_is_refused_only_where_the_caller_asks(
        host: FileHost, session: aiohttp.ClientSession) -> None:
    url = f"{host.url}/files/sign-in"
    async with asyncio.timeout(GUARD_S):
        with pytest.raises(DownloadFailed, match="HTML page"):
            await fetch_limited(session, url, max_bytes=1_000_000, reject_html=True)
        # Telegram's file host is not Slack: there the bytes are whatever was sent.
        assert await fetch_limited(session, url, max_bytes=1_000_000) == SIGN_IN_PAGE


@pytest.mark.parametrize("path", ["/files/no-headers", "/files/half-body"])
async def test_a_stalled_transfer_ends_at_its_deadline(
        host: FileHost, session: aiohttp.ClientSession, path: str) -> None:
    url = f"{host.url}{path}?token={TOKEN}"
    # The outer guard is far beyond the deadline: without the deadline the download would
    # wait for the server forever and the guard's TimeoutError (not DownloadFailed) fails
    # this test.
    async with asyncio.timeout(GUARD_S):
        with pytest.raises(DownloadFailed) as failed:
            await fetch_limited(session, url, max_bytes=1_000_000, timeout_s=0.5)
    assert host.stalled.is_set()  # it was the server's silence that the deadline ended
    assert str(failed.value) == "TimeoutError"  # no URL, no token in the error
