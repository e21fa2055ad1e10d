"""Benchmark ``/trend``: summary + chart for a user with 10,000 stored notes.

Seeds a temporary SQLite file with 10,000 notes for one user over the last 90 days (plus
3,000 for other users on the same and another platform, so the index has to do its job),
then times :func:`bot.trend.summary.build_trend` for 7, 30 and 90 days. Target: under 1 s each.

Run from the repository root::

    .venv/bin/python bench/trend_bench.py [--runs 5] [--lang en|zh] [--keep-charts DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so the script runs without installing the package

TARGET_S = 1.0
USER = ("telegram", "10001")
NOW = datetime(2024, 6, 30, 18, 0, tzinfo=UTC)
VOICES = ("happy", "sad", "angry", "neutral", "calm", "agitated", "surprised")
VALENCE = {"positive": 0.6, "negative": -0.6, "neutral": 0.0, "excited": 0.35}


def _rows(platform: str, user: str, count: int, rng: random.Random) -> list[tuple]:
    from bot.analysis import Analysis, Sender
    from inference.types import TAGS, FusedEmotion, VoiceReading

    end = NOW.timestamp()
    rows = []
    for i in range(count):
        tag = rng.choice(TAGS)
        emotion = FusedEmotion(
            label=tag,
            confidence=rng.uniform(0.5, 1.0),
            valence=max(-1.0, min(1.0, VALENCE[tag] + rng.uniform(-0.3, 0.3))),
            arousal=rng.random(),
            text=None,
            voice=VoiceReading(rng.choice(VOICES), rng.random(), {}, "bench"),
        )
        analysis = Analysis(
            transcript="bench note",
            language="en",
            duration_s=rng.uniform(3.0, 90.0),
            emotion=emotion,
            models={"asr": "bench"},
            timings={},
            created_at=end - rng.uniform(0, 90 * 86400),
        )
        rows.append((Sender(platform, user, f"chat-{user}", f"{user}-{i}"), analysis))
    return rows


async def _seed(path: Path) -> None:
    from bot.storage.history import HistoryStore

    rng = random.Random(20240630)
    store = await HistoryStore.open(path)
    try:
        await store.add_many(_rows(*USER, 10_000, rng))
        for other in ("10002", "10003"):
            await store.add_many(_rows("telegram", other, 1_000, rng))
        # Same user id on another platform: must not leak into the telegram user's trend.
        await store.add_many(_rows("slack", USER[1], 1_000, rng))
    finally:
        await store.close()


def _save(path: Path, png: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def _query_plan(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM analyses WHERE platform=? AND user_id=?"
            " AND created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (*USER, 0.0, 1e12),
        ).fetchall()
    finally:
        conn.close()
    return "; ".join(str(row[-1]) for row in plan)


async def _bench(path: Path, runs: int, lang: str, tz: str, keep: Path | None) -> bool:
    from bot.storage.history import HistoryStore
    from bot.trend.summary import build_trend

    store = await HistoryStore.open(path)
    ok = True
    try:
        t0 = time.perf_counter()
        first = await build_trend(store, *USER, days=7, tz=tz, lang=lang, now=NOW)
        print(f"cold first call (imports matplotlib, fonts): {time.perf_counter() - t0:.3f} s")
        assert first.png is not None
        print(
            f"{'days':>5} {'notes':>6} {'query+summary':>14} {'with chart':>11} {'best':>7}"
            f" {'png KB':>7}"
        )
        for days in (7, 30, 90):
            summary_times, chart_times = [], []
            report = None
            for _ in range(runs):
                t = time.perf_counter()
                await build_trend(store, *USER, days=days, tz=tz, lang=lang, now=NOW, chart=False)
                summary_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                report = await build_trend(store, *USER, days=days, tz=tz, lang=lang, now=NOW)
                chart_times.append(time.perf_counter() - t)
            assert report is not None and report.png is not None
            median = statistics.median(chart_times)
            ok &= median < TARGET_S
            print(
                f"{days:>5} {report.notes:>6} {statistics.median(summary_times):>12.3f} s"
                f" {median:>9.3f} s {min(chart_times):>5.3f} s {len(report.png) / 1024:>7.1f}"
            )
            if keep is not None:
                await asyncio.to_thread(_save, keep / f"trend_{days}d_{lang}.png", report.png)
        print("\nsummary (90 days):\n" + report.text)
    finally:
        await store.close()
    return ok


def main() -> int:
    """Seed, time and print; exit 1 when a median misses the 1 s target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lang", default="en")
    parser.add_argument("--tz", default="Asia/Shanghai")
    parser.add_argument("--keep-charts", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t = time.perf_counter()
        asyncio.run(_seed(db))
        print(
            f"seeded 13,000 notes (10,000 for {USER[0]}:{USER[1]}) in "
            f"{time.perf_counter() - t:.2f} s"
        )
        print(f"query plan: {_query_plan(db)}")
        ok = asyncio.run(_bench(db, args.runs, args.lang, args.tz, args.keep_charts))
    print(f"\ntarget: median < {TARGET_S:.1f} s per call -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
