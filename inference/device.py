"""Pick the device the models run on."""

from __future__ import annotations

import os


def cuda_available() -> bool:
    """True when torch sees a CUDA device (False when torch is absent)."""
    return cuda_device_count() > 0


def cuda_device_count() -> int:
    """How many CUDA devices torch sees (0 when torch is absent or built without CUDA)."""
    if not _cuda_driver_present():
        return 0  # answered in milliseconds, where importing torch takes seconds
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _cuda_driver_present() -> bool:
    """Whether the NVIDIA driver library loads: without it no CUDA device can exist."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def resolve_device(setting: str, *, cuda: bool | None = None,
                   count: int | None = None) -> str:
    """Turn VOICEMOOD_DEVICE (auto|cpu|cuda|cuda:N) into a concrete device string.

    ``auto`` takes the first GPU when CUDA is present, else the CPU. Asking for CUDA on a
    machine without it, or for a GPU index it does not have, is an error rather than a
    silent fallback, so operators notice. The message is one line that names the setting:
    the command line prints it as the refusal at start. ``cuda``/``count`` stand in for
    the machine in tests.
    """
    if count is None:
        count = cuda_device_count() if cuda is None else (1 if cuda else 0)
    value = (setting or "auto").strip().lower()
    if value == "auto":
        return "cuda:0" if count else "cpu"
    if value == "cpu":
        return "cpu"
    if value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()):
        if not count:
            raise RuntimeError(f"VOICEMOOD_DEVICE={setting} but no CUDA device is available "
                               "here; use VOICEMOOD_DEVICE=cpu (or auto)")
        index = int(value[5:]) if ":" in value else 0
        # `cuda=True` without a count (tests) means "some GPU": any index goes.
        if cuda is None and index >= count:
            raise RuntimeError(f"VOICEMOOD_DEVICE={setting} but this machine has {count} CUDA "
                               f"device(s) (cuda:0 to cuda:{count - 1})")
        return f"cuda:{index}"
    raise ValueError(f"unknown device {setting!r}: use auto, cpu, cuda or cuda:N")


def cpu_threads() -> int:
    """CPU cores this process may use (respects affinity masks and containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
