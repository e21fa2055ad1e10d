"""Refusals at start and what the command line shows, run as real subprocesses.

Every bad setting ends the command in one line on standard error, with a non-zero exit
status, before any model loads (so within seconds, not after the minute a model load
can take). Each subprocess runs under a timeout: a command that hangs fails its test
instead of hanging the run.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.device import cuda_available
from tests.test_cli import run_cli as cli_in_clean_env

FORCED_OFFLINE = {
    "VOICEMOOD_ASR_BACKEND": "whisper",
    "VOICEMOOD_TEXT_EMOTION_BACKEND": "lexicon",
    "VOICEMOOD_VOICE_EMOTION_BACKEND": "prosody",
}
#: A refusal at start comes before the models load: seconds, even on a busy machine.
REFUSAL_TIMEOUT_S = 60
#: Commands that load models: generous, the offline tier loads in ~20 s on 2 busy cores.
LOADING_TIMEOUT_S = 240


def run_cli(args: list[str], tmp_path: Path, timeout: float = REFUSAL_TIMEOUT_S,
            **env_extra: str) -> subprocess.CompletedProcess[str]:
    """``voicemood ARGS`` in ``tmp_path`` with a clean environment (test_cli's helper), with
    this file's shorter default wait: a refusal must come before the models load."""
    return cli_in_clean_env(args, tmp_path, timeout, **env_extra)


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- item 1: a device that cannot be honoured; a model load that fails --------------------

@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", [["analyze", "x.wav"], ["web"], ["serve"]])
def test_cuda_without_a_gpu_is_refused_at_start(tmp_path: Path, command: list[str]) -> None:
    out = run_cli(command, tmp_path, VOICEMOOD_DEVICE="cuda")
    assert out.returncode == 2
    assert out.stderr == (f"voicemood {command[0]}: VOICEMOOD_DEVICE=cuda but no CUDA device "
                          "is available here; use VOICEMOOD_DEVICE=cpu (or auto)\n")
    assert out.stdout == ""


@pytest.mark.parametrize("command", [["analyze", "x.wav"], ["web"]])
def test_a_failed_model_load_ends_the_process_in_one_line(tmp_path: Path,
                                                          command: list[str]) -> None:
    # The Whisper folder is checked only while loading, after the history is opened: this
    # used to print a traceback and then hang (the database thread kept the process alive).
    empty = tmp_path / "no-whisper"
    empty.mkdir()
    out = run_cli(command, tmp_path, timeout=LOADING_TIMEOUT_S, **FORCED_OFFLINE,
                  VOICEMOOD_WHISPER_MODEL=str(empty), VOICEMOOD_WEB_PORT=str(free_port()))
    assert out.returncode == 1
    assert out.stderr.endswith(f"voicemood {command[0]}: cannot load the models: "
                               f"VOICEMOOD_WHISPER_MODEL={empty} holds no CTranslate2 "
                               "model.bin\n"), out.stderr
    assert "Traceback" not in out.stderr


def test_a_gpu_index_the_machine_lacks_is_refused() -> None:
    from inference.device import resolve_device

    assert resolve_device("cuda:1", count=2) == "cuda:1"
    with pytest.raises(RuntimeError) as caught:
        resolve_device("cuda:2", count=2)
    assert str(caught.value) == ("VOICEMOOD_DEVICE=cuda:2 but this machine has 2 CUDA "
                                 "device(s) (cuda:0 to cuda:1)")


# --- item 6: an unknown time zone ---------------------------------------------------------

def test_an_unknown_time_zone_is_refused_at_start(tmp_path: Path) -> None:
    out = run_cli(["web"], tmp_path, VOICEMOOD_TZ="Mars/Olympus")
    assert out.returncode == 2
    assert out.stderr == ("voicemood: invalid settings: VOICEMOOD_TZ='Mars/Olympus' is not a "
                          "known time zone; use an IANA name like UTC, Europe/Berlin or "
                          "Asia/Shanghai\n")
    assert out.stdout == ""


def test_a_bad_setting_is_one_line_without_its_value(tmp_path: Path) -> None:
    # Pydantic's own report spans four lines and repeats the input, which may be a secret.
    out = run_cli(["analyze", "x.wav"], tmp_path, VOICEMOOD_RETENTION_DAYS="-3")
    assert out.returncode == 2
    assert out.stderr == ("voicemood: invalid settings: VOICEMOOD_RETENTION_DAYS: Input should "
                          "be greater than or equal to 0\n")


# --- item 17: a login listed twice --------------------------------------------------------

def test_a_login_listed_twice_is_refused_at_start(tmp_path: Path) -> None:
    out = run_cli(["web"], tmp_path, VOICEMOOD_WEB_USERS="alice:pw1,bob:pw3,alice:pw2")
    assert out.returncode == 2
    assert out.stderr == ("voicemood web: VOICEMOOD_WEB_USERS: user 'alice' is listed twice; "
                          "give each login once (one password per user)\n")
    assert "pw1" not in out.stderr and "pw2" not in out.stderr


def test_an_htpasswd_file_with_a_user_twice_is_refused(tmp_path: Path) -> None:
    import bcrypt

    from adapters.web.auth import WebAccessError, parse_users

    entry = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    htpasswd = tmp_path / "users.htpasswd"
    htpasswd.write_text(f"alice:{entry}\nbob:{entry}\nalice:{entry}\n")
    with pytest.raises(WebAccessError) as caught:
        parse_users(str(htpasswd))
    assert str(caught.value) == (f"VOICEMOOD_WEB_USERS: {htpasswd} line 3: user 'alice' is "
                                 "listed twice; give each login once (one password per user)")


# --- item 16: a port in use ---------------------------------------------------------------

@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process would hold: listening on 127.0.0.1 for the test's length."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_a_web_port_in_use_is_refused_before_the_models_load(tmp_path: Path,
                                                              busy_port: int) -> None:
    out = run_cli(["web"], tmp_path, VOICEMOOD_WEB_PORT=str(busy_port))
    assert out.returncode == 2
    assert out.stderr == (f"voicemood web: VOICEMOOD_WEB_PORT: port {busy_port} on 127.0.0.1 "
                          "is already in use; stop what holds it or choose another port\n")
    assert "models loaded" not in out.stdout + out.stderr


