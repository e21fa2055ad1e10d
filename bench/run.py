"""Benchmark the inference engine on the real recordings in ../shared/data
(``--data DIR`` or ``VOICEMOOD_SHARED_DATA``: your own, laid out the same way).

Run from the repository root (not a test; takes minutes)::

    .venv/bin/python bench/run.py [--json OUT] [--full] [--device cpu|cuda] [--batch-size N]
    voicemood bench [--json OUT] ...

It loads the configured models (by default the offline tier: Whisper base int8, lexicons,
prosody), encodes the recordings as OGG/Opus first (as Telegram sends voice notes) and
measures, batched (``VOICEMOOD_BATCH_SIZE``) against unbatched (batch of 1) in the same run:

* per stage (decode, ASR with VAD and punctuation, text emotion, voice emotion) the
  real-time factor: processing seconds per audio second, wall clock and CPU time (CPU time
  tells the work apart from waiting for cores other processes hold);
* end-to-end latency p50/p95 of a 10 s voice note (decode + models + fusion), one at a time;
* throughput in audio minutes per minute with 1, 4 and 16 notes in flight;
* peak memory (RSS) after loading, per phase and over the whole run;
* whether batching changed any transcript or tag, and WER/CER on the clips used;
* Whisper's encoder and decoder alone, batched vs one by one (why the ASR gain is what it is);
* a ~85 s recording with a short note sent just after it (long-recording fairness).

``--flood`` measures something else instead: peak memory of the serving process and its
ffmpeg children with 1, 8 and 32 maximum-length notes sent at once (see bench/flood.py).

Prints Markdown tables; ``--json OUT`` also writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so the script runs without installing the package

#: The labelled recordings: this project keeps them beside the checkout (not in git);
#: VOICEMOOD_SHARED_DATA (as for the tests) or --data points elsewhere.
DATA = Path(os.environ.get("VOICEMOOD_SHARED_DATA") or ROOT.parent / "shared" / "data")
SETS = ("en_asr", "zh_asr_aishell", "en_emotion_ravdess")
#: (clips per set for the stage and throughput pool, 10 s notes for latency, notes per
#: in-flight level) for the default quick run and for --full.
PLANS = {
    "quick": {"per_set": 8, "latency_notes": 8, "throughput": {1: 8, 4: 16, 16: 32}},
    "full": {"per_set": 24, "latency_notes": 20, "throughput": {1: 16, 4: 48, 16: 96}},
}
MAX_BYTES = 50 * 2**20
#: What the benchmark reads from each set's manifest.csv.
MANIFEST_COLUMNS = ("file", "transcript", "language", "duration_s")

log = logging.getLogger("bench")


@dataclass
class Note:
    """One recording, encoded as a Telegram voice note."""

    set: str
    file: str
    reference: str
    language: str
    duration_s: float
    ogg: bytes


# --- inputs -----------------------------------------------------------------------------------


def missing_sets(data: Path, names: tuple[str, ...]) -> list[str]:
    """The sets in ``names`` that have no ``manifest.csv`` under ``data``."""
    return [name for name in names if not (data / name / "manifest.csv").is_file()]


def no_recordings_message(data: Path, missing: list[str]) -> str:
    """Why the benchmark cannot start, what it needs, and how to point it elsewhere."""
    return (f"bench: recordings not found in {data} (missing: {', '.join(missing)}). The "
            "benchmark measures speed and accuracy on labelled recordings: one folder per "
            f"set ({', '.join(SETS)}), each with its audio files and a manifest.csv whose "
            f"columns include {', '.join(MANIFEST_COLUMNS)} (file is relative to the set's "
            "folder). A source checkout finds them in ../shared/data, which is not part of "
            "the repository; point at your own with --data DIR or VOICEMOOD_SHARED_DATA=DIR.")


def manifest(data: Path, name: str) -> list[dict[str, str]]:
    with (data / name / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def to_ogg(src: Path, out: Path) -> bytes:
    """OGG/Opus 32 kbit/s mono, as Telegram sends voice notes."""
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(src), "-c:a", "libopus",
                    "-b:a", "32k", "-ac", "1", str(out)], check=True, capture_output=True)
    return out.read_bytes()


def pick_notes(data: Path, tmp: Path, per_set: int, latency_notes: int
               ) -> tuple[list[Note], list[Note]]:
    """Evenly spaced clips of each set, and ~10 s English notes for the latency figure."""
    pool: list[Note] = []
    for name in SETS:
        rows = manifest(data, name)
        step = max(1, len(rows) // per_set)
        for row in rows[::step][:per_set]:
            pool.append(_note(data, tmp, name, row))
    tens = [r for r in manifest(data, "en_asr") if 9.0 <= float(r["duration_s"]) <= 11.5]
    step = max(1, len(tens) // latency_notes)
    ten = [_note(data, tmp, "en_asr", r) for r in tens[::step][:latency_notes]]
    return pool, ten


def _note(data: Path, tmp: Path, name: str, row: dict[str, str]) -> Note:
    src = data / name / row["file"]
    out = tmp / f"{name}-{Path(row['file']).stem}.ogg"
    return Note(set=name, file=row["file"], reference=row["transcript"],
                language=row["language"], duration_s=float(row["duration_s"]),
                ogg=to_ogg(src, out))


# --- environment ------------------------------------------------------------------------------


def environment(engine, settings) -> dict[str, object]:
    """Machine, device, models and library versions."""
    from importlib.metadata import PackageNotFoundError, version

    from inference.device import cpu_threads

    versions: dict[str, str] = {"python": platform.python_version()}
    for pkg in ("torch", "ctranslate2", "faster-whisper", "onnxruntime", "funasr",
                "transformers", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "-"
    try:
        first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True,
                               check=True).stdout.splitlines()[0]
        versions["ffmpeg"] = first.split()[2]
    except (OSError, subprocess.CalledProcessError, IndexError):
        versions["ffmpeg"] = "-"
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    if engine.device.startswith("cuda"):
        try:
            import torch

            gpu = torch.cuda.get_device_name(int(engine.device.split(":")[1]))
        except Exception:  # informative only
            gpu = "cuda"
    return {
        "machine": f"{platform.machine()} {cpu}, {cpu_threads()} cores usable"
                   + (f", GPU {gpu}" if gpu else ", no GPU"),
        "device": engine.device,
        "models": {i.component: f"{i.tier}: {i.model} ({i.detail})".replace(" ()", "")
                   for i in engine.backends.infos()},
        "versions": versions,
        "batch_size": settings.batch_size,
        "batch_wait_ms": settings.batch_wait_ms,
        "load_s": round(engine.load_seconds, 2),
        "loadavg_start": list(os.getloadavg()),
    }


def rss_mb() -> float:
    """Current resident memory of this process (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def hwm_mb() -> float:
    """Peak resident memory since the last :func:`reset_peak` (MB; Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return peak_rss_mb()


def reset_peak() -> None:
    """Restart the VmHWM peak so each phase shows its own (Linux >= 4.0; else a no-op)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident memory of this process since start (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Clock:
    """Wall and process CPU seconds (CPU counts every thread, CTranslate2's included)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def lap(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


# --- stages -----------------------------------------------------------------------------------


async def stage_bench(engine, pool: list[Note], batch_size: int, settings) -> dict[str, object]:
    """Per-stage real-time factors, unbatched and batched, interleaved group by group."""
    from inference.audio import decode_audio

    b = engine.backends
    decoded = []
    clock = Clock()
    for note in pool:
        decoded.append(await decode_audio(note.ogg, max_bytes=MAX_BYTES,
                                          max_seconds=settings.max_audio_seconds))
    decode_wall, decode_cpu = clock.lap()  # ffmpeg runs in a child: its CPU is not ours
    audio_s = sum(d.duration_s for d in decoded)

    times = {mode: {stage: [0.0, 0.0] for stage in ("asr", "text_emotion", "voice_emotion")}
             for mode in ("unbatched", "batched")}
    outputs: dict[str, list] = {"unbatched": [], "batched": []}
    for start in range(0, len(decoded), batch_size):
        group = decoded[start:start + batch_size]
        for mode in ("unbatched", "batched"):
            chunks = [[d] for d in group] if mode == "unbatched" else [group]
            for chunk in chunks:
                outputs[mode].extend(_run_stages(b, chunk, times[mode]))

    def rtf(mode: str, stage: str) -> dict[str, float]:
        wall, cpu = times[mode][stage]
        return {"wall": wall / audio_s, "cpu": cpu / audio_s}

    same = sum(1 for u, v in zip(outputs["unbatched"], outputs["batched"], strict=True)
               if u == v)
    batched_transcripts = [o[0] for o in outputs["batched"]]
    return {
        "clips": len(pool),
        "clips_per_set": {s: sum(1 for n in pool if n.set == s) for s in SETS},
        "audio_s": round(audio_s, 1),
        "rtf": {
            "decode": {"wall": decode_wall / audio_s, "cpu": None},
            **{stage: {mode: rtf(mode, stage) for mode in ("unbatched", "batched")}
               for stage in ("asr", "text_emotion", "voice_emotion")},
        },
        "batched_equals_unbatched": f"{same}/{len(pool)}",
        "accuracy": accuracy(pool, batched_transcripts),
    }


def _run_stages(b, chunk, times) -> list[tuple]:
    from inference.engine import voice_batch

    clock = Clock()
    transcripts = b.asr.transcribe_batch([d.samples for d in chunk])
    _add(times["asr"], clock.lap())
    clock = Clock()
    texts = (b.text.classify_batch([t.text for t in transcripts],
                                   [t.language for t in transcripts])
             if b.text is not None else [None] * len(chunk))
    _add(times["text_emotion"], clock.lap())
    clock = Clock()
    voices = (voice_batch(b.voice, [d.samples for d in chunk], [d.source_dbfs for d in chunk])
              if b.voice is not None else [None] * len(chunk))
    _add(times["voice_emotion"], clock.lap())
    return [
        (t.text, t.language, x.label if x else None, v.label if v else None,
         round(v.arousal, 6) if v else None)
        for t, x, v in zip(transcripts, texts, voices, strict=True)
    ]


def _add(acc: list[float], lap: tuple[float, float]) -> None:
    acc[0] += lap[0]
    acc[1] += lap[1]


def accuracy(pool: list[Note], transcripts: list[str]) -> dict[str, float]:
    """WER on English sets, CER on Mandarin (jiwer, normalised as the quality tests do)."""
    from bench.scoring import cer_zh, wer_en

    out: dict[str, float] = {}
    for name in SETS:
        pairs = [(note.reference, hyp) for note, hyp in zip(pool, transcripts, strict=True)
                 if note.set == name]
        if not pairs:
            continue
        refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
        if name.startswith("zh"):
            out["cer_" + name] = round(cer_zh(refs, hyps), 3)
        else:
            out["wer_" + name] = round(wer_en(refs, hyps), 3)
    return out


# --- end to end -------------------------------------------------------------------------------


async def analyse(engine, note: Note, settings) -> float:
    """Decode + models + fusion for one note, as the service does; returns seconds."""
    from inference.audio import decode_audio
    from inference.fusion import fuse

    t0 = time.perf_counter()
    decoded = await decode_audio(note.ogg, max_bytes=MAX_BYTES,
                                 max_seconds=settings.max_audio_seconds)
    result = await engine.infer(decoded)
    fuse(result.text, result.voice)
    return time.perf_counter() - t0


async def latency_bench(engine, notes: list[Note], settings) -> dict[str, object]:
    """One ~10 s note at a time (nothing else in flight)."""
    seconds = [await analyse(engine, n, settings) for n in notes]
    return {
        "notes": len(notes),
        "audio_s_mean": round(statistics.fmean(n.duration_s for n in notes), 2),
        "p50_s": percentile(seconds, 50),
        "p95_s": percentile(seconds, 95),
        "max_s": max(seconds),
    }


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile, interpolated between the two nearest values."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def whisper_internals(engine, pool: list[Note], batch_size: int,
                      data: Path) -> dict[str, float] | None:
    """Whisper's encoder and beam decoder on one batch of windows, batched vs one by one.

    Explains the ASR figure: the engine encodes window by window on CPU and in one batch on
    CUDA (see inference/whisper_batch.py), and always decodes in one batch.
    """
    import ctranslate2
    import numpy as np
    import soundfile as sf
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    from inference.asr_whisper import WhisperAsr

    asr = engine.backends.asr
    if not isinstance(asr, WhisperAsr):
        return None
    model = asr.model
    notes = [n for n in pool if n.set == "en_asr"][:batch_size]
    feats = []
    for note in notes:
        samples = sf.read(data / note.set / note.file, dtype="float32")[0]
        feats.append(pad_or_trim(model.feature_extractor(samples)[..., :-1]))
    batch = np.ascontiguousarray(np.stack(feats))

    def storage(a):  # type: ignore[no-untyped-def]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(a))

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    out: dict[str, float] = {"windows": float(len(notes))}
    out["encode_batched_s"] = timed(lambda: model.model.encode(storage(batch)))
    out["encode_single_s"] = timed(lambda: [model.model.encode(storage(batch[i:i + 1]))
                                            for i in range(len(notes))])
    encoded = np.asarray(model.model.encode(storage(batch), to_cpu=True))
    tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="en")
    prompt = model.get_prompt(tokenizer, [])
    kwargs = {"beam_size": asr.beam_size, "max_length": model.max_length}
    out["decode_batched_s"] = timed(
        lambda: model.model.generate(storage(encoded), [prompt] * len(notes), **kwargs))
    out["decode_single_s"] = timed(
        lambda: [model.model.generate(storage(encoded[i:i + 1]), [prompt], **kwargs)
                 for i in range(len(notes))])
    return {k: round(v, 3) for k, v in out.items()}


async def fairness_bench(engine, data: Path, settings) -> dict[str, object]:
    """A ~85 s recording (11 en_asr clips with pauses) and a short note sent 0.5 s later."""
    import numpy as np
    import soundfile as sf

    from inference.types import SAMPLE_RATE

    rows = manifest(data, "en_asr")
    gap = np.zeros(int(0.8 * SAMPLE_RATE), dtype=np.float32)
    pieces = []
    for row in rows[:11]:
        pieces += [sf.read(data / "en_asr" / row["file"], dtype="float32")[0], gap]
    with tempfile.TemporaryDirectory(prefix="voicemood-bench-") as tmp:
        sf.write(Path(tmp) / "long.flac", np.concatenate(pieces), SAMPLE_RATE)
        long_note = Note("en_asr", "long.flac", "", "en", 0.0,
                         to_ogg(Path(tmp) / "long.flac", Path(tmp) / "long.ogg"))
        short = _note(data, Path(tmp), "en_asr", rows[20])
    long_note.duration_s = sum(len(p) for p in pieces) / SAMPLE_RATE
    alone = await analyse(engine, long_note, settings)
    t0 = time.perf_counter()
    long_task = asyncio.create_task(analyse(engine, long_note, settings))
    await asyncio.sleep(0.5)
    short_s = await analyse(engine, short, settings)
    short_done = time.perf_counter() - t0
    await long_task
    long_done = time.perf_counter() - t0
    return {
        "long_audio_s": round(long_note.duration_s, 1),
        "long_alone_s": round(alone, 2),
        "short_audio_s": short.duration_s,
        "short_latency_s": round(short_s, 2),
        "short_done_at_s": round(short_done, 2),
        "long_done_at_s": round(long_done, 2),
    }


async def throughput_bench(backends, settings, pool: list[Note],
                           levels: dict[int, int]) -> list[dict[str, object]]:
    """Audio minutes per minute with N notes in flight, batched and unbatched."""
    from inference.engine import InferenceEngine

    rows = []
    for in_flight, count in levels.items():
        for mode, size in (("unbatched", 1), ("batched", settings.batch_size)):
            cfg = settings.model_copy(update={"batch_size": size,
                                              "queue_size": max(settings.queue_size, 64)})
            engine = InferenceEngine(cfg, backends=backends)  # the same loaded models
            await engine.start()
            notes = [pool[i % len(pool)] for i in range(count)]
            sizes: list[float] = []
            queue = asyncio.Queue()
            for n in notes:
                queue.put_nowait(n)

            async def worker(engine=engine, queue=queue, sizes=sizes) -> None:
                from inference.audio import decode_audio

                while not queue.empty():
                    note = queue.get_nowait()
                    decoded = await decode_audio(note.ogg, max_bytes=MAX_BYTES,
                                                 max_seconds=settings.max_audio_seconds)
                    result = await engine.infer(decoded)
                    sizes.append(result.timings.get("batch_size", 1.0))

            reset_peak()
            clock = Clock()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            wall, cpu = clock.lap()
            peak = hwm_mb()
            await engine.close()
            audio_s = sum(n.duration_s for n in notes)
            rows.append({
                "in_flight": in_flight, "mode": mode, "notes": count,
                "audio_min": round(audio_s / 60, 2), "wall_s": round(wall, 1),
                "audio_min_per_min": round(audio_s / wall, 2),
                "cpu_s_per_audio_s": round(cpu / audio_s, 3),
                "mean_batch": round(statistics.fmean(sizes), 1),
                "peak_rss_mb": round(peak),
            })
            print(f"  throughput {in_flight:>2} in flight, {mode:9}: "
                  f"{audio_s / wall:5.2f} audio min/min", file=sys.stderr, flush=True)
    return rows


# --- report -----------------------------------------------------------------------------------


def render(report: dict) -> str:
    """Markdown tables of the report."""
    env, st = report["environment"], report["stages"]
    per_set = ", ".join(f"{k} {v}" for k, v in st["clips_per_set"].items())
    lines = [
        f"machine: {env['machine']}; device {env['device']}; "
        f"load average at start {', '.join(f'{x:.1f}' for x in env['loadavg_start'])}, "
        f"at end {', '.join(f'{x:.1f}' for x in report['loadavg_end'])}",
        "models: " + "; ".join(f"{k} = {v}" for k, v in env["models"].items()),
        "versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"batch size {env['batch_size']}, batch wait {env['batch_wait_ms']} ms; "
        f"model load {env['load_s']} s; plan {report['plan']}",
        "",
        f"Per stage, {st['clips']} clips ({per_set}), "
        f"{st['audio_s']} s of audio, OGG/Opus. RTF = processing s / audio s "
        "(wall clock; CPU seconds of all threads in brackets).",
        "",
        "| stage | unbatched RTF | batched RTF | speed-up (wall) |",
        "|---|---|---|---|",
        f"| decode (ffmpeg) | {st['rtf']['decode']['wall']:.4f} | same path | - |",
    ]
    names = {"asr": "ASR (Whisper + VAD, punctuated)", "text_emotion": "text emotion",
             "voice_emotion": "voice emotion"}
    for stage, label in names.items():
        u, b = st["rtf"][stage]["unbatched"], st["rtf"][stage]["batched"]
        speed = u["wall"] / b["wall"] if b["wall"] else float("nan")
        lines.append(f"| {label} | {u['wall']:.4f} ({u['cpu']:.4f}) | "
                     f"{b['wall']:.4f} ({b['cpu']:.4f}) | {speed:.2f}x |")
    lines += [
        "",
        f"Batched output identical to unbatched (transcript, language, text tag, voice "
        f"label/arousal): {st['batched_equals_unbatched']}. Accuracy on these clips: "
        + ", ".join(f"{k} {v}" for k, v in st["accuracy"].items()),
        "",
    ]
    lat = report["latency"]
    lines += [
        f"End-to-end latency, ~10 s voice note (mean {lat['audio_s_mean']} s), one at a time, "
        f"{lat['notes']} notes: p50 {lat['p50_s']:.2f} s, p95 {lat['p95_s']:.2f} s, "
        f"max {lat['max_s']:.2f} s.",
        "",
        "| notes in flight | mode | notes | audio min | wall s | audio min / min "
        "| CPU s / audio s | mean batch | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["throughput"]:
        lines.append(f"| {row['in_flight']} | {row['mode']} | {row['notes']} | "
                     f"{row['audio_min']} | {row['wall_s']} | {row['audio_min_per_min']} | "
                     f"{row['cpu_s_per_audio_s']} | {row['mean_batch']} | "
                     f"{row['peak_rss_mb']} |")
    wi = report["whisper_internals"]
    if wi:
        lines += ["", f"Whisper internals, {wi['windows']:.0f} windows of 30 s: encoder "
                      f"{wi['encode_batched_s']:.2f} s as one batch vs "
                      f"{wi['encode_single_s']:.2f} s one by one; beam decoder "
                      f"{wi['decode_batched_s']:.2f} s as one batch vs "
                      f"{wi['decode_single_s']:.2f} s one by one."]
    fair = report["fairness"]
    lines += ["", f"Long recording: {fair['long_audio_s']} s alone takes {fair['long_alone_s']} s. "
                  f"With a {fair['short_audio_s']} s note sent 0.5 s after it, the short note "
                  f"is answered in {fair['short_latency_s']} s (at {fair['short_done_at_s']} s), "
                  f"the long one at {fair['long_done_at_s']} s."]
    mem = report["memory"]
    lines += ["", f"Memory (RSS): {mem['rss_after_load_mb']:.0f} MB after loading and warm-up "
                  f"(peak while loading {mem['load_peak_mb']:.0f} MB); peak during the stage "
                  f"runs {mem['stages_peak_mb']:.0f} MB, during the latency runs "
                  f"{mem['latency_peak_mb']:.0f} MB; peak over the whole run "
                  f"{mem['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--full", action="store_true",
                   help="more clips and notes (default: a quick run of a few minutes)")
    p.add_argument("--device", help="override VOICEMOOD_DEVICE (auto, cpu, cuda, cuda:N)")
    p.add_argument("--batch-size", type=int, help="override VOICEMOOD_BATCH_SIZE")
    p.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                   help="the labelled recordings: folders " + ", ".join(SETS) + ", each with "
                        "its audio and a manifest.csv (columns " + ", ".join(MANIFEST_COLUMNS)
                        + f"); default $VOICEMOOD_SHARED_DATA or {DATA}")
    p.add_argument("--flood", action="store_true",
                   help="instead: peak memory with 1, 8 and 32 maximum-length notes in flight "
                        "(bench/flood.py)")
    return p


def load_settings(args: argparse.Namespace):
    """The configured settings, with the command-line overrides."""
    from bot.ops.settings import Settings

    settings = Settings()
    update: dict[str, object] = {}
    if args.device:
        update["device"] = args.device
    if args.batch_size:
        update["batch_size"] = args.batch_size
    if not Path(settings.models_dir).is_absolute() and not Path(settings.models_dir).exists():
        update["models_dir"] = ROOT / settings.models_dir  # run from anywhere
    return settings.model_copy(update=update) if update else settings


async def run(args: argparse.Namespace) -> dict:
    """Run every measurement; returns the report."""
    from inference.engine import InferenceEngine

    settings = load_settings(args)
    plan_name = "full" if args.full else "quick"
    plan = PLANS[plan_name]
    with tempfile.TemporaryDirectory(prefix="voicemood-bench-") as tmp:
        print("encoding recordings as OGG/Opus...", file=sys.stderr, flush=True)
        pool, ten = pick_notes(args.data, Path(tmp), plan["per_set"], plan["latency_notes"])
    engine = InferenceEngine(settings)
    print("loading models...", file=sys.stderr, flush=True)
    await engine.start()
    try:
        env = environment(engine, settings)
        memory = {"rss_after_load_mb": round(rss_mb(), 1), "load_peak_mb": round(hwm_mb(), 1)}
        print("per-stage real-time factors...", file=sys.stderr, flush=True)
        reset_peak()
        stages = await stage_bench(engine, pool, settings.batch_size, settings)
        memory["stages_peak_mb"] = round(hwm_mb(), 1)
        print("latency of a 10 s note...", file=sys.stderr, flush=True)
        reset_peak()
        latency = await latency_bench(engine, ten, settings)
        memory["latency_peak_mb"] = round(hwm_mb(), 1)
        print("whisper encoder/decoder batching...", file=sys.stderr, flush=True)
        internals = whisper_internals(engine, pool, settings.batch_size, args.data)
        print("a long recording with a short note behind it...", file=sys.stderr, flush=True)
        fairness = await fairness_bench(engine, args.data, settings)
        print("throughput...", file=sys.stderr, flush=True)
        throughput = await throughput_bench(engine.backends, settings, pool, plan["throughput"])
    finally:
        await engine.close()
    return {
        "plan": plan_name,
        "environment": env,
        "stages": stages,
        "latency": latency,
        "throughput": throughput,
        "whisper_internals": internals,
        "fairness": fairness,
        "memory": {**memory, "peak_rss_mb": round(peak_rss_mb(), 1)},
        "loadavg_end": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the benchmark, print the tables, write JSON on request."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]  # `voicemood bench -- --json OUT` passes the separator through
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    missing = missing_sets(args.data, ("en_asr",) if args.flood else SETS)
    if missing:
        print(no_recordings_message(args.data, missing), file=sys.stderr)
        return 2
    if args.flood:
        from bench import flood

        report = flood.run(list(flood.LEVELS), 120.0, args.data)
        print(flood.render(report))
    else:
        report = asyncio.run(run(args))
        print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                             encoding="utf-8")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
