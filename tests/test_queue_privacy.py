"""What crosses Redis in scale-out mode is the minimum, and nothing stays there.

A note crosses as one task message (the audio, base64) and comes back as one result, sealed
to the front end's reply key: the front end needs the transcript for its reply, also for a
person with ``/privacy transcripts off``, but no word of it is readable in Redis. Everything
else is gone: Celery's task events (``task-succeeded`` carried the result, i.e. the
transcript, to any subscriber such as Flower) are off, the result key is deleted as soon as
the front end has read it, and a result nobody reads expires within minutes, not an hour.

Real redis-server, a real ``voicemood worker`` subprocess, the real service as front end;
every message published on Redis is recorded with ``PSUBSCRIBE *``, and every key and
value left in Redis is read back after the note.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
import yaml

from bot.analysis import Sender
from tests.audio_factory import speech_file
from tests.conftest import REPO, make_settings
from tests.redis_fixture import RedisServer, free_port, redis_server  # noqa: F401
from tests.test_poison_messages import RoomyWorker
from tests.test_workers import Worker, front_end

SENTENCE = "The meeting was moved to Thursday afternoon."
#: The word of SENTENCE looked for in everything Redis saw (Whisper may vary the rest).
WORD = b"thursday"
#: Longest a result nobody reads may stay in Redis (workers.celery.RESULT_TTL_S).
RESULT_TTL_S = 300


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory,
           redis_server: RedisServer) -> Iterator[Worker]:  # noqa: F811
    """One worker for this module, stopped at the end."""
    w = RoomyWorker("privacy", tmp_path_factory.mktemp("privacy"), redis_server.url)
    try:
        w.wait_ready()
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """SENTENCE spoken, as a voice note."""
    return speech_file(tmp_path_factory.mktemp("clip"), SENTENCE, "ogg").read_bytes()


@pytest.fixture
async def published(redis_server: RedisServer  # noqa: F811
                    ) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Every (channel, data) published on this Redis while the test runs."""
    client = aredis.Redis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.psubscribe("*")
    seen: list[tuple[str, bytes]] = []

    async def listen() -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is not None and msg["type"] == "pmessage":
                seen.append((msg["channel"].decode(errors="replace"), bytes(msg["data"])))

    task = asyncio.create_task(listen())
    try:
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.aclose()
        await client.aclose()


def everything_in(client: redis.Redis) -> dict[bytes, bytes]:
    """Every key of database 0 with its whole value, whatever its type, as bytes."""
    out = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = [client.get(key) or b""]
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "hash":
            value = [b for kv in client.hgetall(key).items() for b in kv]
        elif kind == "set":
            value = list(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        else:
            value = [kind.encode()]
        out[key] = b"\n".join(value)
    return out


def wait_until(condition: object, timeout: float = 30) -> None:
    """Poll ``condition()`` (a Redis state another process changes) until it is true."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


async def test_no_word_of_the_transcript_crosses_redis_and_nothing_is_left_there(
        tmp_path: Path, redis_server: RedisServer, worker: Worker,  # noqa: F811
        clip: bytes, published: list[tuple[str, bytes]]) -> None:
    sender = Sender("telegram", "7", "42", "m1")
    async with front_end(tmp_path, redis_server.url) as service:
        await service.store.journal.set_keep_transcripts("telegram", "7", False)
        analysis = await service.analyze(clip, sender)
    assert "thursday" in analysis.transcript.lower()  # the reply still shows it
    # The worker sends what its event dispatcher buffered on a timer, heartbeats included:
    # two more heartbeats and anything about this note has been published.
    beats = sum("worker.heartbeat" in ch for ch, _ in published)
    deadline = time.monotonic() + 30
    while sum("worker.heartbeat" in ch for ch, _ in published) < beats + 2:
        assert time.monotonic() < deadline, "the worker sent no heartbeat"
        await asyncio.sleep(0.1)

    client = redis.Redis.from_url(redis_server.url)
    try:
        # The worker acknowledges just after storing the result: wait for that.
        wait_until(lambda: client.hlen("unacked") == 0 and client.llen("voicemood") == 0)
        left = everything_in(client)
    finally:
        client.close()
    audio_b64 = base64.b64encode(clip)
    for key, value in left.items():
        assert WORD not in (key + value).lower(), key
        assert audio_b64[100:160] not in value, key  # no piece of the audio either
        assert b"OggS" not in value, key
    assert not [k for k in left if k.startswith(b"celery-task-meta-")]  # read, then deleted

    # What was published: the result, once, sealed, to the front end waiting on its channel
    # (it used to carry the transcript in the clear); no task event (task-succeeded used to
    # carry it to every subscriber).
    assert not [ch for ch, data in published if WORD in data.lower()]
    results = [data for ch, data in published
               if ch.startswith("celery-task-meta-") and b'"SUCCESS"' in data]
    assert len(results) == 1 and b'"sealed"' in results[0], results
    assert not [ch for ch, _ in published if "celeryev/task" in ch]


def test_a_result_nobody_reads_expires_within_minutes(
        redis_server: RedisServer, worker: Worker, clip: bytes) -> None:  # noqa: F811
    from workers.celery import ANALYZE_TASK, QUEUE, make_app
    from workers.protocol import ReplyKey, Request

    app = make_app(make_settings(Path("/nonexistent"), broker_url=redis_server.url))
    client = redis.Redis.from_url(redis_server.url)
    try:
        sent = app.send_task(ANALYZE_TASK, queue=QUEUE,
                             kwargs=Request(clip, limits={}, lang=None,
                                            reply_key=ReplyKey().public).to_json())
        key = f"celery-task-meta-{sent.id}"
        # Nobody waits for it (the front end that sent it died): it is still written...
        wait_until(lambda: b'"SUCCESS"' in (client.get(key) or b""), timeout=120)
        assert WORD not in (client.get(key) or b"").lower()  # sealed: no word readable
        # ...and goes by itself soon.
        assert 0 < client.ttl(key) <= RESULT_TTL_S
        client.delete(key)
    finally:
        client.close()
        app.close()


def _default(value: str) -> str:
    """``${VAR:-default}`` as compose resolves it with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_shipped_compose_keeps_redis_in_memory_and_flower_behind_a_login(
        tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    redis_service = services["redis"]
    assert "volumes" not in redis_service
    args = list(redis_service["command"])
    assert args[0] == "redis-server"

    # Run Debian's redis-server with exactly those arguments: after a note's worth of data
    # and a shutdown, its folder holds no file at all (no append-only file, no snapshot).
    port = free_port()
    proc = subprocess.Popen([*args, "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        wait_until(lambda: _pings(client), timeout=10)
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("save") == {"save": ""}
        client.rpush("voicemood", b"OggS audio that must not reach a disk")
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown()
        proc.wait(timeout=10)
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    # Flower only on this machine's loopback, and only with logins.
    flower = services["flower"]
    assert [_default(p).split(":")[0] for p in flower["ports"]] == ["127.0.0.1"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert "FLOWER_BASIC_AUTH" in " ".join(flower["command"])
    # /healthz and /metrics, where published at all, only on loopback.
    for service in services.values():
        for mapping in service.get("ports", []):
            if ":9100" in mapping:
                assert _default(mapping).startswith("127.0.0.1:"), mapping


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
