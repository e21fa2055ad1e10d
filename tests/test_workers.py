"""Scale-out mode for real: redis-server, ``voicemood worker`` subprocesses, Celery.

No part is mocked: the front end is the real ``AnalysisService`` with
``VOICEMOOD_BROKER_URL`` set (or the ``voicemood analyze`` command), the workers are real
processes loading the offline tier, the broker is Debian's redis-server. The workers run
with ``--concurrency 1`` so that where each note goes is predictable and the two test cores
are not swamped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from app.wiring import open_service
from bot import wording
from bot.analysis import Sender
from bot.core.service import AnalysisService
from bot.ops.metrics import start_serve_health
from inference.engine import InferenceEngine
from inference.errors import Busy, InputError, NotAudio, Silent, TooLong
from tests.audio_factory import speech_file, tone_or_silence
from tests.conftest import MODELS_DIR, make_settings
from tests.redis_fixture import RedisServer, free_port, redis_server  # noqa: F401
from tests.waiting import until, wait_until

#: Longest a test note may take on a loaded 2-core machine; the visibility timeout is
#: above it, so a slow note is not handed out twice.
TIME_LIMIT_S = 12
VISIBILITY_S = 15
TOKEN = "123456789:AAH-fake-token-for-voicemood-tests-0123456789"

WORKER_ENV = {
    "VOICEMOOD_MODELS_DIR": str(MODELS_DIR),
    "VOICEMOOD_DEVICE": "cpu",
    "VOICEMOOD_ASR_BACKEND": "whisper",
    "VOICEMOOD_TEXT_EMOTION_BACKEND": "lexicon",
    "VOICEMOOD_VOICE_EMOTION_BACKEND": "prosody",
    "VOICEMOOD_BATCH_WAIT_MS": "20",
    "VOICEMOOD_TASK_TIME_LIMIT_S": str(TIME_LIMIT_S),
    "VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
}


def clean_env(tmp: Path, broker: str, **extra: str) -> dict[str, str]:
    """The environment of a voicemood subprocess: nothing inherited from the developer's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VOICEMOOD_", "TELEGRAM_", "SLACK_"))}
    env.update(WORKER_ENV)
    env.update({"VOICEMOOD_BROKER_URL": broker, "VOICEMOOD_DB": str(tmp / "worker.db")})
    env.update(extra)
    return env


class Worker:
    """One ``voicemood worker --concurrency 1`` subprocess, logging to a file."""

    def __init__(self, name: str, folder: Path, broker: str, **env_extra: str) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        #: Its /healthz and /metrics.
        self.metrics_port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--concurrency", "1"],
            cwd=folder, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            env=clean_env(folder, broker, VOICEMOOD_METRICS_PORT=str(self.metrics_port),
                          **env_extra),
        )

    def text(self) -> str:
        """Everything the worker logged so far."""
        return self.log.read_text(errors="replace")

    def received(self) -> list[str]:
        """Ids of the tasks this worker took from the queue."""
        return re.findall(r"voicemood\.analyze\[([0-9a-f-]+)\] received", self.text())

    def connections(self) -> int:
        """How often Celery has (re)connected this worker to the broker."""
        return self.text().count("consumer.connection: Connected to ")

    def wait_ready(self, timeout: float = 120) -> None:
        """Block until Celery says the worker consumes (models are loaded before that)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.text()[-3000:]}")
            return re.search(r"voicemood-\d+@\S+ ready\.", self.text()) is not None

        wait_until(ready, timeout, f"worker {self.name} to be ready", step=0.2)

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, nothing cleaned up."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait (Celery's warm shutdown)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def ensure_worker(workers: dict[str, Worker], name: str, folder: Path, broker: str) -> Worker:
    """The running worker ``name``, started (and waited for) if there is none."""
    if name not in workers:
        workers[name] = Worker(name, folder, broker)
    workers[name].wait_ready()
    return workers[name]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs, databases and clips of this module."""
    return tmp_path_factory.mktemp("workers")


@pytest.fixture(scope="module")
def workers(folder: Path, redis_server: RedisServer) -> Iterator[dict[str, Worker]]:  # noqa: F811
    """Workers started by the tests, by name; all stopped at the end of the module."""
    running: dict[str, Worker] = {}
    yield running
    for worker in running.values():
        worker.stop()