def test_a_metrics_port_in_use_is_refused_before_the_models_load(tmp_path: Path,
                                                                  busy_port: int) -> None:
    # serve without a bot token runs the page; the health server would listen on every
    # interface, which the port held on 127.0.0.1 blocks too.
    out = run_cli(["serve"], tmp_path, VOICEMOOD_WEB_PORT=str(free_port()),
                  VOICEMOOD_METRICS_PORT=str(busy_port), VOICEMOOD_METRICS_HOST="0.0.0.0")
    assert out.returncode == 2
    assert out.stderr == (f"voicemood serve: VOICEMOOD_METRICS_PORT: port {busy_port} on "
                          "0.0.0.0 is already in use; stop what holds it or choose another "
                          "port\n")


# --- item 7: progress on standard error, results alone on standard output ------------------

def test_analyze_shows_progress_on_stderr_and_keeps_stdout_json(tmp_path: Path) -> None:
    from tests.audio_factory import speech_file

    note = speech_file(tmp_path, "I am very happy today.", "wav")
    missing = tmp_path / "missing.ogg"
    out = run_cli(["analyze", "--json", "--no-store", str(note), str(missing)], tmp_path,
                  timeout=LOADING_TIMEOUT_S, **{**FORCED_OFFLINE,
                                                "VOICEMOOD_VOICE_EMOTION_BACKEND": "off"})
    assert out.returncode == 1, out.stderr  # the missing file failed
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(note), str(missing)]
    assert lines[1]["error"]["code"] == "not_found"
    # Not a terminal: plain lines, in order, and no bar or escape codes.
    err = out.stderr
    loading = err.index("voicemood: loading models…\n")
    first = err.index(f"[1/2] {note}\n")
    second = err.index(f"[2/2] {missing}\n")
    assert loading < first < second
    assert "\r" not in err and "\x1b" not in err and "[1/2]" not in out.stdout


