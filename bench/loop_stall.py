"""How long the event loop stalls while a long voice note is analysed.

Run from the repository root (about a minute on 2 cores; not a test)::

    .venv/bin/python bench/loop_stall.py [--parts 9] [--tick-ms 20] [--json OUT]

One process does what ``voicemood serve`` does when a ~65 s note arrives and a short one
follows it: the ``AnalysisService`` with the settings from the environment (the models
load first and are not measured), the long note (``--parts`` en_asr recordings from
../shared/data joined with 0.8 s pauses, as OGG/Opus 32 kbit/s) and, once its analysis has
begun, a short note from another recording. Meanwhile a ticker sleeps ``--tick-ms`` at a
time and records how much later than asked it woke up: the loop's stall. A history read
(what a command like /history does) is timed while the long note is being transcribed.

Prints the worst and the 99th-percentile stall, the read's latency, and when each note was
answered. These are wall-clock figures for this machine; the unit tests
(tests/test_engine.py) check only what does not depend on its speed: the short note is
answered first, and the read is answered before the long note is done.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so the script runs without installing the package

from bot.analysis import Sender  # noqa: E402
from bot.core.service import AnalysisService  # noqa: E402
from bot.ops.settings import Settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "en_asr"
SAMPLE_RATE = 16_000
#: Recording used as the short note (it is not one of the long note's parts).
SHORT_ROW = 20


def to_ogg(flac: Path, out: Path) -> bytes:
    """Encode as Telegram sends voice notes (OGG/Opus 32 kbit/s mono)."""
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(flac), "-c:a", "libopus",
                    "-b:a", "32k", "-ac", "1", str(out)], check=True, capture_output=True)
    return out.read_bytes()


def make_notes(folder: Path, parts: int) -> tuple[bytes, bytes, float]:
    """The long note, the short note, and the long note's length in seconds."""
    with (DATA / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if len(rows) <= max(parts, SHORT_ROW):
        raise SystemExit(f"{DATA} holds {len(rows)} recordings; need more than "
                         f"{max(parts, SHORT_ROW)}")
    gap = np.zeros(int(0.8 * SAMPLE_RATE), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for row in rows[:parts]:
        samples, rate = sf.read(DATA / row["file"], dtype="float32")
        if rate != SAMPLE_RATE:
            raise SystemExit(f"{row['file']}: {rate} Hz, expected {SAMPLE_RATE}")
        pieces += [samples, gap]
    joined = np.concatenate(pieces)
    sf.write(folder / "long.flac", joined, SAMPLE_RATE)
    long_note = to_ogg(folder / "long.flac", folder / "long.ogg")
    short_note = to_ogg(DATA / rows[SHORT_ROW]["file"], folder / "short.ogg")
    return long_note, short_note, len(joined) / SAMPLE_RATE


async def measure(parts: int, tick_s: float) -> dict[str, float]:
    """Run the scenario of the module docstring; every figure in seconds."""
    with tempfile.TemporaryDirectory(prefix="loop-stall-") as tmp:
        folder = Path(tmp)
        long_note, short_note, long_s = make_notes(folder, parts)
        settings = Settings(db=folder / "bench.db")  # type: ignore[call-arg]
        service = await AnalysisService.create(settings)
        try:
            stalls: list[float] = []
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    asked = time.perf_counter()
                    await asyncio.sleep(tick_s)
                    stalls.append(time.perf_counter() - asked - tick_s)

            answered: dict[str, float] = {}
            t0 = time.perf_counter()

            async def run(name: str, note: bytes) -> None:
                await service.analyze(note, Sender("bench", "1", "1", name))
                answered[name] = time.perf_counter() - t0

            tick = asyncio.create_task(ticker())
            long_task = asyncio.create_task(run("long", long_note))
            while not service.engine._inflight_audio_s:  # the long note's analysis began
                await asyncio.sleep(0.005)
            short_task = asyncio.create_task(run("short", short_note))
            read_at = time.perf_counter()
            await service.store.recent("bench", "1", 5)
            read_s = time.perf_counter() - read_at
            read_before_long = not long_task.done()
            await asyncio.gather(short_task, long_task)
            stop.set()
            await tick
        finally:
            await service.close()
    return {
        "long_note_s": round(long_s, 1),
        "worst_stall_s": round(max(stalls), 4),
        "p99_stall_s": round(statistics.quantiles(stalls, n=100)[98], 4),
        "ticks": len(stalls),
        "history_read_s": round(read_s, 4),
        "history_read_before_long_done": float(read_before_long),
        "short_answered_s": round(answered["short"], 2),
        "long_answered_s": round(answered["long"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the measurement, print it (and write ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--parts", type=int, default=9,
                        help="en_asr recordings joined into the long note (default 9, ~65 s)")
    parser.add_argument("--tick-ms", type=float, default=20.0,
                        help="the ticker's sleep in milliseconds (default 20)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"needs the recordings in {DATA}", file=sys.stderr)
        return 2
    figures = asyncio.run(measure(args.parts, args.tick_ms / 1000.0))
    print("| figure | value |\n|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
