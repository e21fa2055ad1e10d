"""A small fake of the Telegram Bot API on 127.0.0.1, for driving the real Application.

python-telegram-bot talks to it through ``base_url`` / ``base_file_url``
(``http://127.0.0.1:PORT/bot`` and ``http://127.0.0.1:PORT/file/bot``; the library appends
the token). It records every call, serves files registered with :meth:`add_file`, long-polls
``getUpdates`` on updates queued with :meth:`push`, and can be told to fail a method once
(for example with a 429) via :meth:`fail_next`.

Requests arrive as form posts whose non-string values are JSON-encoded (``chat_id`` comes
as ``"42"``); :meth:`FakeTelegram.calls_to` gives them back decoded.
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

from aiohttp import web

#: Parameters that are sent as plain strings and must not be JSON-decoded.
_STRING_PARAMS = frozenset({
    "text", "caption", "action", "parse_mode", "callback_query_id", "file_id", "url",
    "secret_token", "language_code", "description", "short_description", "name",
})

BOT_USER = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "voicemood",
    "username": "voicemood_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": True,
    "supports_inline_queries": False,
}


@dataclass
class Call:
    """One request the bot made."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    files: dict[str, bytes] = field(default_factory=dict)
    result: Any = None  # what the fake answered (the sent Message for sendMessage)


@dataclass
class FakeFile:
    """A file the fake hands out through getFile and the file download URL."""

    file_id: str
    data: bytes
    path: str
    too_big: bool = False  # getFile answers "file is too big" like the real Bot API
    local_path: str | None = None  # a self-hosted server in --local mode: absolute path
    #: Instead of ``data``: stream this many bytes, made as they are sent (a lying server).
    stream_bytes: int = 0
    #: What the stream got to send before the reader hung up.
    streamed: int = 0


