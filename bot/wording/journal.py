"""What the mood-journal features (export, weekly digest, privacy) say, in English and
Chinese, for every front end. ``{cmd}`` is the front end's spelling of the command
(``/digest`` on Telegram, ``/voicemood digest`` on Slack)."""

from __future__ import annotations

from bot.wording import lang_of, text

WEEKDAY_NAMES = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
}

def journal_text(key: str, lang: str = "en", **params: object) -> str:
    """A mood-journal phrase in the person's language (English unless Chinese)."""
    return text(key, lang, **params)


def weekday_name(weekday: int, lang: str = "en") -> str:
    """``Sunday`` / ``周日`` for 6."""
    return WEEKDAY_NAMES[lang_of(lang)][weekday]
