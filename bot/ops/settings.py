"""Settings from the environment or a ``.env`` file.

The names (``VOICEMOOD_*``, ``TELEGRAM_*``, ``SLACK_*``) are a contract with operators:
every one is listed, with a comment, in ``.env.example``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """All runtime configuration of voicemood."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- storage and general -------------------------------------------------------------
    db: Path = Field(Path("data/voicemood.db"), validation_alias=_env("VOICEMOOD_DB"))
    models_dir: Path = Field(Path("models"), validation_alias=_env("VOICEMOOD_MODELS_DIR"))
    tz: str = Field("UTC", validation_alias=_env("VOICEMOOD_TZ"))
    log_level: str = Field("INFO", validation_alias=_env("VOICEMOOD_LOG_LEVEL"))
    retention_days: int = Field(0, ge=0, validation_alias=_env("VOICEMOOD_RETENTION_DAYS"))

    # --- models ----------------------------------------------------------------------------
    device: str = Field("auto", validation_alias=_env("VOICEMOOD_DEVICE"))
    asr_backend: Literal["auto", "funasr", "whisper"] = Field(
        "auto", validation_alias=_env("VOICEMOOD_ASR_BACKEND")
    )
    #: SenseVoice-Small: zh/en/yue/ja/ko with its own language ID and emotion (README,
    #: "Models: two tiers"); paraformer-zh is the Mandarin alternative.
    asr_model: str = Field("iic/SenseVoiceSmall", validation_alias=_env("VOICEMOOD_ASR_MODEL"))
    vad_model: str = Field("fsmn-vad", validation_alias=_env("VOICEMOOD_VAD_MODEL"))
    punc_model: str = Field("ct-punc", validation_alias=_env("VOICEMOOD_PUNC_MODEL"))
    whisper_model: str = Field("", validation_alias=_env("VOICEMOOD_WHISPER_MODEL"))
    #: Short notes through short encoder windows (inference/whisper_batch.py); false: every
    #: note through 30 s windows, word for word as faster-whisper's own transcribe.
    whisper_short_windows: bool = Field(
        True, validation_alias=_env("VOICEMOOD_WHISPER_SHORT_WINDOWS"))
    languages: str = Field("zh,en", validation_alias=_env("VOICEMOOD_LANGUAGES"))
    text_emotion_backend: Literal["auto", "transformers", "lexicon", "off"] = Field(
        "auto", validation_alias=_env("VOICEMOOD_TEXT_EMOTION_BACKEND")
    )
    #: One classifier for every language, or one per language ("zh=...,en=..."); a language
    #: without one is read by the offline words model (inference/text_emotion_by_language.py).
    text_emotion_model: str = Field(
        "zh=IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment,"
        "en=cardiffnlp/twitter-roberta-base-sentiment-latest",
        validation_alias=_env("VOICEMOOD_TEXT_EMOTION_MODEL"),
    )
    #: Tag of each output column of the text classifier, comma-separated ("" = by class name);
    #: per language separated by ";" ("zh=negative,positive;en=negative,neutral,positive").
    text_emotion_labels: str = Field("", validation_alias=_env("VOICEMOOD_TEXT_EMOTION_LABELS"))
    voice_emotion_backend: Literal["auto", "emotion2vec", "prosody", "off"] = Field(
        "auto", validation_alias=_env("VOICEMOOD_VOICE_EMOTION_BACKEND")
    )
    voice_emotion_model: str = Field(
        "iic/emotion2vec_plus_base", validation_alias=_env("VOICEMOOD_VOICE_EMOTION_MODEL")
    )
    model_hub: Literal["ms", "hf"] = Field("ms", validation_alias=_env("VOICEMOOD_MODEL_HUB"))

    # --- input limits ------------------------------------------------------------------------
    max_audio_seconds: float = Field(
        600.0, gt=0, validation_alias=_env("VOICEMOOD_MAX_AUDIO_SECONDS")
    )
    max_audio_bytes: int = Field(
        50 * 1024 * 1024, gt=0, validation_alias=_env("VOICEMOOD_MAX_AUDIO_BYTES")
    )
    decode_timeout_s: float = Field(30.0, gt=0, validation_alias=_env("VOICEMOOD_DECODE_TIMEOUT_S"))

    # --- engine ------------------------------------------------------------------------------
    batch_size: int = Field(8, ge=1, validation_alias=_env("VOICEMOOD_BATCH_SIZE"))
    batch_wait_ms: int = Field(30, ge=0, validation_alias=_env("VOICEMOOD_BATCH_WAIT_MS"))
    queue_size: int = Field(64, ge=1, validation_alias=_env("VOICEMOOD_QUEUE_SIZE"))
    queue_audio_seconds: float = Field(
        3600.0, gt=0, validation_alias=_env("VOICEMOOD_QUEUE_AUDIO_SECONDS")
    )
    cache_size: int = Field(256, ge=0, validation_alias=_env("VOICEMOOD_CACHE_SIZE"))

    # --- scale-out: Celery over Redis, pending notes, metrics ---------------------------------
    broker_url: str = Field("", validation_alias=_env("VOICEMOOD_BROKER_URL"))
    broker_max_queue: int = Field(64, ge=1, validation_alias=_env("VOICEMOOD_BROKER_MAX_QUEUE"))
    task_time_limit_s: float = Field(
        900.0, gt=0, validation_alias=_env("VOICEMOOD_TASK_TIME_LIMIT_S")
    )
    #: 20 minutes: above the time limit, and with the time limit well inside the result
    #: timeout, so a dead worker's note is redelivered and answered while someone waits.
    broker_visibility_timeout_s: float = Field(
        1200.0, gt=0, validation_alias=_env("VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S")
    )
    broker_result_timeout_s: float = Field(
        3600.0, gt=0, validation_alias=_env("VOICEMOOD_BROKER_RESULT_TIMEOUT_S")
    )
    pending_max_age_s: float = Field(
        86400.0, gt=0, validation_alias=_env("VOICEMOOD_PENDING_MAX_AGE_S")
    )
    metrics_port: int = Field(0, ge=0, le=65535, validation_alias=_env("VOICEMOOD_METRICS_PORT"))
    #: Address of /healthz and /metrics: loopback unless a scraper elsewhere must reach them
    #: (queue depth, note counts and model names are nobody else's business).
    metrics_host: str = Field("127.0.0.1", min_length=1,
                              validation_alias=_env("VOICEMOOD_METRICS_HOST"))

    # --- Telegram ----------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_allowed_users: str = Field("", validation_alias=_env("TELEGRAM_ALLOWED_USERS"))
    telegram_api_base_url: str = Field(
        "https://api.telegram.org/bot", validation_alias=_env("TELEGRAM_API_BASE_URL")
    )
    telegram_file_base_url: str = Field(
        "https://api.telegram.org/file/bot", validation_alias=_env("TELEGRAM_FILE_BASE_URL")
    )
    telegram_webhook_url: str = Field("", validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_port: int = Field(8443, validation_alias=_env("TELEGRAM_WEBHOOK_PORT"))
    telegram_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )
    telegram_max_download_bytes: int = Field(
        20 * 1024 * 1024, validation_alias=_env("TELEGRAM_MAX_DOWNLOAD_BYTES")
    )
    telegram_group_mode: Literal["all", "ondemand"] = Field(
        "all", validation_alias=_env("TELEGRAM_GROUP_MODE")
    )

    # --- Slack -------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_port: int = Field(3000, validation_alias=_env("SLACK_PORT"))
    slack_api_base_url: str = Field(
        "https://slack.com/api/", validation_alias=_env("SLACK_API_BASE_URL")
    )
    slack_channel_mode: Literal["all", "ondemand"] = Field(
        "all", validation_alias=_env("SLACK_CHANNEL_MODE")
    )

    # --- web page and JSON API -----------------------------------------------------------------
    web_host: str = Field("127.0.0.1", validation_alias=_env("VOICEMOOD_WEB_HOST"))
    #: ``voicemood web`` listens on 6006 when unset; ``voicemood serve`` starts the page beside
    #: the bots only when it is set.
    web_port: int | None = Field(None, ge=1, le=65535, validation_alias=_env("VOICEMOOD_WEB_PORT"))
    web_users: SecretStr | None = Field(None, validation_alias=_env("VOICEMOOD_WEB_USERS"))
    api_token: SecretStr | None = Field(None, validation_alias=_env("VOICEMOOD_API_TOKEN"))
    #: Bytes of upload bodies the JSON API holds in memory at once (unset: 4 largest files).
    web_upload_memory_bytes: int | None = Field(
        None, gt=0, validation_alias=_env("VOICEMOOD_WEB_UPLOAD_MEMORY_BYTES"))

    @field_validator("web_port", "web_users", "api_token", "web_upload_memory_bytes",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `VOICEMOOD_WEB_PORT=` in a copied .env.example means "not set", not "port ''".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        v = value.strip().lower()
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("VOICEMOOD_DEVICE must be auto, cpu, cuda or cuda:N")

    @field_validator("tz")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        # Checked here, not when the first /trend or digest cuts days: an unknown zone
        # was accepted at start and only failed later, as a 500 on /api/trend.
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = value.strip() or "UTC"
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"VOICEMOOD_TZ={value!r} is not a known time zone; use an IANA "
                             "name like UTC, Europe/Berlin or Asia/Shanghai") from None
        return name

    @model_validator(mode="after")
    def _check_upload_memory(self) -> Settings:
        # Below one largest file, a file the limit admits could never be taken.
        if (self.web_upload_memory_bytes is not None
                and self.web_upload_memory_bytes < self.max_audio_bytes):
            raise ValueError("VOICEMOOD_WEB_UPLOAD_MEMORY_BYTES must be at least "
                             "VOICEMOOD_MAX_AUDIO_BYTES (one largest file)")
        return self

    @property
    def web_upload_budget(self) -> int:
        """Bytes of upload bodies the JSON API may hold at once (``VOICEMOOD_WEB_UPLOAD_
        MEMORY_BYTES``, else four times ``VOICEMOOD_MAX_AUDIO_BYTES``)."""
        return self.web_upload_memory_bytes or 4 * self.max_audio_bytes

    @model_validator(mode="after")
    def _check_visibility(self) -> Settings:
        # Redis hands an unacknowledged task to another worker after the visibility timeout:
        # shorter than the longest task, and a slow note would be analysed twice.
        if self.broker_visibility_timeout_s <= self.task_time_limit_s:
            raise ValueError("VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S must be longer than "
                             "VOICEMOOD_TASK_TIME_LIMIT_S")
        # A note whose worker died comes back after the visibility timeout and may then run
        # up to the time limit: the front end must still be waiting by then, or it revokes
        # the task just before Redis hands it out again and the note is never answered.
        if self.broker_result_timeout_s <= (self.broker_visibility_timeout_s
                                            + self.task_time_limit_s):
            raise ValueError("VOICEMOOD_BROKER_RESULT_TIMEOUT_S must be longer than "
                             "VOICEMOOD_BROKER_VISIBILITY_TIMEOUT_S + VOICEMOOD_TASK_TIME_LIMIT_S "
                             "(a note whose worker died is handed out again only after the "
                             "visibility timeout)")
        return self

    @property
    def language_list(self) -> list[str]:
        """Languages the ASR may choose from; empty means any."""
        return [p.strip() for p in self.languages.split(",") if p.strip()]

    @property
    def telegram_allowed_ids(self) -> set[int]:
        """Telegram user ids allowed to use the bot; empty means everyone."""
        parts = self.telegram_allowed_users.replace(" ", ",").split(",")
        return {int(p) for p in parts if p.strip()}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
