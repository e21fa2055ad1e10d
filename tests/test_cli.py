"""The ``voicemood`` console script, run as a real subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from bench.scoring import wer_en
from tests.audio_factory import speech_file, tone_or_silence
from tests.conftest import MODELS_DIR

FORCED_OFFLINE = {
    "VOICEMOOD_ASR_BACKEND": "whisper",
    "VOICEMOOD_TEXT_EMOTION_BACKEND": "lexicon",
    "VOICEMOOD_VOICE_EMOTION_BACKEND": "prosody",
}


def run_cli(args: list[str], tmp_path: Path, timeout: float = 240,
            **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VOICEMOOD_", "TELEGRAM_", "SLACK_"))}
    env.update({"VOICEMOOD_DB": str(tmp_path / "cli.db"),
                "VOICEMOOD_MODELS_DIR": str(MODELS_DIR), "VOICEMOOD_DEVICE": "cpu"})
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands(tmp_path: Path) -> None:
    out = run_cli(["--help"], tmp_path)
    assert out.returncode == 0
    for command in ("analyze", "serve", "web", "trend", "models", "bench"):
        assert command in out.stdout
    out = run_cli(["analyze", "--help"], tmp_path)
    assert "--json" in out.stdout and "--user" in out.stdout


def test_analyze_json_reports_each_file(tmp_path: Path) -> None:
    good = speech_file(tmp_path, "Thank you, I feel great about the new project.", "m4a")
    silent = tone_or_silence(tmp_path, "silence", 2.0, "ogg")
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not audio\n" * 40)
    missing = tmp_path / "missing.ogg"
    out = run_cli(["analyze", "--json", "--user", "alice", str(good), str(silent), str(junk),
                   str(missing)], tmp_path, **FORCED_OFFLINE)
    assert out.returncode == 1, out.stderr  # some files failed
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(silent), str(junk), str(missing)]
    ok = lines[0]
    assert {"transcript", "language", "duration_s", "emotion", "models", "timings"} <= set(ok)
    assert "great" in ok["transcript"].lower() and ok["language"] == "en"
    emo = ok["emotion"]
    assert emo["label"] in ("positive", "negative", "neutral", "excited")
    assert 0.0 <= emo["confidence"] <= 1.0
    assert emo["text"]["label"] == "positive"
    assert set(emo["text"]["scores"]) == {"positive", "negative", "neutral", "excited"}
    assert {"label", "arousal", "scores"} <= set(emo["voice"])
    assert 0.0 <= emo["voice"]["arousal"] <= 1.0
    assert ok["models"]["asr"].startswith("whisper-base")
    assert ok["timings"]["total"] > 0
    assert [line["error"]["code"] for line in lines[1:]] == ["silent", "not_audio", "not_found"]
    assert all(line["error"]["message"] for line in lines[1:])
    # Only the good file is in alice's history.
    with contextlib.closing(sqlite3.connect(tmp_path / "cli.db")) as con:
        rows = con.execute("SELECT user_id, platform, transcript FROM analyses").fetchall()
    assert len(rows) == 1 and rows[0][:2] == ("alice", "cli")
    assert rows[0][2] == ok["transcript"]


SENTENCES = ["The garden was quiet this morning.", "I finished the report before lunch.",
             "We are meeting again on Friday.", "The train was late again today.",
             "My sister called me last night."]


def test_analyze_sends_the_files_through_the_models_together_and_answers_in_order(
        tmp_path: Path) -> None:
    notes = [speech_file(tmp_path, text, "ogg", name=f"n{i}") for i, text in
             enumerate(SENTENCES)]
    out = run_cli(["analyze", "--json", *map(str, notes)], tmp_path, **FORCED_OFFLINE)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(n) for n in notes]
    for text, line in zip(SENTENCES, lines, strict=True):
        assert wer_en([text], [line["transcript"]]) <= 0.34, (text, line["transcript"])
    # Several files shared a batch of the models: they were in flight together.
    assert max(line["timings"]["batch_size"] for line in lines) >= 2
    # Recorded in the order of the files, so each tag was read against the notes before it.
    with contextlib.closing(sqlite3.connect(tmp_path / "cli.db")) as con:
        stored = [row[0] for row in con.execute("SELECT transcript FROM analyses ORDER BY id")]
    assert stored == [line["transcript"] for line in lines]

    one_by_one = run_cli(["analyze", "--json", "--no-store", "--jobs", "1",
                          *map(str, notes[:2])], tmp_path, **FORCED_OFFLINE)
    assert one_by_one.returncode == 0, one_by_one.stderr
    alone = [json.loads(line) for line in one_by_one.stdout.splitlines()]
    assert [line["timings"]["batch_size"] for line in alone] == [1, 1]
    assert [line["transcript"] for line in alone] == [line["transcript"] for line in lines[:2]]


def test_analyze_waits_for_its_own_files_when_it_fills_the_queue(tmp_path: Path) -> None:
    # A queue of one note: the other files of the run are told "busy" while the first is
    # analysed, and wait for it instead of failing.
    notes = [speech_file(tmp_path, text, "ogg", name=f"n{i}") for i, text in
             enumerate(SENTENCES[:3])]
    out = run_cli(["analyze", "--json", "--no-store", *map(str, notes)], tmp_path,
                  VOICEMOOD_QUEUE_SIZE="1", **FORCED_OFFLINE)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(n) for n in notes]
    assert all("error" not in line for line in lines)


def test_analyze_refuses_a_jobs_count_below_one(tmp_path: Path) -> None:
    out = run_cli(["analyze", "--jobs", "0", "missing.ogg"], tmp_path)
    assert out.returncode == 2
    assert "--jobs: expected a whole number of at least 1, not '0'" in out.stderr


def test_analyze_human_output_and_trend(tmp_path: Path) -> None:
    note = speech_file(tmp_path, "Today was a calm and ordinary day.", "wav")
    out = run_cli(["analyze", str(note)], tmp_path, **FORCED_OFFLINE)
    assert out.returncode == 0, out.stderr
    assert "ordinary" in out.stdout.lower()
    assert " / " in out.stdout and "·" in out.stdout  # "😐 中性 / neutral · 0.80"
    trend = run_cli(["trend", "--user", "local", "--days", "7d"], tmp_path)
    assert trend.returncode == 0, trend.stderr
    assert "1 note" in trend.stdout
    bad = run_cli(["trend", "--days", "forever"], tmp_path)
    assert bad.returncode == 2
    assert "forever" in bad.stderr or "7d" in bad.stderr


def test_models_status_shows_tiers(tmp_path: Path) -> None:
    out = run_cli(["models", "status"], tmp_path)
    assert out.returncode == 0
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert "offline" in lines["asr"] and "whisper" in lines["asr"]
    assert "offline" in lines["text_emotion"] and "lexicon" in lines["text_emotion"]
    assert "offline" in lines["voice_emotion"] and "prosody" in lines["voice_emotion"]
    off = run_cli(["models", "status"], tmp_path, VOICEMOOD_VOICE_EMOTION_BACKEND="off")
    assert "off" in [line.split()[1] for line in off.stdout.splitlines()
                     if line.startswith("voice_emotion")]
    local = tmp_path / "my-paraformer"
    local.mkdir()
    (local / "config.yaml").write_text("model: Paraformer\n")
    full = run_cli(["models", "status"], tmp_path, VOICEMOOD_ASR_MODEL=str(local))
    asr = next(line for line in full.stdout.splitlines() if line.startswith("asr"))
    assert "full" in asr and str(local) in asr


def test_bad_setting_is_reported(tmp_path: Path) -> None:
    out = run_cli(["models", "status"], tmp_path, VOICEMOOD_DEVICE="tpu")
    assert out.returncode == 2
    assert "VOICEMOOD_DEVICE" in out.stderr


def test_a_database_from_a_newer_voicemood_is_refused_and_the_process_exits(
        tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "cli.db")) as con:
        con.execute("PRAGMA user_version = 999")
        con.commit()
    # Before the fix the refused open left its SQLite thread running and the process hung
    # after printing the error: subprocess.run's timeout turns that into a failure here.
    out = run_cli(["trend", "--user", "u", "--days", "7"], tmp_path, timeout=60)
    assert out.returncode != 0
    assert "newer than this voicemood" in out.stderr


# `serve` without a bot token runs the web page: tests/test_web_api.py
# (test_serve_without_a_bot_runs_the_page, test_refuses_public_address_without_logins).


def test_models_download_without_network_fails_clearly(tmp_path: Path) -> None:
    out = run_cli(["models", "download", "--component", "asr"], tmp_path, timeout=120)
    assert out.returncode == 1
    assert "voicemood models download:" in out.stderr
    assert "Traceback" not in out.stderr
