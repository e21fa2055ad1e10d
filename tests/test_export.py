"""Export of one person's history (bot/export.py) and ``voicemood export``: real SQLite
files seeded with stored rows, the output compared byte for byte with literals."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.cli import main
from bot.journal.export import ExportInProgress, ExportStream, exclusive, iter_rows, open_export
from bot.storage.history import HistoryStore
from tests.journal_seed import row, seed

# 2026-11-20T01:30:00Z and 2026-11-21T15:45:30Z
T1, T2 = 1795138200.0, 1795275930.0
ZH = "今天很开心，我们去公园了。"
EN = 'She said "fine, thanks"\nthen left.'

ALICE_CSV = (
    "\ufefftime,duration_s,tag,confidence,valence,arousal,text_label,voice_label,language,"
    "transcript\r\n"
    f"2026-11-20T09:30:00+08:00,3.25,positive,0.91,0.62,0.55,positive,happy,zh,{ZH}\r\n"
    '2026-11-21T23:45:30+08:00,12.0,neutral,0.5,0.0,0.2,neutral,,en,'
    '"She said ""fine, thanks""\nthen left."\r\n'
).encode()

ALICE_JSON = [
    {"time": "2026-11-20T09:30:00+08:00", "duration_s": 3.25, "tag": "positive",
     "confidence": 0.91, "valence": 0.62, "arousal": 0.55, "text_label": "positive",
     "voice_label": "happy", "language": "zh", "transcript": ZH},
    {"time": "2026-11-21T23:45:30+08:00", "duration_s": 12.0, "tag": "neutral",
     "confidence": 0.5, "valence": 0.0, "arousal": 0.2, "text_label": "neutral",
     "voice_label": None, "language": "en", "transcript": EN},
]


@pytest.fixture
async def store(tmp_path: Path):
    """A history file holding Alice's two notes, Bob's note and Alice's Slack note."""
    async with await HistoryStore.open(tmp_path / "voicemood.db") as s:
        await seed(s, [
            row("telegram", "1001", "m1", T1, ZH, "positive", language="zh", valence=0.62,
                confidence=0.91, arousal=0.55, duration_s=3.25, voice_label="happy"),
            row("telegram", "1002", "b1", T1 + 60, "bob's secret note", "negative"),
            row("telegram", "1001", "m2", T2, EN, "neutral", valence=0.0, confidence=0.5,
                arousal=0.2, duration_s=12.0, voice_label=None),
            row("slack", "1001", "s1", T1 + 120, "same id, other platform", "excited"),
        ])
        yield s


async def _collect(stream: ExportStream) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_csv_is_the_persons_rows_with_bom_iso_times_and_chinese(store):
    data = await _collect(ExportStream(store, "telegram", "1001", "csv", "Asia/Shanghai"))
    assert data == ALICE_CSV
    assert b"bob" not in data and b"other platform" not in data


async def test_json_holds_the_same_records(store):
    stream = ExportStream(store, "telegram", "1001", "json", "Asia/Shanghai")
    data = await _collect(stream)
    assert json.loads(data) == ALICE_JSON
    assert ZH.encode() in data  # readable UTF-8, not \u escapes
    assert stream.rows == 2


async def test_empty_history_exports_a_valid_empty_file(store):
    assert json.loads(await _collect(ExportStream(store, "telegram", "999", "json", "UTC"))) == []
    csv_data = await _collect(ExportStream(store, "telegram", "999", "csv", "UTC"))
    assert csv_data == ("\ufefftime,duration_s,tag,confidence,valence,arousal,text_label,"
                        "voice_label,language,transcript\r\n").encode()


async def test_pages_cut_between_equal_times_lose_and_repeat_nothing(tmp_path):
    s = await HistoryStore.open(tmp_path / "paged.db")
    try:
        # Five notes, three at the very same second: pages of two cut inside that second.
        times = [100.0, 200.0, 200.0, 200.0, 300.0]
        await seed(s, [row("telegram", "7", f"p{i}", t, f"note {i}")
                       for i, t in enumerate(times)])
        pages = [page async for page in iter_rows(s, "telegram", "7", page=2)]
        assert [[r[-1] for r in p] for p in pages] == [
            ["note 0", "note 1"], ["note 2", "note 3"], ["note 4"]]
        stream = ExportStream(s, "telegram", "7", "json", "UTC", page=2)
        chunks = [c async for c in stream]
        assert len(chunks) == 5  # "[", three pages, "]": encoded page by page
        assert [r["transcript"] for r in json.loads(b"".join(chunks))] == [
            "note 0", "note 1", "note 2", "note 3", "note 4"]
    finally:
        await s.close()


async def test_days_keeps_only_the_last_calendar_days(store):
    # "Now" is 2026-11-22 10:00 in Shanghai: the last 2 days are the 21st and 22nd.
    now = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    async with open_export(store, "telegram", "1001", "json", "Asia/Shanghai", days=2,
                           now=now) as exp:
        assert exp.rows == 1
        assert exp.filename == "voicemood-telegram-1001-20261122.json"
        assert [r["time"] for r in json.loads(exp.file.read())] == [
            "2026-11-21T23:45:30+08:00"]


async def test_one_export_per_person_at_a_time(store):
    async with open_export(store, "telegram", "1001", "csv", "Asia/Shanghai") as exp:
        assert exp.file.read() == ALICE_CSV
        with pytest.raises(ExportInProgress):
            async with open_export(store, "telegram", "1001", "csv", "UTC"):
                pass
        async with open_export(store, "telegram", "1002", "csv", "UTC") as other:
            assert other.rows == 1  # someone else is not held up
    async with exclusive("telegram", "1001"):  # released afterwards
        pass


def test_cli_writes_the_file_and_refuses_bad_arguments(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOICEMOOD_DB", str(tmp_path / "voicemood.db"))
    monkeypatch.setenv("VOICEMOOD_TZ", "Asia/Shanghai")
    out = tmp_path / "out" / "alice.csv"
    rc = main(["export", "--user", "1001", "--platform", "telegram", "-o", str(out)])
    assert rc == 0
    assert out.read_bytes() == ALICE_CSV
    assert not out.with_name("alice.csv.part").exists()
    assert capsys.readouterr().err.endswith(f"2 analyses exported to {out}\n")

    assert main(["export", "--user", "1001", "--platform", "telegram", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == ALICE_JSON

    assert main(["export", "--user", "1001", "--days", "0"]) == 2
    assert "between 1 and 365" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--user", "1001", "--format", "xlsx"])
    assert main(["export", "--user", "  "]) == 2


async def test_cli_refuses_while_the_person_is_exporting(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOICEMOOD_DB", str(tmp_path / "voicemood.db"))
    async with exclusive("telegram", "1001"):
        rc = await asyncio.to_thread(
            main, ["export", "--user", "1001", "--platform", "telegram"])
    assert rc == 1
    assert "already running" in capsys.readouterr().err
