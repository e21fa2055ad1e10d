"""Shared fixtures: one real offline-tier engine per test session, fresh databases per test."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.core.service import AnalysisService
from bot.ops.settings import Settings
from inference.engine import InferenceEngine

REPO = Path(__file__).resolve().parent.parent
#: The real recordings (../shared/data beside the checkout; VOICEMOOD_SHARED_DATA moves it,
#: e.g. to a missing folder to try what a fresh clone sees).
SHARED_DATA = Path(os.environ.get("VOICEMOOD_SHARED_DATA", REPO.parent / "shared" / "data"))
#: Set by .ci/run: there a test that needs the recordings must run, never skip.
REQUIRE_SHARED = os.environ.get("VOICEMOOD_REQUIRE_SHARED", "") not in ("", "0")
SHARED_REASON = f"needs the recordings in ../shared/data ({SHARED_DATA} is absent)"
#: Assembled Whisper weights are cached here across test runs (git-ignored).
MODELS_DIR = Path(os.environ.get("VOICEMOOD_TEST_MODELS_DIR", REPO / "models"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared_data") is not None and not SHARED_DATA.is_dir():
        pytest.skip(SHARED_REASON)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under VOICEMOOD_REQUIRE_SHARED=1 a skipped shared-data test is a failure, so CI
    (which has the data) proves every one of them rather than silently skipping."""
    report = yield
    if REQUIRE_SHARED and report.skipped and _needs_shared(item, report):
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} needs ../shared/data and was skipped "
                           f"({_skip_reason(report)}), but VOICEMOOD_REQUIRE_SHARED is set")
    return report


def _needs_shared(item: pytest.Item, report: pytest.TestReport) -> bool:
    return item.get_closest_marker("shared_data") is not None or "shared/data" in _skip_reason(
        report)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


#: aiosqlite names its worker threads after their function (Python's "Thread-N (target)").
SQLITE_THREAD = "_connection_worker_thread"


def sqlite_threads() -> list[threading.Thread]:
    """The live aiosqlite worker threads: one per store (connection) not closed yet."""
    return [t for t in threading.enumerate() if SQLITE_THREAD in t.name and t.is_alive()]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Backstop for a store a test left open (a fixture should have closed it).

    aiosqlite's worker thread is not a daemon: one left waiting keeps the interpreter from
    exiting after pytest has reported everything, so a single failing test would hang the
    run until CI's limit. Such threads are told to stop here and named in the output.
    """
    leaked = sqlite_threads()
    if not leaked:
        return
    from aiosqlite import core

    for thread in leaked:
        # The thread's only argument is its job queue; this job makes it return.
        queue = getattr(thread, "_args", (None,))[0]
        if queue is not None:
            queue.put_nowait((None, lambda: core._STOP_RUNNING_SENTINEL))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"warning: {len(leaked)} SQLite store(s) left open by the tests "
                            "were stopped at the end of the run; a fixture should close them",
                            yellow=True)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """Put the root logger back as it was after each test.

    A test that runs the CLI in-process gets ``setup_logging``'s handler on the
    ``sys.stderr`` of that moment, which is pytest's capture file; left in place, every
    later log line would write to that closed file and print "--- Logging error ---".
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def shared_data() -> Path:
    """The folder of real recordings; the test is skipped (with the reason) without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_REASON)
    return SHARED_DATA


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Offline-tier settings with a fresh database under ``tmp_path``.

    The full-tier model ids are blanked so that a developer's downloaded models never
    change what the tests exercise.
    """
    values: dict[str, object] = {
        "db": tmp_path / "voicemood.db",
        "models_dir": MODELS_DIR,
        "device": "cpu",
        "asr_backend": "whisper",
        "text_emotion_backend": "lexicon",
        "voice_emotion_backend": "prosody",
        "batch_wait_ms": 20,
        "_env_file": None,
    }
    values.update(overrides)
    env_file = values.pop("_env_file")
    return Settings(_env_file=env_file, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp folder that lives for the whole session."""
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
async def engine(session_tmp: Path) -> AsyncIterator[InferenceEngine]:
    """The real offline-tier engine (Whisper base + lexicons + prosody), loaded once."""
    eng = InferenceEngine(make_settings(session_tmp))
    await eng.start()
    yield eng
    await eng.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Offline-tier settings with a fresh database file in this test's temp folder."""
    return make_settings(tmp_path)


@pytest.fixture
async def service(settings: Settings, engine: InferenceEngine) -> AsyncIterator[AnalysisService]:
    """An AnalysisService on a fresh SQLite file, sharing the session's engine."""
    svc = await AnalysisService.create(settings, engine=engine)
    yield svc
    await svc.close(close_engine=False)
