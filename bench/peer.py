"""Side by side: a plain faster-whisper bot against ``voicemood analyze`` (issue 21).

Run from the repository root (not a test; a few minutes on 2 cores)::

    .venv/bin/python bench/peer.py [--notes N] [--data DIR] [--json OUT] [--rounds R]
                                   [--checkout DIR]

The *plain* side is what a user would otherwise run: one ``WhisperModel`` on the same
weights (``models/whisper-base``, int8 on CPU) and, for each note,
``model.transcribe(file, beam_size=5, vad_filter=True)`` with its segments joined. The
*voicemood* side is ``voicemood analyze --json --no-store FILES...``, which also tags the
emotion of every note. Both run as child processes on the same OGG/Opus files, so each
side's figures include interpreter start-up and model load, and the CPU seconds of a side
are its child's (all threads), read from ``getrusage(RUSAGE_CHILDREN)``. The sides
alternate order from round to round, so neither always gets the warmer page cache or the
quieter minute of a shared machine.

The notes are held out of the quality tests (which read every 5th clip from 0) and of
the choices made for issue 21 (rows 1, 3, 6, 8, ... were used to choose the short
windows): rows 2, 7, 12, ..., then 4, 9, 14, ... of zh_asr_aishell and en_asr lasting
1.7-10 s, half of each (``--notes 24`` is the earlier rows 2, 7, 12, ... alone), encoded
as Telegram sends voice notes (OGG/Opus 32 kbit/s mono). Chinese is scored in simplified
characters on both sides (the plain bot answers some Mandarin in traditional characters;
converting only ours would flatter us), English by words, numbers alike however they are
written (bench/scoring.py).

``--checkout DIR`` runs the voicemood side from another checkout (a ``git worktree`` of an
older commit, say) with this venv, so a before/after pair is measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import manifest, to_ogg  # noqa: E402
from bench.scoring import cer_zh, wer_en  # noqa: E402

#: Rows ``OFFSET, OFFSET + STRIDE, ...`` for each offset in turn: never the quality tests'
#: ``[::5]``, nor the rows 1 and 3 (mod 5) the short windows were chosen on.
STRIDE = 5
OFFSETS = (2, 4)
MIN_S, MAX_S = 1.7, 10.0
SETS = {"zh_asr_aishell": "zh", "en_asr": "en"}


@dataclass(frozen=True)
class PeerNote:
    """One held-out recording, encoded as a voice note."""

    set: str
    language: str
    reference: str
    duration_s: float
    ogg: str  # path of the OGG/Opus file


@dataclass(frozen=True)
class SideRun:
    """One side's run over all the notes: child wall and CPU seconds, and its transcripts."""

    side: str
    round: int
    wall_s: float
    cpu_s: float
    transcripts: list[str]


def pick(data: Path, notes: int, tmp: Path) -> list[PeerNote]:
    """``notes`` held-out notes, half Mandarin and half English, encoded as OGG/Opus."""
    picked: list[PeerNote] = []
    per_set = {name: notes // 2 + (notes % 2 if name == "zh_asr_aishell" else 0)
               for name in SETS}
    for name, language in SETS.items():
        every = manifest(data, name)
        rows = [r for offset in OFFSETS for r in every[offset::STRIDE]
                if MIN_S <= float(r["duration_s"]) <= MAX_S][: per_set[name]]
        if len(rows) < per_set[name]:
            raise SystemExit(f"{name} has only {len(rows)} held-out notes of {MIN_S}-{MAX_S} s")
        for row in rows:
            out = tmp / f"{name}-{Path(row['file']).stem}.ogg"
            to_ogg(data / name / row["file"], out)
            picked.append(PeerNote(set=name, language=language, reference=row["transcript"],
                                   duration_s=float(row["duration_s"]), ogg=str(out)))
    return picked


def plain_child(files: list[str], model_dir: str) -> None:
    """The plain bot, run in a child process: prints one JSON list of transcripts."""
    from faster_whisper import WhisperModel

    model = WhisperModel(model_dir, device="cpu", compute_type="int8")
    texts = []
    for path in files:
        segments, _info = model.transcribe(path, beam_size=5, vad_filter=True)
        texts.append("".join(segment.text for segment in segments).strip())
    print(json.dumps(texts, ensure_ascii=False))


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], cwd: Path = ROOT) -> tuple[float, float, str]:
    cpu0, wall0 = _child_cpu(), time.perf_counter()
    # The child imports the checkout in cwd before the installed one.
    env = {**os.environ, "PYTHONPATH": str(cwd), "VOICEMOOD_MODELS_DIR": str(ROOT / "models")}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=cwd, env=env)
    return time.perf_counter() - wall0, _child_cpu() - cpu0, done.stdout


