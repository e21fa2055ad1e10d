"""A fake Slack on 127.0.0.1: the Web API methods voicemood calls, private file downloads,
response_url posts, the files.uploadV2 upload URL and a Socket Mode WebSocket.

Every request is recorded, so tests can assert on exactly what the app sent. Web API calls
must carry ``Authorization: Bearer <bot token>`` (as Slack requires) or get ``invalid_auth``;
a private file fetched without the token gets Slack's sign-in page (HTML, status 200), which
is what real Slack does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-1111111111-2222222222-fakefakefakefakefakefake"
APP_TOKEN = "xapp-1-A0VOICE-3333333333-fakefakefakefakefakefake"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
TEAM_ID = "T0TEAM"


@dataclass
class Call:
    """One request the app made to the fake."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class FakeSlack:
    """The fake server. ``await start()``; ``api_base`` is the SLACK_API_BASE_URL to use."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.uploads: dict[str, bytes] = {}
        self.socket_acks: list[dict[str, Any]] = []
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._ws: web.WebSocketResponse | None = None
        self._ws_ready = asyncio.Event()
        self._failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        #: While set (and not yet released), file downloads wait for it.
        self.hold_downloads: asyncio.Event | None = None
        #: file_id -> URL: the download answers with a redirect there.
        self.redirects: dict[str, str] = {}
        #: file_id -> bytes to stream instead of the blob (made lazily: 200 MB cost nothing).
        self.streams: dict[str, int] = {}
        #: file_id -> what such a stream got to send before the reader hung up.
        self.streamed: dict[str, int] = {}
        self.url = ""

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> FakeSlack:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([
            web.route("*", "/api/{method}", self._api),
            web.get("/files-pri/{file_id}/{name}", self._download),
            web.get("/files-pri/{file_id}/download/{name}", self._download),
            web.post("/response/{name}", self._response_url),
            web.post("/upload/{file_id}", self._upload),
            web.get("/socket", self._socket),
        ])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        """Close the socket (if any) and the server."""
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        """The Web API base URL (ends with "/", as slack_sdk needs)."""
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        """A response_url that records what is posted to it under ``name``."""
        return f"{self.url}/response/{name}"

    # ------------------------------------------------------------------ test helpers

    def add_file(self, file_id: str, data: bytes, *, name: str, mimetype: str, filetype: str,
                 user: str, channel: str, ts: str, size: int | None = None,
                 subtype: str | None = None, duration_ms: int | None = None,
                 created: int | None = None) -> dict[str, Any]:
        """Register a file and return its full object (as files.info gives it)."""
        obj: dict[str, Any] = {
            "id": file_id, "created": created or int(time.time()), "timestamp": created,
            "name": name, "title": name, "mimetype": mimetype, "filetype": filetype,
            "user": user, "size": len(data) if size is None else size, "mode": "hosted",
            "is_external": False, "is_public": channel.startswith("C"),
            "url_private": f"{self.url}/files-pri/{file_id}/{name}",
            "url_private_download": f"{self.url}/files-pri/{file_id}/download/{name}",
            "channels": [channel] if channel.startswith("C") else [],
            "groups": [channel] if channel.startswith("G") else [],
            "ims": [channel] if channel.startswith("D") else [],
            "shares": {("public" if channel.startswith("C") else "private"): {
                channel: [{"ts": ts, "channel_name": "general", "team_id": TEAM_ID}]}},
        }
        if subtype:
            obj["subtype"] = subtype
        if duration_ms is not None:
            obj["duration_ms"] = duration_ms
        self.files[file_id] = obj
        self.blobs[file_id] = (data, mimetype)
        return dict(obj)

    def fail_next(self, method: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next call of ``method`` with ``status`` (and ``headers``), no body."""
        self._failures.setdefault(method, []).append((status, headers or {}))

    def calls_to(self, method: str) -> list[Call]:
        """Every recorded call of ``method`` (an API method, "download", "response", "upload")."""
        return [c for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        """The names of all calls, in order."""
        return [c.method for c in self.calls]

    async def wait_for(self, predicate: Callable[[], object], limit_s: float = 60.0,
                       what: str = "condition") -> None:
        """Poll ``predicate`` every 20 ms until it is truthy; fail after ``limit_s`` s."""
        deadline = time.monotonic() + limit_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; calls: {self.methods()}")
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ Web API

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.body_exists:
            if request.content_type == "application/json":
                params.update(await request.json())
            elif request.content_type in ("application/x-www-form-urlencoded",
                                          "multipart/form-data"):
                params.update({k: v for k, v in (await request.post()).items()
                               if isinstance(v, str)})
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params, dict(request.headers)))
        auth = request.headers.get("Authorization", "")
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if auth != f"Bearer {expected}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        failures = self._failures.get(method)
        if failures:
            status, headers = failures.pop(0)
            self.calls[-1].params["_failed"] = status
            return web.Response(status=status, headers=headers)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(params))

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "voicemood",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
                "is_enterprise_install": False}

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        file = self.files.get(str(p.get("file")))
        if file is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": file, "comments": [], "response_metadata": {}}

    def _m_files_list(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, user = p.get("channel"), p.get("user")
        found = []
        for f in self.files.values():
            where = f["channels"] + f["groups"] + f["ims"]
            if channel and channel not in where:
                continue
            if user and f["user"] != user:
                continue
            # files.list's objects are compact: no shares.
            found.append({k: v for k, v in f.items() if k != "shares"})
        found.sort(key=lambda f: f["created"], reverse=True)
        count = int(p.get("count") or 100)
        return {"ok": True, "files": found[:count],
                "paging": {"count": count, "total": len(found), "page": 1, "pages": 1}}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = self._next_ts()
        return {"ok": True, "channel": p.get("channel"), "ts": ts,
                "message": {"type": "message", "text": p.get("text"), "user": BOT_USER_ID,
                            "bot_id": BOT_ID, "ts": ts}}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": {"id": "D" + str(p.get("users"))}}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = f"FUP{next(self._ts)}"
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = json.loads(p.get("files") or "[]")
        missing = [f["id"] for f in files if f["id"] not in self.uploads]
        if missing:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.url.replace("http://", "ws://") + "/socket"}

    # ------------------------------------------------------------------ other endpoints

    async def _download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        self.calls.append(Call("download", {"file": file_id}, dict(request.headers)))
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.Response(text="<html><body>Sign in to Slack</body></html>",
                                content_type="text/html")
        if file_id in self.redirects:
            raise web.HTTPFound(self.redirects[file_id])
        if file_id not in self.blobs:
            return web.Response(status=404)
        if self.hold_downloads is not None:
            await self.hold_downloads.wait()
        data, mimetype = self.blobs[file_id]
        if file_id in self.streams:
            return await self._stream(request, file_id, mimetype)
        return web.Response(body=data, content_type=mimetype)

    async def _stream(self, request: web.Request, file_id: str,
                      mimetype: str) -> web.StreamResponse:
        # A small send buffer keeps "sent" close to "read by the app".
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        resp = web.StreamResponse(headers={"Content-Type": mimetype})
        await resp.prepare(request)
        chunk = b"\0" * (64 * 1024)
        self.streamed[file_id] = 0
        try:
            while self.streamed[file_id] < self.streams[file_id]:
                await resp.write(chunk)
                self.streamed[file_id] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the app hung up: that is the point
        return resp

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(Call("response", {"name": request.match_info["name"], **body},
                               dict(request.headers)))
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        self.uploads[file_id] = data
        self.calls.append(Call("upload", {"file": file_id}, dict(request.headers), data))
        return web.Response(text=f"OK - {len(data)}")

    # ------------------------------------------------------------------ Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.calls.append(Call("socket", {}, dict(request.headers)))
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0VOICE"}})
        self._ws_ready.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(msg.data))
        return ws

    async def socket_send(self, envelope: dict[str, Any], limit_s: float = 30.0) -> None:
        """Push one Socket Mode envelope to the connected app."""
        async with asyncio.timeout(limit_s):
            await self._ws_ready.wait()
        assert self._ws is not None
        await self._ws.send_json(envelope)
