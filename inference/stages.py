"""The stages of one note, told to whoever shows its progress (the page, a CLI bar)."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

#: The stages one note goes through, in order.
STAGES: tuple[str, ...] = ("probe", "decode", "queue", "transcribe", "emotion")
#: Told ``(stage, done)`` as a note enters a stage of :data:`STAGES`; ``done`` is the part of
#: that stage already behind it (0..1: a long note's chunks while it is transcribed).
OnStage = Callable[[str, float], None]

#: Where each stage starts in a note's progress (0..1) and how much of it the stage spans:
#: transcription, the long part, moves with a long note's chunks.
_SPAN: dict[str, tuple[float, float]] = {
    "probe": (0.02, 0.0), "decode": (0.05, 0.0), "queue": (0.10, 0.0),
    "transcribe": (0.20, 0.65), "emotion": (0.90, 0.0),
}


def fraction(stage: str, done: float = 0.0) -> float:
    """How far a note is (0..1) when it has done ``done`` of ``stage``: for progress bars."""
    start, span = _SPAN.get(stage, (0.0, 0.0))
    return start + span * min(max(done, 0.0), 1.0)


def tell(on_stage: OnStage | None, stage: str, done: float = 0.0) -> None:
    """Call ``on_stage(stage, done)`` if there is one.

    A failing callback is logged and forgotten: a progress display must never fail the
    note it reports on.
    """
    if on_stage is None:
        return
    try:
        on_stage(stage, done)
    except Exception:
        log.exception("a progress callback failed at stage %s", stage)
