"""A malformed message on the Redis queue never kills ``voicemood worker``.

Anyone who can write to Redis (or a bug in another producer) can put bytes on the
``voicemood`` list that are not a Celery message. Each kind below used to end the worker
with ``CRITICAL ... Unrecoverable error``; now each is dropped with one warning and the
same worker process answers the next real note.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.audio_factory import speech_file
from tests.redis_fixture import RedisServer, free_port, redis_server  # noqa: F401
from tests.test_workers import Worker, front_end, queue_length

#: A kombu envelope as the Redis transport stores it, with a body that is not base64.
BAD_BASE64 = {
    "body": "%%% this is not base64 %%%",
    "content-encoding": "utf-8",
    "content-type": "application/json",
    "headers": {},
    "properties": {"body_encoding": "base64", "delivery_tag": "poison-1",
                   "delivery_info": {"exchange": "", "routing_key": "voicemood"},
                   "priority": 0, "delivery_mode": 2},
}

#: Every kind of poison: raw bytes, JSON that is no envelope, an envelope whose body does
#: not decode, and a well-formed Celery message whose task arguments are not base64.
POISON: dict[str, bytes] = {
    "not json": b"\x00\xffthis is not json at all",
    "json, not an object": b"[1, 2, 3]",
    "object without properties": b'{"body": "aGVsbG8="}',
    "bad base64 body": json.dumps(BAD_BASE64).encode(),
}


class RoomyWorker(Worker):
    """A :class:`Worker` whose time limit allows for a 2-core machine shared with others
    (the note's answer is what matters here, not its speed)."""

    def __init__(self, name: str, folder: Path, broker: str) -> None:
        super().__init__(name, folder, broker, VOICEMOOD_TASK_TIME_LIMIT_S="120",
                         VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S="150")


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory,
           redis_server: RedisServer) -> Iterator[Worker]:  # noqa: F811
    """One worker for this module, stopped (or killed) at the end."""
    w = RoomyWorker("poison", tmp_path_factory.mktemp("poison"), redis_server.url)
    try:
        w.wait_ready()
        yield w
    finally:
        w.stop()


def wait_for_log(worker: Worker, pattern: str, count: int, timeout: float = 30) -> list[str]:
    """The worker's log lines matching ``pattern`` once there are ``count``; fails if the
    worker exits first."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, worker.text())
        if len(found) >= count:
            return found
        if worker.proc.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.proc.returncode}):\n"
                                 f"{worker.text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} x {pattern!r} not logged:\n{worker.text()[-3000:]}")
        time.sleep(0.1)


async def test_poison_messages_are_dropped_and_logged_and_the_worker_carries_on(
        tmp_path: Path, redis_server: RedisServer, worker: Worker) -> None:  # noqa: F811
    pid = worker.proc.pid
    client = redis.Redis.from_url(redis_server.url)
    try:
        for body in POISON.values():
            client.lpush("voicemood", body)
        lines = wait_for_log(worker, r"WARNING .*dropped a malformed message[^\n]*",
                             len(POISON))
        assert queue_length(redis_server.url) == 0
        assert client.hlen("unacked") == 0  # nothing left to be redelivered in a loop
    finally:
        client.close()
    # The log says what happened without the message's bytes (they may be someone's audio).
    assert all("queue 'voicemood'" in line for line in lines), lines
    assert not any("not json at all" in line or "aGVsbG8" in line for line in lines), lines

    clip = speech_file(tmp_path, "The meeting was moved to Thursday afternoon.", "ogg")
    async with front_end(tmp_path, redis_server.url) as service:
        analysis = await service.analyze_bytes(clip.read_bytes())
    assert "thursday" in analysis.transcript.lower()
    assert worker.proc.poll() is None and worker.proc.pid == pid  # the same process
    assert "Unrecoverable error" not in worker.text()


async def test_a_task_whose_audio_is_not_base64_is_rejected_without_retries(
        redis_server: RedisServer, worker: Worker) -> None:  # noqa: F811
    from tests.conftest import make_settings
    from workers.celery import ANALYZE_TASK, QUEUE, make_app
    from workers.protocol import ReplyKey

    app = make_app(make_settings(Path("/nonexistent"), broker_url=redis_server.url))
    try:
        app.send_task(ANALYZE_TASK, kwargs={"audio_b64": "%%%", "limits": {}, "lang": None,
                                            "reply_key": ReplyKey().public}, queue=QUEUE)
    finally:
        app.close()
    [line] = wait_for_log(worker, r"WARNING .*rejected a malformed request[^\n]*", 1)
    assert "audio_b64 is not base64" in line
    assert "retry" not in worker.text().lower()
    assert worker.proc.poll() is None
    assert queue_length(redis_server.url) == 0
