"""Offline ASR: Whisper base through faster-whisper (CTranslate2), int8 on CPU.

Chinese and English are both understood; the language is detected per clip, limited to
VOICEMOOD_LANGUAGES. Chinese output is converted to simplified characters, since Whisper
sometimes answers Mandarin in traditional ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from inference.transcript_text import ZH_PROMPT, join_text, to_simplified
from inference.types import Clip, ModelInfo, Transcript

__all__ = ["ZH_PROMPT", "WhisperAsr", "join_text", "to_simplified"]

log = logging.getLogger(__name__)



def whisper_model_name(model_dir: Path) -> str:
    """The offline ASR's name in ``models status``, the start-up log, metrics and every
    stored analysis: one function, so the three never disagree."""
    return f"whisper-base ({Path(model_dir).name})"


class WhisperAsr:
    """:class:`~inference.types.AsrBackend` on faster-whisper."""

    def __init__(
        self,
        model_dir: Path,
        *,
        device: str = "cpu",
        languages: Sequence[str] = ("zh", "en"),
        beam_size: int = 5,
        cpu_threads: int = 0,
        short_windows: bool = True,
    ) -> None:
        from faster_whisper import WhisperModel

        ct2_device, index = (device.split(":") + ["0"])[:2] if device.startswith("cuda") else (
            "cpu", "0")
        compute_type = "float16" if ct2_device == "cuda" else "int8"
        self.model = WhisperModel(
            str(model_dir), device=ct2_device, device_index=int(index),
            compute_type=compute_type, cpu_threads=cpu_threads,
        )
        self.languages = [lang for lang in languages if lang]
        self.beam_size = beam_size
        #: Whether short notes are encoded in short windows (inference/whisper_batch.py).
        self.short_windows = short_windows
        self.info = ModelInfo(
            component="asr", tier="offline", model=whisper_model_name(model_dir),
            device=device, detail=f"faster-whisper {compute_type}, Silero VAD",
        )

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        """Transcribe the clips together: their windows are beam-decoded as one batch.

        A note whose speech fits is encoded in a short window rather than 30 s (unless
        ``short_windows`` is off); every other window follows the decoding rules of
        faster-whisper's own ``WhisperModel.transcribe`` on each clip alone (see
        inference/whisper_batch.py).
        """
        from inference.whisper_batch import transcribe_clips  # needs faster-whisper loaded

        return transcribe_clips(self, clips)
