"""Slack files acknowledged but not answered survive a restart (issue 10, "nothing lost,
nothing twice"): the real Bolt app behind ``serve_slack``, the fake Slack of
tests/fake_slack.py, the offline-tier models and one SQLite file shared by two runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.analysis import Sender
from bot.core.pending import PendingNotes, ResumeReport
from bot.core.service import AnalysisService
from bot.storage.history import HistoryStore
from tests.audio_factory import speech_file
from tests.conftest import make_settings
from tests.fake_slack import FakeSlack
from tests.test_slack import (
    ALICE,
    CHANNEL,
    Harness,
    assert_shows_analysis,
    file_event,
    posts,
    running,
)

APOLOGY = ("Sorry — I was restarted while your voice note was waiting and it is too old to "
           "analyse now. Please send it again.")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A short real recording, as Slack's clips come (m4a)."""
    tmp = tmp_path_factory.mktemp("slack_pending_audio")
    return speech_file(tmp, "I am so happy today, this is wonderful.", "m4a",
                       name="happy").read_bytes()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    """A fresh fake Slack per test, shared by both runs of the test."""
    f = await FakeSlack().start()
    yield f
    if f.hold_downloads is not None:
        f.hold_downloads.set()  # let a download the first run left hanging end
    await f.stop()


@pytest.fixture
async def earlier_store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    """The database file the test's runs use, as an earlier run had it open."""
    store = await HistoryStore.open(make_settings(tmp_path).db)
    yield store
    await store.close()


async def resumed(h: Harness) -> ResumeReport:
    """Wait (bounded) for the run's sweep of pending files; what it did."""
    assert h.bot.resumer is not None, "serve_slack started no resume sweep"
    async with asyncio.timeout(90):
        return await h.bot.resumer


def pending_notes(service: AnalysisService) -> PendingNotes:
    """The service's pending-notes repository."""
    return service.store.pending


def add_clip(fake: FakeSlack, file_id: str, data: bytes, ts: str) -> dict[str, Any]:
    return fake.add_file(file_id, data, name="audio_message.m4a", mimetype="audio/mp4",
                         filetype="m4a", user=ALICE, channel=CHANNEL, ts=ts,
                         subtype="slack_audio", duration_ms=3200)


async def test_a_file_acked_before_a_crash_is_answered_once_by_the_next_run(
        tmp_path: Path, engine: Any, fake: FakeSlack, clip: bytes) -> None:
    ts = "1700000101.000100"
    file = add_clip(fake, "F1PEND", clip, ts)
    sender = Sender("slack", ALICE, CHANNEL, "F1PEND")
    fake.hold_downloads = asyncio.Event()  # the first run never gets to the analysis
    async with running(tmp_path, engine, fake, working_after_s=60) as first:
        assert (await first.event(file_event(file, ts=ts))).status == 200
        # Acknowledged, and already on record with what fetching it again takes.
        note = await pending_notes(first.service).get(sender)
        assert note is not None
        assert note.ref["url_private_download"] == (
            f"{fake.url}/files-pri/F1PEND/download/audio_message.m4a")
        assert note.ref["thread_ts"] == ts
        await fake.wait_for(lambda: fake.calls_to("download"), what="the first download")
    # The first run stopped mid-download (its work cancelled): nothing was answered.
    assert posts(fake) == []
    fake.hold_downloads.set()
    fake.hold_downloads = None

    async with running(tmp_path, engine, fake, working_after_s=60) as second:
        assert (await resumed(second)).answered == 1
        await fake.wait_for(lambda: posts(fake), what="the resumed answer")
        # Slack's retry of the same event arriving afterwards is not answered again.
        assert (await second.event(file_event(file, ts=ts), retry=1)).status == 200
        await second.settle()

        stored = await second.service.store.get_by_message("slack", CHANNEL, "F1PEND")
        assert stored is not None and stored.sender.user_id == ALICE
        [reply] = posts(fake)
        assert reply["channel"] == CHANNEL and reply["thread_ts"] == ts
        assert_shows_analysis(reply["text"], stored)
        assert await second.service.count("slack", ALICE) == 1
        assert await pending_notes(second.service).count() == 0
        assert len(fake.calls_to("download")) == 2  # the lost one and the resumed one


async def test_an_old_pending_file_gets_the_apology_and_is_done(
        tmp_path: Path, engine: Any, fake: FakeSlack, clip: bytes,
        earlier_store: HistoryStore) -> None:
    ts = "1700000102.000100"
    file = add_clip(fake, "F2OLD", clip, ts)
    # What an earlier run wrote when Slack delivered the file two hours ago, then died.
    assert await earlier_store.pending_as("earlier-run").record(
        Sender("slack", ALICE, CHANNEL, "F2OLD"),
        {"file_id": "F2OLD", "url_private_download": file["url_private_download"],
         "channel": CHANNEL, "user": ALICE, "thread_ts": ts, "direct": False},
        received_at=time.time() - 7200)

    async with running(tmp_path, engine, fake, pending_max_age_s=3600) as h:
        report = await resumed(h)
        assert report.apologised == 1
        assert posts(fake) == [{"channel": CHANNEL, "thread_ts": ts, "text": APOLOGY,
                                "unfurl_links": False, "unfurl_media": False}]
        assert fake.calls_to("download") == []
        assert await h.service.count("slack", ALICE) == 0
        assert await pending_notes(h.service).count() == 0


async def test_an_answered_file_is_not_resumed(tmp_path: Path, engine: Any, fake: FakeSlack,
                                               clip: bytes) -> None:
    ts = "1700000103.000100"
    file = add_clip(fake, "F3DONE", clip, ts)
    async with running(tmp_path, engine, fake, working_after_s=60) as first:
        await first.event(file_event(file, ts=ts))
        await fake.wait_for(lambda: posts(fake), what="the answer")
        await first.settle()
        # Slack's retry of the answered event must not leave the file on record again.
        await first.event(file_event(file, ts=ts), retry=1)
        await first.settle()
        assert await pending_notes(first.service).count() == 0

    async with running(tmp_path, engine, fake, working_after_s=60) as second:
        assert await resumed(second) == ResumeReport()
        assert len(posts(fake)) == 1
        assert len(fake.calls_to("download")) == 1
        assert await second.service.count("slack", ALICE) == 1