class _Terminal(io.StringIO):
    """A standard error that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_is_one_bar_redrawn_in_place() -> None:
    from app.progress import Progress

    stream = _Terminal()
    progress = Progress(2, stream)
    progress.loading()
    progress.start(1, "a.ogg")
    progress.clear()
    progress.start(2, "b.ogg")
    progress.clear()
    progress.clear()  # nothing drawn: nothing to erase
    assert stream.getvalue() == (
        "voicemood: loading models…\n"
        "\r\x1b[K" + "░" * 20 + " [1/2] a.ogg" + "\r\x1b[K"
        "\r\x1b[K" + "█" * 10 + "░" * 10 + " [2/2] b.ogg" + "\r\x1b[K"
    )


def test_on_a_terminal_the_bar_moves_with_the_stages_of_the_note() -> None:
    """Issue #20 item 7: the bar follows the note's real stages, within its file's share."""
    from app.progress import Progress

    stream = _Terminal()
    progress = Progress(2, stream)
    progress.start(2, "b.ogg")
    progress.stage("transcribe", 0.0)  # 20 % of the second half: 1.2 of 2 files
    progress.stage("transcribe", 1.0)  # 85 %
    progress.stage("emotion", 0.0)  # 90 %
    assert stream.getvalue() == (
        "\r\x1b[K" + "█" * 10 + "░" * 10 + " [2/2] b.ogg"
        "\r\x1b[K" + "█" * 12 + "░" * 8 + " [2/2] b.ogg · transcribe"
        "\r\x1b[K" + "█" * 18 + "░" * 2 + " [2/2] b.ogg · transcribe"
        "\r\x1b[K" + "█" * 19 + "░" * 1 + " [2/2] b.ogg · emotion"
    )
    # Off a terminal the stages add nothing: one line per file.
    plain = io.StringIO()
    quiet = Progress(1, plain)
    quiet.start(1, "a.ogg")
    quiet.stage("transcribe", 0.5)
    assert plain.getvalue() == "[1/1] a.ogg\n"


def test_on_a_terminal_only_the_file_shown_moves_the_bar() -> None:
    """Several files are analysed at once; the bar follows the one whose result is next."""
    from app.progress import Progress

    stream = _Terminal()
    progress = Progress(2, stream)
    progress.start(1, "a.ogg")
    progress.stage_of(2)("transcribe", 0.5)  # file 2 is ahead, not shown: no redraw
    progress.stage_of(1)("emotion", 0.0)
    assert stream.getvalue() == (
        "\r\x1b[K" + "░" * 20 + " [1/2] a.ogg"
        "\r\x1b[K" + "█" * 9 + "░" * 11 + " [1/2] a.ogg · emotion"
    )


# --- item 12: one wording of the size limit ------------------------------------------------

def test_sizes_have_one_wording() -> None:
    from bot.wording import human_bytes

    assert human_bytes(52428800) == "50 MB"  # the default VOICEMOOD_MAX_AUDIO_BYTES
    assert human_bytes(20 * 1024 * 1024) == "20 MB"  # Telegram's download limit
    assert human_bytes(1572864) == "1.5 MB"
    assert human_bytes(3072) == "3 KB"
    assert human_bytes(900) == "900 bytes"


