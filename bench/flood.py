"""A flood of maximum-length voice notes: peak memory against the number of notes in flight.

Run from the repository root (minutes; also ``bench/run.py --flood``)::

    .venv/bin/python bench/flood.py [--levels 1,8,32] [--seconds 120] [--json OUT]

For each level N a fresh process does what ``voicemood serve`` does with N notes arriving at
once: it builds the ``AnalysisService`` with the default settings (models, queue and decode
limits from the environment, as ``serve`` would), loads the models, then hands it N
different senders' notes of the maximum length (``VOICEMOOD_MAX_AUDIO_SECONDS`` minus 2 s of
real English speech from ../shared/data, as OGG/Opus 32 kbit/s). This process samples the
memory of that process plus all its children (the ffmpeg and ffprobe decoders) every 20 ms
and reports the peak, as PSS (shared library pages shared out between the processes) and as
plain RSS summed (an upper bound). After ``--seconds`` the notes still being analysed are
cancelled: admission, decoding and the first batches happen at the start, so that is where
the peak is; a 10-minute note takes minutes of model time on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
LEVELS = (1, 8, 32)
#: Target from issue 14: the serving process and its decoders together.
TARGET_MB = 1600.0


# --- the note -------------------------------------------------------------------------------


def long_note(data: Path, seconds: float, out: Path) -> Path:
    """``seconds`` of real English speech (en_asr clips, 0.8 s apart) as OGG/Opus 32 kbit/s."""
    import soundfile as sf

    with (data / "en_asr" / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    gap = np.zeros(int(0.8 * 16_000), dtype=np.float32)
    pieces: list[np.ndarray] = []
    total = 0
    limit = int(seconds * 16_000)
    while total < limit:
        for row in rows:
            clip, rate = sf.read(data / "en_asr" / row["file"], dtype="float32")
            assert rate == 16_000
            pieces += [clip, gap]
            total += len(clip) + len(gap)
            if total >= limit:
                break
    audio = np.concatenate(pieces)[:limit]
    wav = out.with_suffix(".flac")
    sf.write(wav, audio, 16_000)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), "-c:a", "libopus",
                    "-b:a", "32k", "-ac", "1", str(out)], check=True)
    wav.unlink()
    return out


# --- memory of a process tree ---------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; (0, 0) once it has gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _rss_kb(pid: int) -> int:
    return _memory_kb(pid)[0]


def tree_memory_mb(root: int) -> tuple[float, float, int]:
    """Memory of ``root`` and all its descendants: summed RSS, summed PSS (MB), and how many
    descendants there are.

    RSS counts the shared library pages of every ffmpeg once per process, so its sum errs
    high; PSS shares them out, so its sum is what the tree really occupies.
    """
    tree = _children()
    todo, seen = [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo.extend(tree.get(pid, []))
    sizes = [_memory_kb(p) for p in seen]
    return (sum(r for r, _ in sizes) / 1024.0, sum(p for _, p in sizes) / 1024.0,
            len(seen) - 1)


# --- one level, in a child process ----------------------------------------------------------


async def _serve_flood(note: Path, n: int, seconds: float, db: Path) -> dict[str, object]:
    """The child: the service as ``serve`` builds it, and ``n`` notes at once."""
    from app.wiring import open_service
    from bot.analysis import Sender
    from bot.ops.settings import Settings
    from inference.errors import Busy, VoicemoodError

    settings = Settings()
    update: dict[str, object] = {"db": db}
    if not Path(settings.models_dir).is_absolute() and not Path(settings.models_dir).exists():
        update["models_dir"] = ROOT / settings.models_dir
    settings = settings.model_copy(update=update)
    service = await open_service(settings)
    loaded_mb = _rss_kb(os.getpid()) / 1024.0
    print("READY", flush=True)
    data = note.read_bytes()
    outcomes: dict[str, int] = {"answered": 0, "busy": 0, "refused": 0, "error": 0}
    busy_after: list[float] = []
    t0 = time.perf_counter()

    async def one(i: int) -> None:
        # Different senders, and bytes that differ, so no cache or redelivery check answers.
        payload = data + bytes(i)
        try:
            await service.analyze(payload, Sender("flood", f"u{i}", f"c{i}", f"m{i}"))
            outcomes["answered"] += 1
        except Busy:
            outcomes["busy"] += 1
            busy_after.append(time.perf_counter() - t0)
        except VoicemoodError:
            outcomes["refused"] += 1
        except Exception:  # noqa: BLE001 - counted, the flood goes on
            outcomes["error"] += 1

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    pipeline = service.pipeline
    report = {
        **outcomes,
        "in_progress_at_cutoff": len(pending),
        "busy_replied_within_s": round(max(busy_after), 3) if busy_after else None,
        "admission_limit_s": pipeline.config.queue_audio_seconds,
        "decode_slots": pipeline.decode_slots,
        "held_limit": pipeline.held_limit,
        "rss_after_load_mb": round(loaded_mb, 1),
        "process_peak_mb": round(_hwm_kb() / 1024.0, 1),
    }
    await service.close()
    return report


def _hwm_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def measure_level(note: Path, n: int, seconds: float, tmp: Path) -> dict[str, object]:
    """Run one level in a fresh process, sampling its tree's memory; return the figures."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--note", str(note),
           "--seconds", str(seconds), "--db", str(tmp / f"flood-{n}.db")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = "?"
    while line and line.strip() != "READY":  # models loaded: the flood starts now
        line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"flood child failed to start (exit {proc.returncode})")
    before, _, _ = tree_memory_mb(proc.pid)
    peak_rss = peak_pss = 0.0
    most_children = 0
    while proc.poll() is None:
        rss, pss, children = tree_memory_mb(proc.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        most_children = max(most_children, children)
        time.sleep(0.02)
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise RuntimeError(f"flood child exited with {proc.returncode}")
    child = json.loads(out.strip().splitlines()[-1])
    return {"notes": n, "tree_before_mb": round(before, 1), "tree_peak_mb": round(peak_pss, 1),
            "tree_peak_rss_sum_mb": round(peak_rss, 1), "most_children_at_once": most_children,
            **child}


def render(report: dict) -> str:
    """Markdown table of the levels."""
    lines = [
        f"Flood: {report['note_s']:.0f} s notes (OGG/Opus, {report['note_mb']:.1f} MB each), "
        f"all sent at once; {report['cpus']} CPUs; first {report['seconds']:.0f} s of each.",
        "",
        "| notes in flight | peak MB, process + children (PSS) | same, RSS summed "
        "| process peak RSS MB | after load MB | ffmpeg/ffprobe at once | answered | busy "
        "| busy told within | still running |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["levels"]:
        told = "-" if r["busy_replied_within_s"] is None else f"{r['busy_replied_within_s']} s"
        lines.append(
            f"| {r['notes']} | {r['tree_peak_mb']:.0f} | {r['tree_peak_rss_sum_mb']:.0f} "
            f"| {r['process_peak_mb']:.0f} | {r['rss_after_load_mb']:.0f} "
            f"| {r['most_children_at_once']} | {r['answered']} | {r['busy']} | {told} "
            f"| {r['in_progress_at_cutoff']} |")
    # The sampled tree can miss the process's own peak, which the kernel records exactly.
    worst = max(max(r["tree_peak_mb"], r["process_peak_mb"]) for r in report["levels"])
    verdict = "under" if worst < TARGET_MB else "OVER"
    lines += ["", f"Worst peak {worst:.0f} MB: {verdict} the {TARGET_MB:.0f} MB target."]
    return "\n".join(lines)


def run(levels: list[int], seconds: float, data: Path) -> dict[str, object]:
    """Every level; returns the report."""
    from bot.ops.settings import Settings

    note_s = Settings().max_audio_seconds - 2.0
    with tempfile.TemporaryDirectory(prefix="voicemood-flood-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"making a {note_s:.0f} s note...", file=sys.stderr, flush=True)
        note = long_note(data, note_s, tmp / "long.ogg")
        results = []
        for n in levels:
            print(f"{n} notes at once...", file=sys.stderr, flush=True)
            results.append(measure_level(note, n, seconds, tmp))
        return {"note_s": note_s, "note_mb": note.stat().st_size / 1e6, "seconds": seconds,
                "cpus": len(os.sched_getaffinity(0)), "levels": results}


def main(argv: list[str] | None = None) -> int:
    """Entry point (also the child process of each level)."""
    p = argparse.ArgumentParser(prog="bench/flood.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default=",".join(map(str, LEVELS)),
                   help="notes in flight, comma-separated (default 1,8,32)")
    p.add_argument("--seconds", type=float, default=120.0,
                   help="how long each level runs before the rest is cancelled")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--json", type=Path, metavar="OUT")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--note", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        report = asyncio.run(_serve_flood(args.note, args.child, args.seconds, args.db))
        print(json.dumps(report), flush=True)
        return 0
    if not (args.data / "en_asr" / "manifest.csv").exists():
        print(f"flood: recordings not found in {args.data}", file=sys.stderr)
        return 2
    report = run([int(x) for x in args.levels.split(",")], args.seconds, args.data)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
