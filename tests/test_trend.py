"""/trend: numbers, wording, time zones, isolation between users, and the chart.

The history below is seeded into a real SQLite file. All times are UTC; "now" is
Fri 2024-03-15 12:00 UTC, so the 7-day period is Mar 9..15 and the previous one Mar 2..8
(in UTC; in Asia/Shanghai both shift by 8 hours, which moves some notes to other days).
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from app.trend_cli import run_trend_cli
from bot.analysis import Analysis, Sender
from bot.ops.settings import Settings
from bot.storage.history import HistoryStore
from bot.trend import chart as chart_mod
from bot.trend.summary import DayRow, build_trend, parse_period
from inference.types import FusedEmotion, VoiceReading

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# (platform, user, UTC time, tag, valence, seconds, voice label)
HISTORY: list[tuple[str, str, str, str, float, float, str | None]] = [
    # alice: gloomy previous week, better this week -> improving
    ("telegram", "alice", "2024-03-03 10:00", "negative", -0.6, 20, "sad"),
    ("telegram", "alice", "2024-03-05 10:00", "neutral", -0.2, 20, "calm"),
    ("telegram", "alice", "2024-03-07 10:00", "negative", -0.4, 20, "sad"),
    ("telegram", "alice", "2024-03-08 17:00", "neutral", -0.2, 20, "calm"),  # Mar 9 in Shanghai
    ("telegram", "alice", "2024-03-09 10:00", "positive", 0.8, 60, "happy"),
    ("telegram", "alice", "2024-03-09 15:00", "neutral", 0.0, 30, "calm"),
    ("telegram", "alice", "2024-03-10 23:30", "positive", 0.6, 45, "happy"),  # Mar 11 Shanghai
    ("telegram", "alice", "2024-03-11 08:00", "negative", -0.5, 30, "sad"),
    ("telegram", "alice", "2024-03-12 09:00", "excited", 0.5, 15, "happy"),
    ("telegram", "alice", "2024-03-14 20:00", "positive", 0.7, 60, "happy"),  # Mar 15 Shanghai
    ("telegram", "alice", "2024-03-14 21:00", "neutral", 0.1, 60, "calm"),
    # the same user id on Slack is another person: all negative, must never reach alice
    ("slack", "alice", "2024-03-10 12:00", "negative", -0.9, 600, "angry"),
    ("slack", "alice", "2024-03-11 12:00", "negative", -0.9, 600, "angry"),
    ("slack", "alice", "2024-03-12 12:00", "negative", -0.9, 600, "angry"),
    ("slack", "alice", "2024-03-13 12:00", "negative", -0.9, 600, "angry"),
    ("slack", "alice", "2024-03-14 12:00", "negative", -0.9, 600, "angry"),
    # bob: good previous week, worse now -> declining
    ("telegram", "bob", "2024-03-04 09:00", "positive", 0.6, 10, "happy"),
    ("telegram", "bob", "2024-03-05 09:00", "positive", 0.8, 10, "happy"),
    ("telegram", "bob", "2024-03-06 09:00", "excited", 0.4, 10, "surprised"),
    ("telegram", "bob", "2024-03-10 09:00", "neutral", -0.2, 10, "sad"),
    ("telegram", "bob", "2024-03-12 09:00", "negative", -0.6, 10, "angry"),
    ("telegram", "bob", "2024-03-13 09:00", "neutral", 0.1, 10, "sad"),
    # carol: about the same both weeks -> steady; voice tie calm/happy, "unknown" ignored
    ("telegram", "carol", "2024-03-03 09:00", "positive", 0.2, 30, "happy"),
    ("telegram", "carol", "2024-03-04 09:00", "neutral", 0.1, 30, "calm"),
    ("telegram", "carol", "2024-03-06 09:00", "positive", 0.3, 30, "happy"),
    ("telegram", "carol", "2024-03-10 09:00", "positive", 0.3, 30, "happy"),
    ("telegram", "carol", "2024-03-11 09:00", "neutral", 0.2, 30, "calm"),
    ("telegram", "carol", "2024-03-13 09:00", "positive", 0.25, 30, "unknown"),
    ("telegram", "carol", "2024-03-13 10:00", "neutral", 0.25, 30, "unknown"),
    # dave: mostly negative on Mar 13, 14 (exactly half) and 15 -> sustained; nothing before
    ("telegram", "dave", "2024-03-12 09:00", "positive", 0.5, 20, None),
    ("telegram", "dave", "2024-03-13 09:00", "negative", -0.6, 20, None),
    ("telegram", "dave", "2024-03-14 09:00", "negative", -0.7, 20, None),
    ("telegram", "dave", "2024-03-14 10:00", "positive", 0.4, 20, None),
    ("telegram", "dave", "2024-03-15 08:00", "negative", -0.5, 20, None),
    # erin: negative on Mar 11, 12, 14, 15 -- the silent Mar 13 breaks the run
    ("telegram", "erin", "2024-03-11 09:00", "negative", -0.5, 20, "sad"),
    ("telegram", "erin", "2024-03-12 09:00", "negative", -0.5, 20, "sad"),
    ("telegram", "erin", "2024-03-14 09:00", "negative", -0.5, 20, "sad"),
    ("telegram", "erin", "2024-03-15 09:00", "negative", -0.5, 20, "sad"),
    # frank: only two notes this week (plenty the week before)
    ("telegram", "frank", "2024-03-02 09:00", "positive", 0.5, 20, "happy"),
    ("telegram", "frank", "2024-03-03 09:00", "positive", 0.5, 20, "happy"),
    ("telegram", "frank", "2024-03-04 09:00", "positive", 0.5, 20, "happy"),
    ("telegram", "frank", "2024-03-12 09:00", "neutral", 0.0, 20, "calm"),
    ("telegram", "frank", "2024-03-13 09:00", "negative", -0.3, 20, "sad"),
    # gina: enough notes now, but only two the week before -> no direction
    ("telegram", "gina", "2024-03-05 09:00", "positive", 0.5, 20, "happy"),
    ("telegram", "gina", "2024-03-06 09:00", "positive", 0.5, 20, "happy"),
    ("telegram", "gina", "2024-03-12 09:00", "negative", -0.5, 20, "sad"),
    ("telegram", "gina", "2024-03-13 09:00", "neutral", 0.0, 20, "calm"),
    ("telegram", "gina", "2024-03-14 09:00", "positive", 0.5, 20, "happy"),
    # nyc: around the US DST change (Sun Mar 10 2024, 02:00 EST -> 03:00 EDT)
    ("telegram", "nyc", "2024-03-10 04:30", "positive", 0.5, 10, "happy"),  # Mar 9 23:30 EST
    ("telegram", "nyc", "2024-03-10 05:30", "neutral", 0.0, 10, "calm"),  # Mar 10 00:30 EST
    ("telegram", "nyc", "2024-03-11 03:30", "neutral", 0.0, 10, "calm"),  # Mar 10 23:30 EDT
    ("telegram", "nyc", "2024-03-11 04:30", "negative", -0.5, 10, "sad"),  # Mar 11 00:30 EDT
]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def make_note(when: float, tag: str, valence: float, seconds: float, voice: str | None) -> Analysis:
    """An :class:`Analysis` as the pipeline would store it."""
    emotion = FusedEmotion(
        label=tag,
        confidence=0.9,
        valence=valence,
        arousal=0.5,
        text=None,
        voice=None if voice is None else VoiceReading(voice, 0.5, {voice: 0.9}, "test"),
    )
    return Analysis(
        transcript="note",
        language="en",
        duration_s=seconds,
        emotion=emotion,
        models={"asr": "test"},
        timings={},
        created_at=when,
    )


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    """A history file on disk seeded with :data:`HISTORY`."""
    rows = [
        (Sender(p, u, f"chat-{u}", f"m{i}"), make_note(_ts(t), tag, v, s, voice))
        for i, (p, u, t, tag, v, s, voice) in enumerate(HISTORY)
    ]
    async with await HistoryStore.open(tmp_path / "history.db") as db:
        assert await db.add_many(rows) == len(HISTORY)
        yield db


async def trend(store: HistoryStore, user: str, **kwargs: object):
    """build_trend for a telegram user at :data:`NOW`, without a chart unless asked."""
    kwargs.setdefault("chart", False)
    return await build_trend(store, "telegram", user, now=NOW, **kwargs)  # type: ignore[arg-type]


def _day(report, d: date) -> DayRow:
    return next(r for r in report.daily if r.date == d)


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_alice_week_in_utc(store: HistoryStore) -> None:
    r = await trend(store, "alice")
    assert r.days == 7
    assert [row.date for row in r.daily] == [date(2024, 3, d) for d in range(9, 16)]
    assert r.notes == 7
    assert r.minutes == pytest.approx(5.0)
    assert r.tag_shares == pytest.approx(
        {"positive": 3 / 7, "negative": 1 / 7, "neutral": 2 / 7, "excited": 1 / 7}
    )
    means = [row.mood for row in r.daily]
    assert means == pytest.approx([0.4, 0.6, -0.5, 0.5, None, 0.4, None])
    assert [row.notes for row in r.daily] == [2, 1, 1, 1, 0, 2, 0]
    assert _day(r, date(2024, 3, 9)).counts == {
        "positive": 1,
        "negative": 0,
        "neutral": 1,
        "excited": 0,
    }
    # period mood is the mean of daily means, not of notes (that would be 2.2/7)
    assert r.mood == pytest.approx(0.28)
    assert r.previous_mood == pytest.approx(-0.35)
    assert r.previous_notes == 4
    assert r.direction == "improving"
    assert r.change == pytest.approx(0.63)
    assert r.top_voice == "happy"
    assert r.lowest_day is not None
    assert r.lowest_day.date == date(2024, 3, 11)
    assert r.lowest_day.mood == pytest.approx(-0.5)
    assert r.sustained_negative is False
    assert r.png is None  # chart=False

    text = r.text
    assert "Mar 9 - Mar 15, UTC" in text
    assert "7 notes, 5.0 min" in text
    assert "positive 43%, negative 14%, neutral 29%, excited 14%" in text
    assert "Mood score: +0.28" in text
    assert "improving against the previous 7 days (+0.63)" in text
    assert "Most frequent voice emotion: happy." in text
    assert "Lowest day: Mon Mar 11 (-0.50)." in text
    assert "negative for" not in text
    assert len(text) <= 1024


@pytest.mark.asyncio
async def test_alice_week_in_shanghai_cuts_days_locally(store: HistoryStore) -> None:
    r = await trend(store, "alice", tz="Asia/Shanghai")
    # Mar 8 17:00 UTC is Mar 9 01:00 in Shanghai: it moves into this period.
    assert r.notes == 8
    assert r.minutes == pytest.approx(320 / 60)
    assert r.tag_shares["neutral"] == pytest.approx(3 / 8)
    assert [row.notes for row in r.daily] == [3, 0, 2, 1, 0, 0, 2]
    # 23:30 UTC on Mar 10 lands on Mar 11 local, next to the -0.5 note
    assert _day(r, date(2024, 3, 11)).mood == pytest.approx(0.05)
    assert _day(r, date(2024, 3, 10)).mood is None
    assert _day(r, date(2024, 3, 9)).mood == pytest.approx(0.2)
    assert r.mood == pytest.approx(0.2875)
    assert r.previous_mood == pytest.approx(-0.4)
    assert r.change == pytest.approx(0.6875)
    assert r.direction == "improving"
    assert r.lowest_day is not None and r.lowest_day.date == date(2024, 3, 11)
    assert "8 notes, 5.3 min" in r.text
    assert "Asia/Shanghai" in r.text


@pytest.mark.asyncio
async def test_days_are_cut_at_local_midnight_across_dst(store: HistoryStore) -> None:
    r = await trend(store, "nyc", tz="America/New_York")
    counts = {row.date: row.notes for row in r.daily}
    assert counts[date(2024, 3, 9)] == 1
    assert counts[date(2024, 3, 10)] == 2  # the 23-hour day
    assert counts[date(2024, 3, 11)] == 1
    # a fixed UTC-5 offset would have put the last note on Mar 10
    assert _day(r, date(2024, 3, 11)).mood == pytest.approx(-0.5)
    utc = await trend(store, "nyc")
    assert {row.date: row.notes for row in utc.daily if row.notes} == {
        date(2024, 3, 10): 2,
        date(2024, 3, 11): 2,
    }


@pytest.mark.asyncio
async def test_declining(store: HistoryStore) -> None:
    r = await trend(store, "bob")
    assert r.mood == pytest.approx(-0.7 / 3)
    assert r.previous_mood == pytest.approx(0.6)
    assert r.direction == "declining"
    assert r.change == pytest.approx(-0.7 / 3 - 0.6)
    assert "declining against the previous 7 days (-0.83)" in r.text
    assert r.top_voice == "sad"
    assert r.lowest_day is not None and r.lowest_day.date == date(2024, 3, 12)
    assert r.sustained_negative is False


@pytest.mark.asyncio
async def test_steady_and_voice_tie(store: HistoryStore) -> None:
    r = await trend(store, "carol")
    assert r.mood == pytest.approx(0.25)
    assert r.previous_mood == pytest.approx(0.2)
    assert r.change == pytest.approx(0.05)
    assert r.direction == "steady"
    assert "steady against the previous 7 days (+0.05)" in r.text
    # "unknown" (twice) says nothing and is not counted; calm and happy tie -> alphabetical
    assert r.top_voice == "calm"
    assert r.notes == 4


@pytest.mark.asyncio
async def test_sustained_negative_is_said_gently(store: HistoryStore) -> None:
    r = await trend(store, "dave")
    assert _day(r, date(2024, 3, 14)).negative_share == pytest.approx(0.5)
    assert r.negative_streak == 3
    assert r.sustained_negative is True
    assert "leaned negative for 3 days in a row" in r.text
    assert "someone you trust" in r.text
    # nothing in the previous week: no comparison, said plainly
    assert r.direction is None and r.change is None and r.previous_mood is None
    assert "no notes in the previous 7 days to compare with" in r.text
    assert r.top_voice is None
    assert "voice emotion" not in r.text

    zh = await trend(store, "dave", lang="zh")
    assert "最近连续 3 天，负向的语音占了多数" in zh.text


@pytest.mark.asyncio
async def test_a_silent_day_breaks_the_negative_run(store: HistoryStore) -> None:
    r = await trend(store, "erin")
    assert [row.negative_share for row in r.daily][2:] == [1.0, 1.0, None, 1.0, 1.0]
    assert r.negative_streak == 2
    assert r.sustained_negative is False
    # every day at -0.50: the earliest of the equally low days is named
    assert r.lowest_day is not None and r.lowest_day.date == date(2024, 3, 11)
    assert "negative for" not in r.text


@pytest.mark.asyncio
async def test_too_few_earlier_notes_give_no_direction(store: HistoryStore) -> None:
    r = await trend(store, "gina")
    assert r.notes == 3
    assert r.mood == pytest.approx(0.0)
    assert r.previous_notes == 2
    assert r.previous_mood == pytest.approx(0.5)
    assert r.direction is None and r.change is None
    assert "Mood score: +0.00" in r.text
    assert "too few notes in the previous 7 days to compare with" in r.text
    zh = await trend(store, "gina", lang="zh")
    assert "前7天的记录不够，暂无比较" in zh.text


@pytest.mark.asyncio
async def test_today_is_the_local_date(store: HistoryStore) -> None:
    # 17:00 UTC on Mar 15 is already Mar 16 in Shanghai, 13:00 still Mar 15 in New York
    late = datetime(2024, 3, 15, 17, 0, tzinfo=UTC)
    sh = await build_trend(store, "telegram", "alice", tz="Asia/Shanghai", now=late, chart=False)
    assert (sh.start, sh.end) == (date(2024, 3, 10), date(2024, 3, 16))
    assert sh.notes == 5  # the Mar 9 (local) notes fell out of the window
    early = datetime(2024, 3, 15, 2, 0, tzinfo=UTC)
    ny = await build_trend(store, "telegram", "nyc", tz="America/New_York", now=early, chart=False)
    assert ny.end == date(2024, 3, 14)
    # a naive "now" is read as UTC
    naive = await build_trend(store, "telegram", "alice", now=NOW.replace(tzinfo=None), chart=False)
    assert naive.notes == 7 and naive.end == date(2024, 3, 15)


@pytest.mark.asyncio
async def test_too_little_data(store: HistoryStore) -> None:
    r = await trend(store, "frank", chart=True)
    assert r.notes == 2
    assert r.text == "2 notes so far in the last 7 days -- send a few more to see a trend."
    assert r.png is None
    assert r.direction is None  # 3 notes the week before do not make a comparison

    zh = await trend(store, "frank", lang="zh-CN")
    assert zh.text == "最近7天目前只有 2 条语音——再发几条就能看到趋势。"

    nobody = await trend(store, "nobody", chart=True)
    assert nobody.notes == 0 and nobody.mood is None and nobody.lowest_day is None
    assert nobody.text == "No voice notes in the last 7 days yet -- send a few to see your trend."
    assert nobody.png is None


@pytest.mark.asyncio
async def test_longer_period_reaches_back(store: HistoryStore) -> None:
    r = await trend(store, "alice", days=30)
    assert len(r.daily) == 30
    assert r.daily[0].date == date(2024, 2, 15)  # 2024 is a leap year
    assert r.notes == 11
    assert r.previous_notes == 0
    assert r.direction is None
    assert "last 30 days" in r.text


# --- isolation ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_one_user_never_sees_another(store: HistoryStore) -> None:
    slack = await build_trend(store, "slack", "alice", now=NOW, chart=False)
    assert slack.notes == 5
    assert slack.tag_shares["negative"] == 1.0
    assert slack.top_voice == "angry"
    telegram = await trend(store, "alice")
    assert telegram.notes == 7  # the Slack user's five notes are not in here
    assert telegram.top_voice == "happy"
    assert telegram.tag_shares["negative"] == pytest.approx(1 / 7)


@pytest.mark.asyncio
async def test_forget_one_user_leaves_the_others(store: HistoryStore) -> None:
    assert await store.forget("telegram", "bob") == 6
    bob = await trend(store, "bob")
    assert bob.notes == 0 and bob.previous_notes == 0
    assert (await trend(store, "alice")).notes == 7
    assert (await build_trend(store, "slack", "alice", now=NOW, chart=False)).notes == 5
    assert (await trend(store, "carol")).direction == "steady"


# --- language -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_chinese_summary(store: HistoryStore) -> None:
    r = await trend(store, "alice", lang="zh")
    text = r.text
    assert "最近7天的情绪（3月9日–3月15日，UTC）" in text
    assert "共 7 条语音，5.0 分钟" in text
    assert "正向 43%，负向 14%，中性 29%，激动 14%" in text
    assert "比前7天上升（+0.63）" in text
    assert "最常见的语音情绪：开心" in text
    assert "情绪最低的一天：3月11日（-0.50）" in text
    assert "positive" not in text
    assert len(text) <= 1024


# --- periods and arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "days"),
    [
        (None, 7),
        ("", 7),
        ("  ", 7),
        ("7d", 7),
        ("30d", 30),
        ("90D", 90),
        (" 14 ", 14),
        ("2w", 14),
        ("1d", 1),
        ("365d", 365),
        ("52w", 364),
        ("10 days", 10),
    ],
)
def test_parse_period_accepts(arg: str | None, days: int) -> None:
    assert parse_period(arg) == days


@pytest.mark.parametrize("arg", ["0d", "0", "366", "53w", "abc", "-5d", "3x", "1.5d", "d"])
def test_parse_period_rejects(arg: str) -> None:
    with pytest.raises(ValueError, match=r"period|between 1 and 365"):
        parse_period(arg)


@pytest.mark.asyncio
async def test_build_trend_rejects_bad_days_and_zone(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="between 1 and 365"):
        await trend(store, "alice", days=0)
    with pytest.raises(ValueError, match="time zone"):
        await trend(store, "alice", tz="Mars/Olympus_Mons")


# --- chart ----------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        return img.size


@pytest.mark.asyncio
async def test_chart_png_is_sensible_and_rendered_off_the_loop(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = chart_mod.render_trend_chart

    def spy(*args: object, **kwargs: object) -> bytes:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(chart_mod, "render_trend_chart", spy)
    r = await trend(store, "alice", chart=True, tz="Asia/Shanghai")
    assert r.png is not None
    assert r.png.startswith(PNG_MAGIC)
    assert 10_000 < len(r.png) < 2_000_000
    assert _png_size(r.png) == (1000, 700)
    assert threads and threads[0] != threading.main_thread().name


def test_chinese_chart_has_no_missing_glyphs() -> None:
    if chart_mod.find_cjk_font() is None:
        pytest.skip("no CJK font installed (apt install fonts-noto-cjk)")
    rows = [DayRow(date(2024, 3, 1) + timedelta(days=i)) for i in range(90)]
    for i, row in enumerate(rows[::3]):
        row.notes = 2
        row.mood = (i % 7 - 3) / 3
        row.counts.update(positive=1, negative=1)
    with warnings.catch_warnings():
        # matplotlib warns "Glyph ... missing from font(s)" when it would draw empty boxes
        warnings.simplefilter("error")
        png = chart_mod.render_trend_chart(rows, "zh", "Asia/Shanghai")
    assert png.startswith(PNG_MAGIC)
    assert 10_000 < len(png) < 2_000_000
    assert _png_size(png) == (1000, 700)


# The chart's colours, as literals: the test must not borrow them from the code under test.
LINE = "#264653"
BARS = {"positive": "#2a9d8f", "negative": "#e76f51", "neutral": "#adb5bd", "excited": "#e9c46a"}
NO_DATA = "#495057"
#: Rows of the image above this hold the title and the legend (whose swatches share the
#: bar colours); the plots are below.
PLOTS_TOP = 95


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("RGB")).astype(int)[PLOTS_TOP:]


def _where(pixels: np.ndarray, colour: str) -> np.ndarray:
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return np.all(np.abs(pixels - rgb) <= 2, axis=2)


def _runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous [first, last] runs of the True entries."""
    xs = np.flatnonzero(columns)
    breaks = np.flatnonzero(np.diff(xs) > 1)
    starts = np.concatenate([[xs[0]], xs[breaks + 1]])
    ends = np.concatenate([xs[breaks], [xs[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _week(spec: dict[int, tuple[float, dict[str, int]]]) -> list[DayRow]:
    rows = [DayRow(date(2024, 3, 9) + timedelta(days=i)) for i in range(7)]
    for i, (mood, counts) in spec.items():
        rows[i].mood, rows[i].notes = mood, sum(counts.values())
        rows[i].counts.update(counts)
    return rows


def test_chart_draws_the_mood_line_and_the_day_counts() -> None:
    # Nothing on day 3 (Mar 12); the moods are all different, so their order is checkable.
    spec = {
        0: (1.0, {"positive": 1}),
        1: (-1.0, {"positive": 2, "negative": 1}),
        2: (0.5, {"neutral": 4}),
        4: (0.0, {"excited": 3}),
        5: (-0.5, {"negative": 2}),
        6: (0.25, {"positive": 1, "neutral": 1}),
    }
    px = _pixels(chart_mod.render_trend_chart(_week(spec), "en", "UTC"))
    masks = {tag: _where(px, colour) for tag, colour in BARS.items()}
    bars = _runs(np.any(np.stack(list(masks.values())), axis=(0, 1)))
    assert len(bars) == 6, bars  # one bar per day with notes
    centres = [(a + b) // 2 for a, b in bars]
    step = centres[1] - centres[0]
    gaps = np.diff(centres)
    # Equal spacing, with one empty day between the third and the fourth bar.
    assert np.allclose(gaps, [step, step, 2 * step, step, step], atol=2), gaps
    days = [0, 1, 2, 4, 5, 6]

    # Stacked heights: pixels per note from all bars together; each segment is its count
    # of notes high (give or take the white edges and anti-aliasing).
    total = sum(int(m[:, x].sum()) for m in masks.values() for x in centres)
    unit = total / sum(sum(c.values()) for _, c in spec.values())
    assert unit > 20
    for day, x in zip(days, centres, strict=True):
        counts = spec[day][1]
        for tag, mask in masks.items():
            height = int(mask[:, x].sum())
            expected = unit * counts.get(tag, 0)
            assert abs(height - expected) <= 3 + 0.03 * expected, (day, tag, height, unit)

    # The line: present at each day with notes, absent on the empty day, and higher
    # (a smaller row number) for a better mood.
    line = _where(px, LINE)
    marker_rows = {}
    for day, x in zip(days, centres, strict=True):
        rows = np.flatnonzero(line[:, x])
        assert rows.size >= 8, (day, rows)  # the marker, not a stray pixel
        marker_rows[day] = float(np.median(rows))
    empty_day = centres[2] + step
    assert not line[:, empty_day - 3: empty_day + 4].any()
    by_height = sorted(marker_rows, key=lambda d: marker_rows[d])
    assert by_height == [0, 2, 6, 4, 5, 1]  # moods 1.0, 0.5, 0.25, 0.0, -0.5, -1.0
    assert not _where(px, NO_DATA).any()


def test_chart_of_an_empty_period_says_no_data() -> None:
    px = _pixels(chart_mod.render_trend_chart(_week({}), "en", "UTC"))
    assert not _where(px, LINE).any()
    for colour in BARS.values():
        assert not _where(px, colour).any()
    notice = _where(px, NO_DATA)
    assert notice.sum() > 300  # the words "no data", large
    ys, xs = np.nonzero(notice)
    width = px.shape[1]
    assert abs((xs.min() + xs.max()) / 2 - width * 0.52) < width * 0.05  # centred on the plot


# --- CLI ------------------------------------------------------------------------------------


async def _seed_recent(path: Path, user: str, count: int) -> None:
    now = datetime.now(UTC).timestamp()
    db = await HistoryStore.open(path)
    try:
        await db.add_many(
            (
                Sender("cli", user, "cli", f"{user}-{i}"),
                make_note(now - (i + 1) * 3600, "positive", 0.5, 30, "happy"),
            )
            for i in range(count)
        )
    finally:
        await db.close()


@pytest.mark.asyncio
async def test_cli_prints_summary_and_writes_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(_env_file=None, db=tmp_path / "h.db", tz="UTC")  # type: ignore[call-arg]
    await _seed_recent(settings.db, "u1", 4)
    await _seed_recent(settings.db, "u2", 1)
    out = tmp_path / "charts" / "trend.png"
    assert await run_trend_cli(settings, "u1", 7, out, "en") == 0
    captured = capsys.readouterr()
    assert "4 notes, 2.0 min" in captured.out
    assert str(out) in captured.err
    assert out.read_bytes().startswith(PNG_MAGIC)

    lonely = tmp_path / "lonely.png"
    assert await run_trend_cli(settings, "u2", 7, lonely, "en") == 0
    captured = capsys.readouterr()
    assert "1 note so far" in captured.out
    assert not lonely.exists()


@pytest.mark.asyncio
async def test_cli_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(_env_file=None, db=tmp_path / "h.db", tz="UTC")  # type: ignore[call-arg]
    assert await run_trend_cli(settings, "u1", 0, None, "en") == 2
    assert await run_trend_cli(settings, "u1", 400, None, "en") == 2
    assert await run_trend_cli(settings, " ", 7, None, "en") == 2
    assert capsys.readouterr().err == ("voicemood trend: --days must be between 1 and 365\n"
                                       "voicemood trend: --days must be between 1 and 365\n"
                                       "voicemood trend: --user must not be empty\n")
    # Settings refuse an unknown zone at start (tests/test_cli_refusals.py); the command's
    # own check stays for settings made without validation.
    bad_tz = settings.model_copy(update={"tz": "Nowhere/Land"})
    assert await run_trend_cli(bad_tz, "u1", 7, None, "en") == 2
    assert "time zone" in capsys.readouterr().err
    assert not (tmp_path / "h.db").exists()  # refused before opening the history


def test_chinese_chart_falls_back_to_english_without_cjk_font(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chart_mod, "find_cjk_font", lambda: None)
    rows = [DayRow(date(2024, 3, 9) + timedelta(days=i)) for i in range(7)]
    rows[0].notes, rows[0].mood = 1, 0.5
    rows[0].counts["positive"] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Chinese label here would be a missing glyph
        png = chart_mod.render_trend_chart(rows, "zh", "UTC")
    assert png.startswith(PNG_MAGIC)
