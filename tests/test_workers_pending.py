"""Nothing lost: ``voicemood serve`` killed with notes pending answers each once on restart.

Real parts only: the fake Telegram Bot API in this process, ``voicemood serve`` and
``voicemood worker`` as subprocesses, redis-server. The first ``serve`` accepts three notes
while no worker runs (so they are pending), and is killed with SIGKILL; the second resumes
them, a worker starts, and every note gets exactly one reply and one history row.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from tests import fake_telegram as fk
from tests.audio_factory import speech_file
from tests.redis_fixture import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.test_workers import TOKEN, Worker, clean_env
from tests.waiting import until


def rows(db: Path, sql: str) -> list[tuple]:
    """Read the front end's database (WAL mode: readable while serve writes)."""
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the tables are not made yet
        return []
    finally:
        con.close()


@pytest.fixture
async def fake() -> AsyncIterator[fk.FakeTelegram]:
    """The fake Telegram Bot API in this process, stopped at the end of the test."""
    server = fk.FakeTelegram(TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes] | Worker]]:
    """Subprocesses the test starts; each still running at its end is ended: terminated,
    killed if it does not stop."""
    procs: list[subprocess.Popen[bytes] | Worker] = []
    yield procs
    for proc in procs:
        if isinstance(proc, Worker):
            proc.stop()
            continue
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


async def test_serve_killed_with_notes_pending_answers_each_once_after_restart(
        tmp_path: Path, redis_server: RedisServer, fake: fk.FakeTelegram,  # noqa: F811
        processes: list[subprocess.Popen[bytes] | Worker]) -> None:
    db = tmp_path / "front.db"
    env = clean_env(tmp_path, redis_server.url, VOICEMOOD_DB=str(db),
                    TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=fake.api_base,
                    TELEGRAM_FILE_BASE_URL=fake.file_base)
    queue = redis.Redis.from_url(redis_server.url)
    alice = fk.user(1001, "Alice", "en")

    def serve(name: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=tmp_path,
                                env=env, stdout=(tmp_path / f"{name}.log").open("wb"),
                                stderr=subprocess.STDOUT)
        processes.append(proc)
        return proc

    try:
        first = serve("serve1")
        await until(lambda: fake.calls_to("getUpdates"), 60, "the first serve to poll")
        sent_ids = []
        for i, text in enumerate(("Good morning, the sun is out.", "I lost my keys again.",
                                  "Lunch was lovely today.")):
            data = speech_file(tmp_path, text, "ogg", name=f"note{i}").read_bytes()
            fid = fake.add_file(data, folder="voice", suffix="oga")
            update = fk.message(alice, None, **fk.voice(fid, len(data), 3))
            fake.push(update)
            sent_ids.append(update["message"]["message_id"])
        # Accepted (pending in SQLite, tasks in Redis), unanswered: no worker runs.
        await until(lambda: len(rows(db, "SELECT * FROM pending_notes")) == 3, 60,
                    "three pending notes")
        await until(lambda: queue.llen("voicemood") == 3, 30, "three queued tasks")
        await until(lambda: fake.pending_updates() == 0, 30, "the updates to be confirmed")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        serve("serve2")
        # The restarted serve sends the notes again (the dead one's tasks still wait too).
        await until(lambda: queue.llen("voicemood") == 6, 60, "the resumed notes' tasks")
        worker = Worker("w", tmp_path, redis_server.url)
        processes.append(worker)

        def replies() -> dict[int, int]:
            counts: dict[int, int] = {}
            for call in fake.calls_to("sendMessage"):
                target = (call.params.get("reply_parameters") or {}).get("message_id")
                counts[target] = counts.get(target, 0) + 1
            return counts

        await until(lambda: all(replies().get(m) for m in sent_ids), 180, "three replies")
        # The dead serve's tasks are analysed too, but nobody waits for them: no reply more.
        await until(lambda: queue.llen("voicemood") == 0 and not queue.hlen("unacked"), 120,
                    "the queue to drain")
        # Nothing is left that could still send a reply: the worker took all six tasks (the
        # broker holds none) and serve completed every note it resumed.
        await until(lambda: len(worker.received()) == 6, 30, "the worker's six tasks")
        await until(lambda: rows(db, "SELECT * FROM pending_notes") == [], 60,
                    "serve to complete the resumed notes")
        assert {m: replies().get(m) for m in sent_ids} == {m: 1 for m in sent_ids}
        history = rows(db, "SELECT message_id, transcript FROM analyses ORDER BY message_id")
        assert [int(m) for m, _ in history] == sorted(sent_ids)  # each note once
        assert "morning" in history[0][1].lower()
        assert len(set(worker.received())) == 6  # no task was handed out twice
    finally:
        queue.close()
