"""``voicemood text``: the words branch alone, on text from the command line or stdin.

Operators use it to check a text-model choice; the quality tests and the benchmark use it
too. Only the text-emotion backend is loaded (no ASR, no voice model), so it starts in
about a second on the offline tier. One result per input line, in input order::

    {"text": "…", "language": "zh", "label": "positive", "valence": 0.61,
     "scores": {"positive": 0.7, "negative": 0.09, "neutral": 0.21, "excited": 0.0},
     "model": "…"}

``label`` is what the product would say from these words with no voice reading
(positive, negative or neutral: never excited, see :mod:`inference.fusion`); ``valence``
is P(positive) - P(negative) of the reading.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from bot.ops.settings import Settings
    from inference.types import TextEmotionBackend

#: Lines classified together from stdin (one model call; results still print in order).
STDIN_BATCH = 32


def add_parser(sub: Any) -> None:
    """Register ``voicemood text`` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "text", help="tag the mood of text with the words branch alone",
        description="Tag text as positive, negative or neutral with the configured text "
                    "emotion backend only (no audio models are loaded). Reads one text per "
                    "line from stdin when no TEXT is given.",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="text to tag (default: stdin)")
    p.add_argument("--json", action="store_true", help="print one JSON object per text")
    p.add_argument("--lang", default="auto", choices=["auto", "zh", "en"],
                   help="language of the text (default: auto, from the characters)")


def text_results(texts: list[str], languages: list[str],
                 backend: TextEmotionBackend) -> list[dict[str, Any]]:
    """One JSON object per text, from one call to the backend."""
    from inference.fusion import fuse, text_valence

    readings = backend.classify_batch(texts, languages)
    out = []
    for text, language, reading in zip(texts, languages, readings, strict=True):
        out.append({
            "text": text,
            "language": language,
            "label": fuse(reading, None).label,
            "valence": round(text_valence(reading), 4),
            "scores": {tag: round(v, 4) for tag, v in reading.scores.items()},
            "model": reading.model,
        })
    return out


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line.rstrip("\r\n"))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _print(result: dict[str, Any], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        out.write(f"{result['label']:8} {result['valence']:+.2f}  {result['text']}\n")
    out.flush()


def run_text_cli(settings: Settings, args: argparse.Namespace,
                 stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run ``voicemood text``; 0 on success, 1 when the model cannot load, 2 when it is off."""
    from inference.backends import load_text, plan
    from inference.config import InferenceConfig
    from inference.device import resolve_device
    from inference.errors import ModelUnavailable
    from inference.text_emotion_lexicon import detect_language

    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    config = InferenceConfig.from_settings(settings)
    try:
        tier = next(i.tier for i in plan(config) if i.component == "text_emotion")
        # Resolving "auto" imports torch (seconds): only the full tier needs a device.
        device = resolve_device(config.device) if tier == "full" else "cpu"
        backend = load_text(config, device)
    except (ModelUnavailable, RuntimeError, ValueError) as exc:
        print(f"voicemood text: cannot load the text emotion model: {exc}", file=sys.stderr)
        return 1
    if backend is None:
        print("voicemood text: text emotion is off (VOICEMOOD_TEXT_EMOTION_BACKEND=off)",
              file=sys.stderr)
        return 2
    hint = "" if args.lang == "auto" else args.lang
    batches = [list(args.texts)] if args.texts else _batches(stdin, STDIN_BATCH)
    for batch in batches:
        languages = [detect_language(t, hint) for t in batch]
        for result in text_results(batch, languages, backend):
            _print(result, args.json, stdout)
    return 0
