"""Print accuracy, macro-F1 and the confusion matrix of the words branch on the dev sets.

Usage::

    python scripts/measure_words_branch.py [--data ../shared/data] [-- extra voicemood args]

Runs ``voicemood text --json`` (the configured text backend; set
``VOICEMOOD_TEXT_EMOTION_BACKEND`` / ``VOICEMOOD_TEXT_EMOTION_MODEL`` to choose one) over
``zh_text_sentiment`` and ``en_text_sentiment`` and prints one Markdown row per language,
as in README "Accuracy". The dev sets are for measuring only: never train on them.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scoring import CLASSES, score  # noqa: E402


def measure(data: Path, language: str) -> str:
    """One Markdown table row for ``{language}_text_sentiment``."""
    with (data / f"{language}_text_sentiment" / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "text", "--json", "--lang", language],
        input="\n".join(r["text"] for r in rows) + "\n", capture_output=True, text=True,
        cwd=ROOT, check=True,
    )
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    s = score([r["label"] for r in rows], [r["label"] for r in results])
    confusion = " / ".join(" ".join(str(n) for n in row) for row in s.confusion)
    model = results[0]["model"] if results else "?"
    return (f"| {language} | {len(rows)} | {s.accuracy:.3f} | {s.macro_f1:.3f} | "
            f"{confusion} | {model} |")


def main() -> int:
    """Measure both languages and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    if not (args.data / "zh_text_sentiment").is_dir():
        print(f"no dev sets under {args.data}", file=sys.stderr)
        return 2
    print(f"| language | texts | accuracy | macro-F1 | confusion (rows truth, columns "
          f"predicted: {' / '.join(CLASSES)}) | model |")
    print("|---|---|---|---|---|---|")
    for language in ("zh", "en"):
        print(measure(args.data, language), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
