"""bot.ops.settings: names operators rely on, defaults, validation, and .env.example coverage."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bot.ops.settings import Settings
from tests.conftest import REPO

REQUIRED = [
    "VOICEMOOD_DB", "VOICEMOOD_DEVICE", "VOICEMOOD_ASR_BACKEND", "VOICEMOOD_ASR_MODEL",
    "VOICEMOOD_VAD_MODEL", "VOICEMOOD_PUNC_MODEL", "VOICEMOOD_TEXT_EMOTION_MODEL",
    "VOICEMOOD_VOICE_EMOTION_MODEL", "VOICEMOOD_MODEL_HUB", "VOICEMOOD_MAX_AUDIO_SECONDS",
    "VOICEMOOD_MAX_AUDIO_BYTES", "VOICEMOOD_TZ", "TELEGRAM_BOT_TOKEN", "TELEGRAM_ALLOWED_USERS",
    "TELEGRAM_API_BASE_URL", "TELEGRAM_FILE_BASE_URL", "TELEGRAM_WEBHOOK_URL", "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_PORT", "SLACK_API_BASE_URL",
]


def env_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.add(alias.choices[0])  # type: ignore[union-attr]
    return names


def test_contract_names_exist() -> None:
    assert set(REQUIRED) <= env_names()


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = {}
    for i, line in enumerate(lines):
        if line and not line.startswith("#") and "=" in line:
            listed[line.split("=", 1)[0]] = lines[i - 1]
    assert set(listed) == env_names()
    assert all(prev.startswith("#") for prev in listed.values())


def test_env_example_values_parse_as_defaults(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    example = tmp_path / ".env"
    example.write_text((REPO / ".env.example").read_text(encoding="utf-8"))
    from_file = Settings(_env_file=example)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    # The secrets are listed blank (an empty value, where the default is unset): the example
    # never ships a token. Compared with literals, not with what the file itself parsed to.
    blank = SecretStr("")
    assert from_file.model_dump() == defaults.model_dump() | {
        "telegram_bot_token": blank, "slack_bot_token": blank, "slack_app_token": blank,
        "slack_signing_secret": blank, "telegram_webhook_secret": blank,
    }
    assert str(defaults.db) == "data/voicemood.db"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEMOOD_DEVICE", "cuda:1")
    monkeypatch.setenv("VOICEMOOD_MAX_AUDIO_SECONDS", "90")
    monkeypatch.setenv("TELEGRAM_ALLOWED_USERS", "12, 34")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:secret-token")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.device == "cuda:1"
    assert s.max_audio_seconds == 90
    assert s.telegram_allowed_ids == {12, 34}
    assert "secret-token" not in repr(s)  # secrets never print


@pytest.mark.parametrize(("name", "value"), [("VOICEMOOD_DEVICE", "tpu"),
                                             ("VOICEMOOD_ASR_BACKEND", "kaldi"),
                                             ("VOICEMOOD_MAX_AUDIO_BYTES", "-5")])
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
