"""Measure the offline voice branch alone on the recordings in ../shared/data.

Usage::

    python scripts/measure_voice_branch.py [--data ../shared/data] [SET ...]

Each clip is decoded as the product decodes it and read by the prosody backend (no ASR, so
hundreds of clips take a minute or two). Prints, per set: for calm sets (``calm_speech``,
``en_asr``, ``zh_asr_aishell``) the share tagged excited, per source and the highest
speakers; for ``en_emotion_ravdess`` and ``emotion_emodb`` the aroused-vs-calm AUC and how
many of each emotion reach the excited line. RAVDESS is measured only, never trained on.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.arousal_baseline import COLD_START_EXCITED_AROUSAL  # noqa: E402
from inference.audio import decode_audio  # noqa: E402
from inference.fusion import EXCITED_AROUSAL  # noqa: E402
from inference.voice_prosody import ProsodyVoiceEmotion  # noqa: E402

AROUSED = {"en_emotion_ravdess": ("angry", "happy", "fearful", "surprised"),
           "emotion_emodb": ("anger", "happiness", "fear")}
CALM = {"en_emotion_ravdess": ("neutral", "calm"),
        "emotion_emodb": ("neutral", "boredom", "sadness")}
SETS = ("calm_speech", "en_emotion_ravdess", "emotion_emodb", "en_asr", "zh_asr_aishell")


async def arousals(folder: Path) -> list[tuple[dict[str, str], float]]:
    """(manifest row, voice arousal) for every clip of the set in ``folder``."""
    with (folder / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    voice = ProsodyVoiceEmotion()
    out = []
    for row in rows:
        decoded = await decode_audio((folder / row["file"]).read_bytes(), max_bytes=10**8,
                                     max_seconds=60)
        out.append((row, voice.analyze(decoded.samples, decoded.source_dbfs).arousal))
    return out


def report(name: str, readings: list[tuple[dict[str, str], float]]) -> None:
    """Print the figures of one set (module docstring)."""
    if name in AROUSED:
        high = np.array([a for r, a in readings if r["emotion"] in AROUSED[name]])
        low = np.array([a for r, a in readings if r["emotion"] in CALM[name]])
        auc = float(np.mean(high[:, None] > low[None, :]))
        print(f"{name}: aroused vs calm AUC {auc:.3f} ({len(high)} x {len(low)})")
        for emotion in sorted({r["emotion"] for r, _ in readings}):
            values = np.array([a for r, a in readings if r["emotion"] == emotion])
            excited = int((values >= EXCITED_AROUSAL).sum())
            cold = int((values >= COLD_START_EXCITED_AROUSAL).sum())
            print(f"  {emotion:10s} excited {excited:3d} of {len(values):3d} (cold start "
                  f"{cold}), median arousal {np.median(values):.2f}")
        return
    values = np.array([a for _, a in readings])
    print(f"{name}: {int((values >= EXCITED_AROUSAL).sum())} of {len(values)} excited "
          f"(every 2nd clip: {int((values[::2] >= EXCITED_AROUSAL).sum())} of "
          f"{len(values[::2])}), median arousal {np.median(values):.2f}")
    sources: dict[str, list[float]] = {}
    speakers: dict[str, list[float]] = {}
    for row, a in readings:
        sources.setdefault(row["source_repo"], []).append(a)
        speakers.setdefault(row["speaker"] or row["file"], []).append(a)
    for source, vals in sorted(sources.items()):
        print(f"  {source:40s} {sum(v >= EXCITED_AROUSAL for v in vals):3d} of {len(vals):3d}")
    worst = sorted(speakers.items(), key=lambda kv: -max(kv[1]))[:5]
    print("  highest speakers: " + "; ".join(
        f"{s} max {max(v):.2f}, {sum(a >= EXCITED_AROUSAL for a in v)}/{len(v)} excited"
        for s, v in worst))


def main() -> None:
    """Measure the sets named on the command line (all five by default)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("sets", nargs="*", default=list(SETS))
    args = ap.parse_args()
    for name in args.sets:
        report(name, asyncio.run(arousals(args.data / name)))


if __name__ == "__main__":
    main()