@pytest.fixture
def spawned() -> Iterator[Callable[[subprocess.Popen[str]], subprocess.Popen[str]]]:
    """Hands subprocesses to the test and kills those still running at its end, whatever
    the test did."""
    procs: list[subprocess.Popen[str]] = []

    def own(proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
        procs.append(proc)
        return proc

    yield own
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def clips(folder: Path) -> dict[str, bytes]:
    """Short espeak-ng notes (distinct bytes, so no cache answers for a worker)."""
    texts = {
        "hello": "Hello, I am very happy today, this is a wonderful day.",
        "calm": "The meeting was moved to Thursday afternoon.",
        "long": "I walked to the station this morning and the train was late again, "
                "so I read my book on the platform for twenty minutes and then I called "
                "my sister to tell her about the weekend plans.",
    }
    out = {name: speech_file(folder, text, "ogg", name=name).read_bytes()
           for name, text in texts.items()}
    for i in range(4):
        out[f"n{i}"] = speech_file(folder, f"This is note number {i + 2} of the batch.", "ogg",
                                   name=f"n{i}").read_bytes()
    out["silence"] = tone_or_silence(folder, "silence", 2.0, "ogg").read_bytes()
    out["noise"] = b"this is not audio at all\n" * 40
    return out


@contextlib.asynccontextmanager
async def front_end(tmp: Path, url: str, **overrides: object) -> AsyncIterator[AnalysisService]:
    """A front end in broker mode: the real service, no models loaded in this process."""
    service = await open_service(make_settings(tmp, broker_url=url, **overrides))
    assert service.engine is None  # nothing loaded here
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
async def remote(tmp_path: Path, redis_server: RedisServer  # noqa: F811
                 ) -> AsyncIterator[AnalysisService]:
    """A broker-mode front end with the default limits."""
    async with front_end(tmp_path, redis_server.url) as service:
        yield service


def queue_length(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.llen("voicemood"))
    finally:
        client.close()


async def test_a_full_queue_gets_the_busy_reply_with_an_estimate(
        tmp_path: Path, redis_server: RedisServer, clips: dict[str, bytes]) -> None:  # noqa: F811
    client = redis.Redis.from_url(redis_server.url)
    client.rpush("voicemood", "x", "y")  # two notes wait (no worker runs yet)
    try:
        async with front_end(tmp_path, redis_server.url, broker_max_queue=2) as service:
            with pytest.raises(Busy) as err:  # at once: no worker runs that could answer
                await asyncio.wait_for(service.analyze_bytes(clips["n1"]), 10)
            assert err.value.retry_after_s >= 2
            assert wording.error_reply(err.value, "en", service.settings).startswith(
                "I'm busy with other recordings right now. Please try again in about ")
            assert queue_length(redis_server.url) == 2  # nothing was sent
    finally:
        client.delete("voicemood")
        client.close()


def test_a_note_waits_for_a_worker_and_is_answered_once_one_starts(
        folder: Path, redis_server: RedisServer, workers: dict[str, Worker],  # noqa: F811
        clips: dict[str, bytes],
        spawned: Callable[[subprocess.Popen[str]], subprocess.Popen[str]]) -> None:
    note = folder / "hello.ogg"
    env = clean_env(folder, redis_server.url, VOICEMOOD_DB=str(folder / "front.db"))
    front = spawned(subprocess.Popen(
        [sys.executable, "-m", "app.cli", "analyze", "--json", "--user", "alice", str(note)],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

    def queued() -> bool:
        assert front.poll() is None, front.communicate()
        return queue_length(redis_server.url) > 0

    wait_until(queued, 30, "the note to reach the queue")
    with pytest.raises(subprocess.TimeoutExpired):  # no worker: it waits, it does not fail
        front.wait(timeout=1.0)
    assert queue_length(redis_server.url) == 1

    workers["a"] = Worker("a", folder, redis_server.url)
    out, err = front.communicate(timeout=180)
    assert front.returncode == 0, err
    [line] = [json.loads(x) for x in out.splitlines()]
    assert "wonderful" in line["transcript"].lower()
    assert line["models"]["asr"].startswith("whisper-base")
    assert line["timings"]["broker"] > 0  # the wait in the queue is accounted for
    assert queue_length(redis_server.url) == 0
    assert len(workers["a"].received()) == 1
    # The history is the front end's: one row there, none in the worker's database.
    import sqlite3

    with contextlib.closing(sqlite3.connect(folder / "front.db")) as con:
        rows = con.execute("SELECT user_id, platform, transcript FROM analyses").fetchall()
    assert rows == [("alice", "cli", line["transcript"])]
    if (folder / "worker.db").exists():
        with contextlib.closing(sqlite3.connect(folder / "worker.db")) as con:
            assert con.execute("SELECT COUNT(*) FROM sqlite_master "
                               "WHERE name='analyses'").fetchone() == (0,)


async def test_refusals_come_back_as_the_same_errors_as_in_process(
        tmp_path: Path, folder: Path, redis_server: RedisServer,  # noqa: F811
        engine: InferenceEngine, workers: dict[str, Worker], clips: dict[str, bytes]) -> None:
    ensure_worker(workers, "a", folder, redis_server.url)
    taken_before = {name: len(w.received()) for name, w in workers.items()}
    # clip -> (the error class and code both sides must raise)
    cases = {"noise": (NotAudio, "not_audio"), "silence": (Silent, "silent"),
             "long": (TooLong, "too_long")}
    local_settings = make_settings(tmp_path / "local", max_audio_seconds=6.0)
    local = await AnalysisService.create(local_settings, engine=engine)
    try:
        async with front_end(tmp_path, redis_server.url, max_audio_seconds=6.0) as remote:
            for name, (cls, code) in cases.items():
                with pytest.raises(InputError) as remote_err:
                    await remote.analyze_bytes(clips[name])
                with pytest.raises(InputError) as local_err:
                    await local.analyze_bytes(clips[name])
                assert (type(remote_err.value), remote_err.value.code) == (cls, code), name
                assert (type(local_err.value), local_err.value.code) == (cls, code), name
                # The whole reply, details included (the limit of a too-long note).
                assert (wording.error_reply(remote_err.value, "zh", remote.settings)
                        == wording.error_reply(local_err.value, "zh", local_settings))
            with pytest.raises(TooLong) as err:
                await remote.analyze_bytes(clips["long"])
            assert wording.error_reply(err.value, "en", remote.settings) == (
                "That recording is too long: I analyse up to 6 s. Please send a shorter one.")
    finally:
        await local.close(close_engine=False)
    # Refusals are answers: none was retried. A retry sends the same task again, so a worker
    # logs "received" for its id a second time (Celery's own "retry" line is logged at INFO
    # by a logger the worker raises to WARNING: the text "retry" never shows up).
    taken = [task for name, w in workers.items()
             for task in w.received()[taken_before.get(name, 0):]]
    assert len(taken) == 4, taken  # four refusals asked for, four tasks
    assert len(set(taken)) == 4, f"a refusal was retried: {taken}"


async def test_an_analysis_through_the_queue_is_stored_like_in_process(
        folder: Path, redis_server: RedisServer, remote: AnalysisService,  # noqa: F811
        workers: dict[str, Worker], clips: dict[str, bytes]) -> None:
    ensure_worker(workers, "a", folder, redis_server.url)
    sender = Sender("telegram", "7", "42", "m1")
    first = await remote.analyze(clips["calm"], sender)
    assert "meeting" in first.transcript.lower()
    again = await remote.analyze(clips["calm"], sender)  # a redelivery of the same message
    assert again.duplicate and again.id == first.id
    assert await remote.count("telegram", "7") == 1
    assert remote.pipeline.models()["asr"].startswith("whisper-base")


async def test_two_workers_share_the_notes(
        folder: Path, redis_server: RedisServer, remote: AnalysisService,  # noqa: F811
        workers: dict[str, Worker], clips: dict[str, bytes]) -> None:
    ensure_worker(workers, "a", folder, redis_server.url)
    ensure_worker(workers, "b", folder, redis_server.url)
    before = {name: len(w.received()) for name, w in workers.items()}
    # Prefetch 1: a worker holds one note at a time (in Redis's "unacked" hash), so the
    # others stay in the queue for whichever worker is free next.
    held: list[int] = []
    probe = redis.Redis.from_url(redis_server.url)

    async def watch() -> None:
        while True:
            held.append(int(probe.hlen("unacked")))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.gather(*(remote.pipeline.run(clips[f"n{i}"])
                                         for i in range(4)))
    finally:
        watcher.cancel()
        probe.close()
    assert max(held) <= 2, held  # one per worker
    # Each answer is its own note's (not another's, crossing on the way back).
    assert [r.audio_sha256 for r in results] == [
        hashlib.sha256(clips[f"n{i}"]).hexdigest() for i in range(4)]
    assert all(r.transcript for r in results)
    took = {name: len(w.received()) - before[name] for name, w in workers.items()}
    assert sum(took.values()) == 4
    assert took["a"] >= 1 and took["b"] >= 1, took


async def test_a_worker_reports_health_and_metrics(
        folder: Path, redis_server: RedisServer, remote: AnalysisService,  # noqa: F811
        workers: dict[str, Worker], clips: dict[str, bytes]) -> None:
    worker = ensure_worker(workers, "a", folder, redis_server.url)
    await remote.pipeline.run(clips["n3"])
    base = f"http://127.0.0.1:{worker.metrics_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as resp:
            assert (resp.status, await resp.text()) == (200, "ok\n")
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in text.splitlines() if line.startswith("voicemood_")}
    assert samples['voicemood_notes_total{outcome="ok"}'] >= 1
    assert samples['voicemood_model_info{component="asr",device="cpu",'
                   'model="whisper-base (whisper-base)",tier="offline"}'] == 1
    assert samples['voicemood_stage_seconds_count{stage="asr"}'] >= 1
    assert samples["voicemood_batch_size_count"] >= 1
    assert samples["voicemood_queue_depth"] == 0


async def test_a_worker_killed_mid_note_is_redelivered_and_answered_once(
        folder: Path, redis_server: RedisServer, remote: AnalysisService,  # noqa: F811
        workers: dict[str, Worker], clips: dict[str, bytes]) -> None:
    for name in ("a", "b"):
        ensure_worker(workers, name, folder, redis_server.url)
    before = {name: set(w.received()) for name, w in workers.items()}
    sender = Sender("slack", "U1", "D1", "1700000000.000200")
    job = asyncio.create_task(remote.analyze(clips["long"], sender))

    def taker() -> str | None:
        return next((name for name, w in workers.items() if set(w.received()) - before[name]),
                    None)

    try:
        await until(taker, 30, "a worker to take the note")
        victim = taker()
        assert victim is not None
        [task_id] = set(workers[victim].received()) - before[victim]
        # Mid-note: the worker has started on it (and would have acknowledged it by now,
        # were acknowledgement early), and its answer is seconds away.
        state = remote.pipeline.app.AsyncResult(task_id)

        def started() -> bool:
            assert state.state in ("PENDING", "STARTED"), state.state
            return state.state == "STARTED"

        await until(started, 30, "the note to be started")
    except BaseException:
        job.cancel()
        raise
    workers[victim].kill()
    survivor = "b" if victim == "a" else "a"
    # Redis hands the unacknowledged note to the survivor after the visibility timeout.
    analysis = await asyncio.wait_for(job, timeout=VISIBILITY_S + 90)
    assert "station" in analysis.transcript.lower()
    assert workers[survivor].received().count(task_id) == 1
    assert await remote.count("slack", "U1") == 1
    # Nothing else can arrive for it later: the broker holds it neither queued nor handed
    # out unacknowledged (where the visibility timeout would hand it out again).
    probe = redis.Redis.from_url(redis_server.url)
    try:
        await until(lambda: not probe.hlen("unacked") and not probe.llen("voicemood"), 30,
                    "the broker to hold nothing")
    finally:
        probe.close()
    assert workers[survivor].received().count(task_id) == 1
    del workers[victim]


async def test_telegram_through_the_queue_survives_a_redis_outage(
        tmp_path: Path, folder: Path, redis_server: RedisServer,  # noqa: F811
        workers: dict[str, Worker], clips: dict[str, bytes]) -> None:
    """Fake Telegram -> serve_telegram (broker mode) -> Redis -> worker -> reply; then Redis
    stops: a clear "try again later", serve keeps running, and the next note after Redis is
    back is analysed."""
    from adapters.telegram import serve_telegram
    from tests import fake_telegram as fk

    ensure_worker(workers, "a", folder, redis_server.url)
    # Each part is closed by the stack as soon as it exists, in reverse order, whatever fails.
    parts = contextlib.AsyncExitStack()
    fake = fk.FakeTelegram(TOKEN)
    await fake.start()
    parts.push_async_callback(fake.stop)
    settings = make_settings(tmp_path, broker_url=redis_server.url, telegram_bot_token=TOKEN,
                             telegram_api_base_url=fake.api_base,
                             telegram_file_base_url=fake.file_base, metrics_port=free_port())
    try:
        service = await open_service(settings)
        parts.push_async_callback(service.close)
        health = await start_serve_health(service, settings)  # as `voicemood serve` does
        assert health is not None
        parts.push_async_callback(health.cleanup)
        serve = asyncio.create_task(serve_telegram(service, settings))

        async def stop_serve() -> None:
            serve.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(serve, 15)

        parts.push_async_callback(stop_serve)
        http = await parts.enter_async_context(
            aiohttp.ClientSession(f"http://127.0.0.1:{settings.metrics_port}"))
    except BaseException:
        await parts.aclose()
        raise
    alice = fk.user(1001, "Alice", "en")

    async def healthz() -> tuple[int, str]:
        async with http.get("/healthz") as resp:
            return resp.status, await resp.text()

    async def notes_total(outcome: str) -> float:
        async with http.get("/metrics") as resp:
            text = await resp.text()
        found = re.search(rf'^voicemood_notes_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    async def send(data: bytes) -> None:
        fid = fake.add_file(data, folder="voice", suffix="oga")
        fake.push(fk.message(alice, None, **fk.voice(fid, len(data), 3)))

    def texts() -> list[str]:
        return [c.params["text"] for c in fake.sent() if c.method == "sendMessage"]

    async with parts:
        await send(clips["calm"])
        [first] = await fake.wait_for(lambda: texts() or None, 90)
        assert "meeting" in first.lower()
        assert await service.count("telegram", "1001") == 1
        assert await healthz() == (200, "ok\n")

        connected = {name: w.connections() for name, w in workers.items()}
        # The counters are process-wide: other tests in this run may have counted outcomes.
        unavailable_before = await notes_total("unavailable")
        ok_before = await notes_total("ok")
        redis_server.stop()
        try:
            await send(clips["n2"])
            await fake.wait_for(lambda: len(texts()) == 2, 60)
            assert texts()[1] == (
                "I can't reach my speech workers right now. Please try again later "
                "— in a few minutes.")
            assert not serve.done()  # serve is still up
            assert await healthz() == (503, "broker unreachable\n")
            assert await notes_total("unavailable") == unavailable_before + 1
        finally:
            redis_server.start()
        assert await healthz() == (200, "ok\n")
        # The workers reconnect with Celery's back-off: each says so in its log.
        await until(lambda: all(w.connections() > connected[name]
                                for name, w in workers.items()), 90,
                    "the workers to reconnect to Redis")
        for _attempt in range(5):  # the front end's own connection may need a try more
            await send(clips["n3"])
            n = len(texts())
            await fake.wait_for(lambda n=n: len(texts()) > n, 90)
            if "speech workers" not in texts()[-1]:
                break
        assert "Transcript (" in texts()[-1] and "this is" in texts()[-1].lower()
        assert await service.count("telegram", "1001") == 2
        assert all(w.proc.poll() is None for w in workers.values())  # workers reconnected
        assert await notes_total("ok") == ok_before + 1


async def test_slack_through_the_queue(
        tmp_path: Path, folder: Path, redis_server: RedisServer,  # noqa: F811
        workers: dict[str, Worker], clips: dict[str, bytes]) -> None:
    """Fake Slack -> serve_slack (broker mode) -> Redis -> worker -> threaded reply."""
    from tests.fake_slack import FakeSlack
    from tests.test_slack import ALICE, CHANNEL, file_event, posts, running

    ensure_worker(workers, "a", folder, redis_server.url)
    fake = await FakeSlack().start()
    try:
        async with running(tmp_path, None, fake, working_after_s=60,
                           broker_url=redis_server.url) as h:
            assert h.service.engine is None  # no models in this front end
            ts = "1700000009.000300"
            file = fake.add_file("F9CLIP", clips["hello"], name="audio_message.ogg",
                                 mimetype="audio/ogg", filetype="ogg", user=ALICE,
                                 channel=CHANNEL, ts=ts, subtype="slack_audio",
                                 duration_ms=3000)
            reply = await h.event(file_event(file, ts=ts))
            assert reply.status == 200 and reply.seconds < 3  # acknowledged before the work
            await fake.wait_for(lambda: posts(fake), what="the result")
            await h.settle()
            [result] = posts(fake)
            assert result["thread_ts"] == ts and result["channel"] == CHANNEL
            assert "wonderful" in result["text"].lower()
            assert await h.service.count("slack", ALICE) == 1
            await h.service.pipeline.close()
    finally:
        await fake.stop()
