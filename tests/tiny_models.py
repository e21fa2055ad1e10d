"""Helpers for tests of the full tier: the tiny-model builder and real speech clips."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


@cache
def builder() -> ModuleType:
    """``scripts/make_tiny_models.py`` as a module (scripts/ is not a package)."""
    path = ROOT / "scripts" / "make_tiny_models.py"
    spec = importlib.util.spec_from_file_location("make_tiny_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def spoken_clip(text: str, workdir: Path, voice: str = "en") -> np.ndarray:
    """``text`` spoken by espeak-ng, resampled by ffmpeg to float32 mono 16 kHz."""
    espeak, ffmpeg = shutil.which("espeak-ng"), shutil.which("ffmpeg")
    if not espeak or not ffmpeg:
        pytest.skip("espeak-ng and ffmpeg are needed to make speech clips")
    workdir.mkdir(parents=True, exist_ok=True)
    raw, wav = workdir / "raw.wav", workdir / "speech16k.wav"
    subprocess.run([espeak, "-v", voice, "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-i", str(raw), "-ar", "16000", "-ac", "1",
         str(wav)],
        check=True,
        timeout=30,
    )
    audio, rate = sf.read(wav, dtype="float32")
    assert rate == 16000 and audio.ndim == 1
    return audio


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run tiny models on one torch thread, restoring the count afterwards.

    funasr records the thread count at load time and re-applies it on every call, so the
    modules that use this load their backends inside it. Tiny models gain nothing from
    threads, and on a busy 2-core machine torch's spinning workers made calls 3x slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
