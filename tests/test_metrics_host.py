"""``/healthz`` and ``/metrics`` listen on ``VOICEMOOD_METRICS_HOST``, loopback by default.

They used to bind 0.0.0.0 always: queue depth, note counts and model names to anyone who
could reach the machine. The address each server really listens on is read from the
kernel's socket table (``/proc/net/tcp``), for ``voicemood serve``'s server in process and
for a real ``voicemood worker`` subprocess.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from app.wiring import open_service
from bot.core.service import AnalysisService
from bot.ops.metrics import start_serve_health
from bot.ops.settings import Settings
from tests.conftest import make_settings
from tests.redis_fixture import RedisServer, free_port, redis_server  # noqa: F401
from tests.test_workers import Worker, clean_env


def listening_on(port: int) -> set[str]:
    """The IPv4 addresses a socket in LISTEN state is bound to on ``port``, from the kernel."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: TCP_LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1]))
    return found


def test_the_default_is_loopback_and_the_env_name_is_read(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    assert Settings(_env_file=None).metrics_host == "127.0.0.1"
    monkeypatch.setenv("VOICEMOOD_METRICS_HOST", "0.0.0.0")
    assert Settings(_env_file=None).metrics_host == "0.0.0.0"


@pytest.fixture
async def in_process(tmp_path: Path) -> AsyncIterator[AnalysisService]:
    """A front end in scale-out mode (no models to load; its Redis need not run)."""
    settings = make_settings(tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0",
                             metrics_port=free_port())
    service = await open_service(settings)
    try:
        yield service
    finally:
        await service.close()


async def test_serve_health_listens_on_loopback_only(in_process: AnalysisService) -> None:
    port = in_process.settings.metrics_port
    runner = await start_serve_health(in_process, in_process.settings)
    assert runner is not None
    try:
        assert listening_on(port) == {"127.0.0.1"}
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/metrics") as reply:
            assert reply.status == 200
            assert "voicemood_notes_total" in await reply.text()
    finally:
        await runner.cleanup()


@pytest.fixture
def worker(tmp_path: Path, redis_server: RedisServer) -> Iterator[Worker]:  # noqa: F811
    """A real worker with VOICEMOOD_METRICS_PORT set and no VOICEMOOD_METRICS_HOST."""
    w = Worker.__new__(Worker)
    w.name, w.log, w.metrics_port = "health", tmp_path / "health.log", free_port()
    env = clean_env(tmp_path, redis_server.url, VOICEMOOD_METRICS_PORT=str(w.metrics_port))
    assert "VOICEMOOD_METRICS_HOST" not in env
    w.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--concurrency", "1"],
                              cwd=tmp_path, stdout=w.log.open("wb"), stderr=subprocess.STDOUT,
                              env=env)
    try:
        w.wait_ready()
        yield w
    finally:
        w.stop()


def test_worker_health_listens_on_loopback_only(worker: Worker) -> None:
    assert listening_on(worker.metrics_port) == {"127.0.0.1"}
