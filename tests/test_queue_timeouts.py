"""The queue's three timeouts agree, so a note whose worker died is still answered.

Redis hands an unacknowledged note out again only after the visibility timeout; the
redelivered note may then run up to the time limit. With the old defaults (visibility =
result timeout = 3600 s) the front end gave up and revoked the task just before Redis
redelivered it, so a ``kill -9`` of a worker meant a note never answered. Every process
now refuses such a combination at start, in one line, before any model loads.

And when the workers cannot be reached the JSON API says 503 with ``Retry-After``, like
``busy``: a passing state, not the upload's fault.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from adapters.web.app import running_web
from app.wiring import open_service
from bot.core.service import AnalysisService
from bot.ops.settings import Settings
from tests.audio_factory import speech_file
from tests.conftest import REPO, make_settings
from tests.redis_fixture import free_port

RELATION = ("VOICEMOOD_BROKER_RESULT_TIMEOUT_S must be longer than "
            "VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S + VOICEMOOD_TASK_TIME_LIMIT_S")


def test_the_defaults_leave_room_for_a_redelivered_note() -> None:
    s = Settings(_env_file=None)
    assert (s.task_time_limit_s, s.broker_visibility_timeout_s,
            s.broker_result_timeout_s) == (900.0, 1200.0, 3600.0)
    # Given out again at 1200 s, done by 2100 s at the latest: the front end still waits.
    assert s.broker_visibility_timeout_s + s.task_time_limit_s < s.broker_result_timeout_s


@pytest.mark.parametrize("visibility, limit, result", [
    (3600, 900, 3600),   # the old shipped defaults
    (1200, 900, 2100),   # exactly at the edge: the redelivered note could still be running
])
def test_a_result_timeout_inside_visibility_plus_time_limit_is_refused(
        visibility: int, limit: int, result: int) -> None:
    with pytest.raises(ValidationError, match=re.escape(RELATION)):
        Settings(_env_file=None, broker_visibility_timeout_s=visibility,
                 task_time_limit_s=limit, broker_result_timeout_s=result)


def test_env_example_values_pass_the_check() -> None:
    names = ("VOICEMOOD_TASK_TIME_LIMIT_S", "VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S",
             "VOICEMOOD_BROKER_RESULT_TIMEOUT_S")
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name in names:
            values[name] = float(value)
    assert values == {"VOICEMOOD_TASK_TIME_LIMIT_S": 900.0,
                      "VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S": 1200.0,
                      "VOICEMOOD_BROKER_RESULT_TIMEOUT_S": 3600.0}


def test_worker_refuses_the_old_defaults_in_one_line_before_loading_models(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VOICEMOOD_", "TELEGRAM_", "SLACK_"))}
    env.update({"VOICEMOOD_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
                "VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S": "3600",
                "VOICEMOOD_BROKER_RESULT_TIMEOUT_S": "3600",
                "VOICEMOOD_DB": str(tmp_path / "w.db")})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"voicemood: invalid settings: {RELATION} (a note whose worker died is handed out "
        "again only after the visibility timeout)"]
    assert done.stdout == ""
    assert time.monotonic() - started < 60  # no model was loaded (that takes far longer here)


@pytest.fixture
async def unreachable_broker(tmp_path: Path) -> AsyncIterator[tuple[str, AnalysisService]]:
    """A front end in scale-out mode whose Redis is down (nothing listens on its port),
    serving the web API on a free loopback port."""
    settings = make_settings(tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0",
                             web_host="127.0.0.1")
    service = await open_service(settings)
    try:
        async with running_web(service, settings, port=0) as web:
            yield web.url, service
    finally:
        await service.close()


async def test_unavailable_workers_are_503_with_retry_after(
        tmp_path: Path, unreachable_broker: tuple[str, AnalysisService]) -> None:
    url, _ = unreachable_broker
    clip = speech_file(tmp_path, "Is anybody there?", "ogg").read_bytes()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        reply = await client.post("/api/analyze", files={"file": ("note.ogg", clip)})
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "60"
    assert reply.json()["error"] == {
        "code": "unavailable",
        "message": "the model workers cannot be reached right now; try again later"}