class FakeTelegram:
    """The fake Bot API server. ``await start()``, use, ``await stop()``."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.downloads: list[tuple[str, float]] = []
        self.files: dict[str, FakeFile] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        #: Chats the bot may not write to (users who never pressed Start).
        self.forbidden_chats: set[int] = set()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100_000)
        self._file_ids = itertools.count(1)
        self._new_update = asyncio.Condition()
        self._failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._changed = asyncio.Event()
        #: While set (and not yet released), file downloads wait for it.
        self.hold_downloads: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base(self) -> str:
        """Value for ``TELEGRAM_API_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_base(self) -> str:
        """Value for ``TELEGRAM_FILE_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- test set-up --------------------------------------------------------------------

    def add_file(self, data: bytes, *, suffix: str = "oga", folder: str = "voice",
                 too_big: bool = False, local_path: str | None = None) -> str:
        """Register a downloadable file; returns its file_id.

        With ``local_path`` getFile answers that absolute path instead, as a self-hosted
        Bot API server in ``--local`` mode does (the bot reads the file from disk).
        """
        n = next(self._file_ids)
        file_id = f"FILE{n:04d}"
        self.files[file_id] = FakeFile(file_id, data, f"{folder}/file_{n}.{suffix}", too_big,
                                       local_path)
        return file_id

    def add_stream(self, declared_size: int, stream_bytes: int) -> str:
        """A file getFile announces as ``declared_size`` bytes whose download streams
        ``stream_bytes`` (made lazily, so 200 MB cost no memory); returns its file_id."""
        file_id = self.add_file(b"\0" * declared_size)
        self.files[file_id].stream_bytes = stream_bytes
        return file_id

    def push(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates (``update_id`` is filled in); returns its id."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        for key in ("message", "callback_query"):
            if key in update:
                msg = update[key] if key == "message" else update[key].get("message")
                if msg:
                    self.chats[msg["chat"]["id"]] = msg["chat"]
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update["update_id"]

    async def _notify(self) -> None:
        async with self._new_update:
            self._new_update.notify_all()

    def fail_next(self, method: str, status: int, body: dict[str, Any], times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status`` and ``body``."""
        self._failures.setdefault(method, []).extend([(status, body)] * times)

    def pending_updates(self) -> int:
        """Updates queued but not yet confirmed by the bot (via the getUpdates offset)."""
        return len(self._updates)

    # -- assertions -------------------------------------------------------------------------

    def calls_to(self, method: str, **match: Any) -> list[Call]:
        """Recorded calls of ``method`` whose params include ``match``."""
        return [c for c in self.calls if c.method == method
                and all(c.params.get(k) == v for k, v in match.items())]

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """sendMessage / sendPhoto / editMessageText calls that succeeded, in order."""
        out = []
        for c in self.calls:
            if c.method not in ("sendMessage", "sendPhoto", "editMessageText"):
                continue
            if c.params.get("_failed"):
                continue
            if chat_id is None or c.params.get("chat_id") == chat_id:
                out.append(c)
        return out

    async def wait_for(self, predicate: Callable[[], Any], within: float = 60.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after every call); return it."""
        deadline = time.monotonic() + within
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                summary = [(c.method, {k: v for k, v in c.params.items() if k != "photo"})
                           for c in self.calls if c.method != "getUpdates"]
                raise AssertionError(f"timed out; calls so far: {summary}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                pass

    # -- the API --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
            return params, files
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    params.setdefault("_filenames", {})[key] = value.filename
                else:
                    params[key] = value
        for key, value in list(params.items()):
            if key not in _STRING_PARAMS and isinstance(value, str):
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    pass
        return params, files

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await self._params(request)
        call = Call(method, params, files=files)
        self.calls.append(call)  # on arrival: a long poll cut short by the bot still counts
        failures = self._failures.get(method)
        if failures:
            status, body = failures.pop(0)
            params["_failed"] = True
            self._changed.set()
            return web.json_response(body, status=status)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            self._changed.set()
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found: method not found"}, status=404)
        try:
            result = await handler(params, files)
        except _ApiError as err:
            params["_failed"] = True
            self._changed.set()
            return web.json_response({"ok": False, "error_code": err.code,
                                      "description": err.description}, status=err.code)
        call.result = result
        self._changed.set()
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for f in self.files.values():
            if f.path == path:
                self.downloads.append((path, time.monotonic()))
                self._changed.set()
                if self.hold_downloads is not None:
                    await self.hold_downloads.wait()
                if f.stream_bytes:
                    return await self._stream(request, f)
                return web.Response(body=f.data, content_type="application/octet-stream")
        return web.Response(status=404)

    async def _stream(self, request: web.Request, f: FakeFile) -> web.StreamResponse:
        # A small send buffer keeps "sent" close to "read by the bot".
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        chunk = b"\0" * (64 * 1024)
        try:
            while f.streamed < f.stream_bytes:
                await resp.write(chunk)
                f.streamed += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the bot hung up: that is the point
        self._changed.set()
        return resp

    # methods, named _m_<method>

    async def _m_getMe(self, params: dict, files: dict) -> dict:
        return BOT_USER

    async def _m_deleteWebhook(self, params: dict, files: dict) -> bool:
        return True

    async def _m_setWebhook(self, params: dict, files: dict) -> bool:
        return True

    async def _m_setMyCommands(self, params: dict, files: dict) -> bool:
        return True

    async def _m_getUpdates(self, params: dict, files: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        # The offset confirms every update before it, as with the real Bot API.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self._updates and timeout > 0:
            # Long-poll, but briefly: the bot must not spin, and tests must not wait.
            async with self._new_update:
                try:
                    await asyncio.wait_for(self._new_update.wait(), min(timeout, 0.5))
                except TimeoutError:
                    pass
        limit = int(params.get("limit") or 100)
        return self._updates[:limit]

    def _message(self, chat_id: int, **extra: Any) -> dict[str, Any]:
        if chat_id in self.forbidden_chats:
            raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        chat = self.chats.get(chat_id) or {"id": chat_id, "type": "private",
                                           "first_name": f"user{chat_id}"}
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": chat, "from": BOT_USER, **extra}

    async def _m_sendMessage(self, params: dict, files: dict) -> dict:
        return self._message(params["chat_id"], text=params.get("text", ""))

    async def _m_sendPhoto(self, params: dict, files: dict) -> dict:
        photo = [{"file_id": "PHOTO", "file_unique_id": "PHOTO", "width": 800, "height": 400}]
        return self._message(params["chat_id"], photo=photo, caption=params.get("caption", ""))

    async def _m_sendDocument(self, params: dict, files: dict) -> dict:
        name = params.get("_filenames", {}).get("document", "document")
        doc = {"file_id": "DOC", "file_unique_id": "DOC", "file_name": name,
               "file_size": len(files.get("document", b""))}
        return self._message(params["chat_id"], document=doc, caption=params.get("caption", ""))

    async def _m_editMessageText(self, params: dict, files: dict) -> dict:
        msg = self._message(params["chat_id"], text=params.get("text", ""))
        msg["message_id"] = params["message_id"]
        return msg

    async def _m_deleteMessage(self, params: dict, files: dict) -> bool:
        return True

    async def _m_sendChatAction(self, params: dict, files: dict) -> bool:
        return True

    async def _m_answerCallbackQuery(self, params: dict, files: dict) -> bool:
        return True

    async def _m_getFile(self, params: dict, files: dict) -> dict:
        f = self.files.get(params.get("file_id", ""))
        if f is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if f.too_big:
            raise _ApiError(400, "Bad Request: file is too big")
        return {"file_id": f.file_id, "file_unique_id": f"U{f.file_id}",
                "file_size": len(f.data), "file_path": f.local_path or f.path}


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


# -- update builders ------------------------------------------------------------------------

_ids = itertools.count(1)


def user(uid: int, name: str = "", lang: str = "en") -> dict[str, Any]:
    """A Telegram user."""
    return {"id": uid, "is_bot": False, "first_name": name or f"user{uid}",
            "language_code": lang}


def private_chat(u: dict[str, Any]) -> dict[str, Any]:
    """The private chat with user ``u``."""
    return {"id": u["id"], "type": "private", "first_name": u["first_name"]}


def group_chat(chat_id: int = -100123456, title: str = "friends") -> dict[str, Any]:
    """A supergroup."""
    return {"id": chat_id, "type": "supergroup", "title": title}


def message(u: dict[str, Any], chat: dict[str, Any] | None = None, *,
            message_id: int | None = None, **content: Any) -> dict[str, Any]:
    """An update carrying a message from ``u`` (in their private chat unless ``chat``)."""
    msg = {"message_id": message_id or next(_ids), "date": int(time.time()),
           "chat": chat or private_chat(u), "from": u, **content}
    return {"message": msg}


def command(u: dict[str, Any], text: str, chat: dict[str, Any] | None = None) -> dict[str, Any]:
    """An update with a bot command (``/history 3``)."""
    name = text.split()[0]
    return message(u, chat, text=text,
                   entities=[{"type": "bot_command", "offset": 0, "length": len(name)}])


def callback(u: dict[str, Any], data: str, on_message: dict[str, Any]) -> dict[str, Any]:
    """A button press by ``u`` on the bot's message ``on_message``."""
    return {"callback_query": {"id": f"cq{next(_ids)}", "from": u, "chat_instance": "ci",
                               "data": data, "message": on_message}}


def voice(file_id: str, size: int, duration: int = 3) -> dict[str, Any]:
    """Message content: a voice note."""
    return {"voice": {"file_id": file_id, "file_unique_id": f"U{file_id}", "duration": duration,
                      "mime_type": "audio/ogg", "file_size": size}}


def audio(file_id: str, size: int, duration: int = 3, mime: str = "audio/mpeg",
          name: str = "song.mp3") -> dict[str, Any]:
    """Message content: an audio file."""
    return {"audio": {"file_id": file_id, "file_unique_id": f"U{file_id}", "duration": duration,
                      "mime_type": mime, "file_name": name, "file_size": size}}


def video_note(file_id: str, size: int, duration: int = 3) -> dict[str, Any]:
    """Message content: a round video note."""
    return {"video_note": {"file_id": file_id, "file_unique_id": f"U{file_id}", "length": 240,
                           "duration": duration, "file_size": size}}


def document(file_id: str, size: int, mime: str | None, name: str) -> dict[str, Any]:
    """Message content: a document (file sent "as file")."""
    doc: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"U{file_id}",
                           "file_name": name, "file_size": size}
    if mime:
        doc["mime_type"] = mime
    return {"document": doc}
