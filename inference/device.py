"""Pick the device the models run on."""

from __future__ import annotations

import os


def cuda_available() -> bool:
    """True when torch sees a CUDA device (False when torch is absent)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(setting: str, *, cuda: bool | None = None) -> str:
    """Turn VOICEMOOD_DEVICE (auto|cpu|cuda|cuda:N) into a concrete device string.

    ``auto`` takes the first GPU when CUDA is present, else the CPU. Asking for CUDA on a
    machine without it is an error rather than a silent fallback, so operators notice.
    """
    has_cuda = cuda_available() if cuda is None else cuda
    value = (setting or "auto").strip().lower()
    if value == "auto":
        return "cuda:0" if has_cuda else "cpu"
    if value == "cpu":
        return "cpu"
    if value.startswith("cuda"):
        if not has_cuda:
            raise RuntimeError(f"VOICEMOOD_DEVICE={setting} but no CUDA device is available")
        return "cuda:0" if value == "cuda" else value
    raise ValueError(f"unknown device {setting!r}: use auto, cpu, cuda or cuda:N")


def cpu_threads() -> int:
    """CPU cores this process may use (respects affinity masks and containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