def test_the_limit_reads_the_same_in_the_cli_api_refusal_and_the_bot_reply() -> None:
    from bot.ops.settings import Settings
    from bot.wording import error_reply
    from inference.audio import check_size
    from inference.errors import TooLarge

    # check_size's message is what `voicemood analyze` and POST /api/analyze print.
    with pytest.raises(TooLarge) as caught:
        check_size(b"\0" * (60 * 1024 * 1024), 52428800)
    assert caught.value.message == "The file is 60 MB; the limit is 50 MB."
    settings = Settings(_env_file=None, max_audio_bytes=52428800)
    assert error_reply(caught.value, "en", settings) == (
        "That file is too large for me (50 MB). Please send a shorter recording.")


# --- item 15: one name per model -----------------------------------------------------------

async def test_models_status_names_each_model_as_the_running_engine_does(engine) -> None:
    # `models status` prints plan(); the start-up log, the metrics' model label and every
    # stored analysis use the loaded backends' infos(): they must agree.
    from inference.backends import plan

    planned = {i.component: i.model for i in plan(engine.config)}
    running = {i.component: i.model for i in engine.backends.infos()}
    assert planned == running
    assert running["asr"] == "whisper-base (whisper-base)"
    assert running["text_emotion"] == ("words-zh (n-gram model x lexicon), "
                                       "words-en (n-gram model over vaderSentiment)")


# --- item 4: the page's notes from the command line ------------------------------------------

def test_trend_reads_the_web_pages_notes_with_platform_web(tmp_path: Path) -> None:
    import asyncio
    import time

    from bot.storage.history import HistoryStore
    from tests.journal_seed import row, seed

    async def store_notes() -> None:
        store = await HistoryStore.open(tmp_path / "cli.db")
        try:
            now = time.time()
            await seed(store, [row("web", "local", "w1", now - 3600, "from the page"),
                               row("web", "local", "w2", now - 7200, "from the page too"),
                               row("cli", "local", "c1", now - 3600, "from the CLI")])
        finally:
            await store.close()

    asyncio.run(store_notes())
    web = run_cli(["trend", "--user", "local", "--platform", "web"], tmp_path)
    assert web.returncode == 0, web.stderr
    assert web.stdout == "2 notes so far in the last 7 days -- send a few more to see a trend.\n"
    cli = run_cli(["trend", "--user", "local"], tmp_path)
    assert cli.stdout == "1 note so far in the last 7 days -- send a few more to see a trend.\n"


# --- item 10: the benchmark without the recordings --------------------------------------------

BENCH_NEEDS = (
    "The benchmark measures speed and accuracy on labelled recordings: one folder per set "
    "(en_asr, zh_asr_aishell, en_emotion_ravdess), each with its audio files and a "
    "manifest.csv whose columns include file, transcript, language, duration_s (file is "
    "relative to the set's folder). A source checkout finds them in ../shared/data, which is "
    "not part of the repository; point at your own with --data DIR or "
    "VOICEMOOD_SHARED_DATA=DIR.\n")


def test_bench_without_recordings_says_what_they_are_and_how_to_point_at_yours(
        tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    out = run_cli(["bench"], tmp_path, VOICEMOOD_SHARED_DATA=str(nowhere))
    assert out.returncode == 2
    assert out.stderr == (f"bench: recordings not found in {nowhere} (missing: en_asr, "
                          "zh_asr_aishell, en_emotion_ravdess). " + BENCH_NEEDS)
    # --data wins, and a partial folder names only what is missing.
    (tmp_path / "mine" / "en_asr").mkdir(parents=True)
    (tmp_path / "mine" / "en_asr" / "manifest.csv").write_text("file,transcript\n")
    out = run_cli(["bench", "--data", str(tmp_path / "mine")], tmp_path,
                  VOICEMOOD_SHARED_DATA=str(nowhere))
    assert out.returncode == 2
    assert out.stderr == (f"bench: recordings not found in {tmp_path / 'mine'} (missing: "
                          "zh_asr_aishell, en_emotion_ravdess). " + BENCH_NEEDS)