def run_plain(files: list[str], model_dir: Path, round_: int) -> SideRun:
    """Time the plain faster-whisper loop, model load included."""
    wall, cpu, out = _timed([sys.executable, str(Path(__file__).resolve()), "--plain-child",
                             "--model-dir", str(model_dir), *files])
    return SideRun("plain", round_, wall, cpu, json.loads(out.strip().splitlines()[-1]))


def run_voicemood(files: list[str], round_: int, checkout: Path = ROOT) -> SideRun:
    """Time ``voicemood analyze --json --no-store``, model load included (from
    ``checkout``: its code, this interpreter and its packages)."""
    wall, cpu, out = _timed([sys.executable, "-m", "app.cli", "analyze", "--json",
                             "--no-store", *files], cwd=checkout)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_file = {row["file"]: row["transcript"] for row in rows}
    return SideRun("voicemood", round_, wall, cpu, [by_file[f] for f in files])


def score(notes: list[PeerNote], transcripts: list[str]) -> dict[str, float]:
    """CER on the Mandarin notes (simplified characters), WER on the English ones."""
    from inference.transcript_text import to_simplified

    zh = [(n.reference, to_simplified(t)) for n, t in zip(notes, transcripts, strict=True)
          if n.language == "zh"]
    en = [(n.reference, t) for n, t in zip(notes, transcripts, strict=True)
          if n.language == "en"]
    out: dict[str, float] = {}
    if zh:
        out["cer_zh"] = cer_zh([r for r, _ in zh], [h for _, h in zh])
    if en:
        out["wer_en"] = wer_en([r for r, _ in en], [h for _, h in en])
    return out


def uptime() -> str:
    """The load averages, as ``uptime`` prints them."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=24, help="notes, half zh half en")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds; odd rounds run plain first, even ones voicemood first")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "VOICEMOOD_SHARED_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--model-dir", default=str(ROOT / "models" / "whisper-base"))
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="run the voicemood side from this checkout (default: this one)")
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_child:
        plain_child(args.files, args.model_dir)
        return 0

    load_before = uptime()
    with tempfile.TemporaryDirectory(prefix="peer-") as tmp:
        notes = pick(args.data, args.notes, Path(tmp))
        files = [n.ogg for n in notes]
        runs: list[SideRun] = []
        for round_ in range(1, args.rounds + 1):
            order = ("plain", "voicemood") if round_ % 2 else ("voicemood", "plain")
            for side in order:
                run = (run_plain(files, Path(args.model_dir), round_) if side == "plain"
                       else run_voicemood(files, round_, args.checkout.resolve()))
                print(f"round {round_} {side}: wall {run.wall_s:.1f} s, CPU {run.cpu_s:.1f} s",
                      flush=True)
                runs.append(run)
    load_after = uptime()

    report: dict[str, object] = {
        "notes": len(notes), "audio_s": round(sum(n.duration_s for n in notes), 1),
        "load_before": load_before, "load_after": load_after,
        "runs": [{**asdict(r), **score(notes, r.transcripts)} for r in runs],
        "notes_detail": [asdict(n) for n in notes],
    }
    for r in runs:
        print(f"round {r.round} {r.side:9s} wall {r.wall_s:6.1f} s  CPU {r.cpu_s:6.1f} s  "
              + "  ".join(f"{k} {v:.3f}" for k, v in score(notes, r.transcripts).items()))
    ratios = []
    for round_ in range(1, args.rounds + 1):
        pair = {r.side: r for r in runs if r.round == round_}
        wall = pair["plain"].wall_s / pair["voicemood"].wall_s
        cpu = pair["plain"].cpu_s / pair["voicemood"].cpu_s
        ratios.append((wall, cpu))
        print(f"round {round_}: plain/voicemood wall {wall:.2f}x, CPU {cpu:.2f}x")
    print(f"{len(notes)} notes, {report['audio_s']} s of audio; over {args.rounds} rounds "
          f"plain/voicemood wall {min(w for w, _ in ratios):.2f}-{max(w for w, _ in ratios):.2f}x, "
          f"CPU {min(c for _, c in ratios):.2f}-{max(c for _, c in ratios):.2f}x")
    print(f"load before: {load_before}\nload after:  {load_after}")
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
