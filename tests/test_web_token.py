"""``VOICEMOOD_API_TOKEN`` on the open web server (no ``VOICEMOOD_WEB_USERS``): once a token
is set, every ``/api/...`` route asks for it, even on loopback (docs/api.md,
"Authentication"). A real server on a free loopback port over a fresh database, owned by
the ``web_server`` context manager of tests/web_fixtures.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from inference.engine import InferenceEngine
from tests.web_fixtures import post_audio, web_server

TOKEN = "open-server-t0ken"
#: Every API route that reads or writes someone's history.
API_READS = ["/api/history", "/api/trend", "/api/trend.png"]
WRONG = [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Bearer {TOKEN}x"},
         {"Authorization": "Basic bG9jYWw6bG9jYWw="}]  # local:local as HTTP Basic


async def test_with_a_token_the_open_server_asks_every_caller_for_it(
        engine: InferenceEngine, tmp_path: Path) -> None:
    async with web_server(engine, tmp_path, api_token=TOKEN) as (web, service), \
            httpx.AsyncClient(base_url=web.url, timeout=60) as c:
        for path in API_READS:
            for headers in WRONG:
                reply = await c.get(path, headers=headers)
                assert reply.status_code == 401, (path, headers)
                assert reply.json()["error"]["code"] == "unauthorized", (path, headers)
                # Only the bearer scheme is offered: there are no logins to ask for.
                assert reply.headers["WWW-Authenticate"] == 'Bearer realm="voicemood"'
        refused = await post_audio(c, "n.ogg", b"OggS" + bytes(4000))
        assert refused.status_code == 401
        assert await service.count("web", "local") == 0  # nothing analysed, nothing stored

        good = {"Authorization": f"Bearer {TOKEN}"}
        history = await c.get("/api/history", headers=good)
        assert history.status_code == 200
        assert history.json() == {"user": "local", "items": []}  # the one local user
        assert (await c.get("/api/trend", headers=good)).json()["notes"] == 0
        assert (await c.get("/healthz")).status_code == 200  # probes need no token


async def test_without_a_token_the_open_server_needs_no_credentials(
        engine: InferenceEngine, tmp_path: Path) -> None:
    # The other side of the test above: there the 401s come from the token alone.
    async with web_server(engine, tmp_path) as (web, _), \
            httpx.AsyncClient(base_url=web.url, timeout=60) as c:
        assert (await c.get("/api/history")).json() == {"user": "local", "items": []}
        assert (await c.get("/api/trend")).json()["notes"] == 0
        # No notes yet: no chart, but not a refusal either.
        assert (await c.get("/api/trend.png")).status_code == 404


@pytest.mark.parametrize("token", ["  ", ""])
async def test_a_blank_token_is_no_token(engine: InferenceEngine, tmp_path: Path,
                                         token: str) -> None:
    # VOICEMOOD_API_TOKEN= in .env is unset, not a token anyone may send.
    async with web_server(engine, tmp_path, api_token=token) as (web, _), \
            httpx.AsyncClient(base_url=web.url, timeout=60) as c:
        assert (await c.get("/api/history")).json()["user"] == "local"
