"""What the Celery + Redis queue costs: the same load in-process and through 1 and 2 workers.

Run from the repository root (not a test; a few minutes)::

    .venv/bin/python bench/queue_bench.py [--notes 12] [--in-flight 4] [--json OUT]

It starts its own redis-server on a free loopback port and real ``voicemood worker``
subprocesses (offline tier, CPU, ``--concurrency`` = in-flight notes), and sends 10 s voice
notes (OGG/Opus, from ``../shared/data/en_asr`` when present, else espeak-ng speech):

* **queue overhead per note**: notes sent one at a time to idle workers; the front end's
  wall time minus the worker's own time for the note (``timings["broker"]``): publishing,
  Redis, the worker picking it up, the result coming back. Median and p95, in ms.
* **latency p50/p95** of a 10 s note, one at a time (front end's wall clock);
* **throughput** in notes per minute with ``--in-flight`` notes at once.

Prints a Markdown table; ``--json OUT`` also writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "en_asr"
OFFLINE = {
    "VOICEMOOD_DEVICE": "cpu",
    "VOICEMOOD_ASR_BACKEND": "whisper",
    "VOICEMOOD_TEXT_EMOTION_BACKEND": "lexicon",
    "VOICEMOOD_VOICE_EMOTION_BACKEND": "prosody",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ten_second_note(folder: Path) -> bytes:
    """10 s of real English speech as a Telegram-style OGG/Opus voice note."""
    out = folder / "note10.ogg"
    sources: list[Path] = []
    manifest = DATA / "manifest.csv"
    if manifest.exists():
        with manifest.open(encoding="utf-8") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: r["file"])
        total = 0.0
        for row in rows:
            sources.append(DATA / row["file"])
            total += float(row["duration_s"])
            if total >= 10.5:
                break
    else:
        wav = folder / "speech.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav),
                        "I walked to the station this morning and the train was late again, "
                        "so I read my book on the platform and then called my sister about "
                        "the weekend plans and the weather."], check=True)
        sources.append(wav)
    inputs = [arg for src in sources for arg in ("-i", str(src))]
    concat = "".join(f"[{i}:a]" for i in range(len(sources)))
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", *inputs, "-filter_complex",
         f"{concat}concat=n={len(sources)}:v=0:a=1,apad=whole_dur=10[a]", "-map", "[a]",
         "-t", "10", "-ac", "1", "-ar", "16000", "-c:a", "libopus", "-b:a", "32k", str(out)],
        check=True)
    return out.read_bytes()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def measure(pipeline: Any, audio: bytes, notes: int, in_flight: int) -> dict[str, float]:
    """Sequential latency and queue overhead, then throughput with ``in_flight`` at once."""
    await pipeline.run(audio)  # warm: first batch, connections
    latencies, overheads = [], []
    for _ in range(notes):
        t0 = time.perf_counter()
        result = await pipeline.run(audio)
        latencies.append(time.perf_counter() - t0)
        overheads.append(result.timings.get("broker", 0.0))
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            await pipeline.run(audio)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(notes)))
    wall = time.perf_counter() - t0
    return {
        "latency_p50_s": pct(latencies, 50), "latency_p95_s": pct(latencies, 95),
        "overhead_p50_ms": pct(overheads, 50) * 1000, "overhead_p95_ms": pct(overheads, 95) * 1000,
        "throughput_notes_per_min": notes / wall * 60,
    }


def start_worker(folder: Path, name: str, broker: str, concurrency: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEMOOD_")}
    env.update(OFFLINE)
    env.update({"VOICEMOOD_BROKER_URL": broker, "VOICEMOOD_MODELS_DIR": str(ROOT / "models"),
                "VOICEMOOD_LOG_LEVEL": "INFO"})
    log = folder / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--concurrency",
                             str(concurrency)], cwd=folder, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not re.search(r"voicemood-\d+@\S+ ready\.", log.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return proc


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bot.ops.settings import Settings
    from inference.config import InferenceConfig
    from inference.pipeline import Pipeline
    from workers.client import RemotePipeline

    folder = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    audio = ten_second_note(folder)
    base = {"models_dir": ROOT / "models", "db": folder / "bench.db", "device": "cpu",
            "asr_backend": "whisper", "text_emotion_backend": "lexicon",
            "voice_emotion_backend": "prosody"}
    figures: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                               "notes": args.notes, "in_flight": args.in_flight}
    pipeline = Pipeline(InferenceConfig.from_settings(Settings(_env_file=None, **base)))
    await pipeline.start()
    try:
        figures["in-process"] = await measure(pipeline, audio, args.notes, args.in_flight)
    finally:
        await pipeline.close()

    port = free_port()
    redis_proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    broker = f"redis://127.0.0.1:{port}/0"
    workers: list[subprocess.Popen] = []
    try:
        time.sleep(0.3)
        remote = RemotePipeline(Settings(_env_file=None, broker_url=broker, **base))
        await remote.start()
        try:
            for n in (1, 2):
                workers.append(start_worker(folder, f"w{n}", broker, args.in_flight))
                figures[f"redis, {n} worker{'s' if n > 1 else ''}"] = await measure(
                    remote, audio, args.notes, args.in_flight)
        finally:
            await remote.close()
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(timeout=60)
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def table(figures: dict[str, Any]) -> str:
    lines = [
        f"Machine: {figures['machine']}; {figures['notes']} notes of 10 s per measure; "
        f"throughput with {figures['in_flight']} in flight.",
        "",
        "| setup | queue overhead p50 / p95 (ms) | latency p50 / p95 (s) | throughput "
        "(notes/min) |",
        "|---|---|---|---|",
    ]
    for name, f in figures.items():
        if not isinstance(f, dict):
            continue
        lines.append(f"| {name} | {f['overhead_p50_ms']:.0f} / {f['overhead_p95_ms']:.0f} | "
                     f"{f['latency_p50_s']:.2f} / {f['latency_p95_s']:.2f} | "
                     f"{f['throughput_notes_per_min']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=12, help="notes per measure (default 12)")
    parser.add_argument("--in-flight", type=int, default=4,
                        help="notes at once for throughput, and each worker's --concurrency")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("queue_bench: redis-server is not installed (make install)", file=sys.stderr)
        return 2
    figures = asyncio.run(run(args))
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
