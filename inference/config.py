"""The settings the inference package reads, and nothing else.

The application's :class:`~bot.ops.settings.Settings` also holds bot tokens and signing secrets;
the engine, the backends and the pipeline get an :class:`InferenceConfig` instead, so no
secret can reach model code, its logs or a Celery message that ships the config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from inference.device import cpu_threads

#: Decodes at once by default, however many cores there are: ffmpeg plus the decoded
#: samples of a maximum-length note are ~130 MB, and the memory target is per process.
DEFAULT_DECODES_CAP = 4


@dataclass(frozen=True)
class InferenceConfig:
    """Model choice, input limits and queue sizes (see bot/settings.py for each env name)."""

    # --- models ------------------------------------------------------------------------------
    models_dir: Path = Path("models")
    device: str = "auto"
    asr_backend: str = "auto"
    asr_model: str = "iic/SenseVoiceSmall"
    vad_model: str = "fsmn-vad"
    punc_model: str = "ct-punc"
    whisper_model: str = ""
    #: Short notes through short encoder windows (inference/whisper_batch.py).
    whisper_short_windows: bool = True
    #: Languages the ASR may choose from; empty means any.
    languages: tuple[str, ...] = ("zh", "en")
    text_emotion_backend: str = "auto"
    #: One model for every language, or ``lang=model,...`` (inference/text_emotion_by_language.py).
    text_emotion_model: str = (
        "zh=IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment,"
        "en=cardiffnlp/twitter-roberta-base-sentiment-latest"
    )
    #: VOICEMOOD_TEXT_EMOTION_LABELS: a tag per classifier column ("" = by class name).
    text_emotion_labels: str = ""
    voice_emotion_backend: str = "auto"
    voice_emotion_model: str = "iic/emotion2vec_plus_base"
    model_hub: str = "ms"

    # --- input limits ------------------------------------------------------------------------
    max_audio_seconds: float = 600.0
    max_audio_bytes: int = 50 * 1024 * 1024
    decode_timeout_s: float = 30.0

    # --- engine and admission ----------------------------------------------------------------
    batch_size: int = 8
    batch_wait_ms: int = 30
    #: Most jobs admitted and not yet answered.
    queue_size: int = 64
    #: Most seconds of audio admitted and not yet answered (estimated before decoding).
    queue_audio_seconds: float = 3600.0
    #: Most ffmpeg decodes at once; 0 means one per CPU core, at most
    #: :data:`DEFAULT_DECODES_CAP` (each decode of a 10-minute note holds ~130 MB briefly).
    max_decodes: int = 0

    @classmethod
    def from_settings(cls, settings: Any) -> InferenceConfig:
        """Copy the inference fields out of the application settings (tokens stay behind)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "languages":
                values["languages"] = tuple(settings.language_list)
            elif hasattr(settings, f.name):
                values[f.name] = getattr(settings, f.name)
        values["models_dir"] = Path(values.get("models_dir", cls.models_dir))
        return cls(**values)

    @classmethod
    def coerce(cls, config: Any) -> InferenceConfig:
        """``config`` itself, or the inference part of an application ``Settings``."""
        return config if isinstance(config, cls) else cls.from_settings(config)

    @property
    def language_list(self) -> list[str]:
        """Languages the ASR may choose from; empty means any."""
        return [lang for lang in self.languages if lang]

    @property
    def decode_slots(self) -> int:
        """How many decodes may run at once."""
        return self.max_decodes if self.max_decodes > 0 else min(cpu_threads(),
                                                                   DEFAULT_DECODES_CAP)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a Celery task argument)."""
        data = asdict(self)
        data["models_dir"] = str(self.models_dir)
        data["languages"] = list(self.languages)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceConfig:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "models_dir" in values:
            values["models_dir"] = Path(values["models_dir"])
        if "languages" in values:
            values["languages"] = tuple(values["languages"])
        return cls(**values)
