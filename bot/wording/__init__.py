"""What voicemood says to people, in English and Chinese, for every front end.

Functions take ``markup``: ``"plain"`` (CLI), ``"html"`` (Telegram parse mode HTML) or
``"mrkdwn"`` (Slack). User content (transcripts) is always escaped for that markup.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from bot.analysis import Analysis
from bot.wording import catalogue
from inference import errors
from inference.errors import Busy, VoicemoodError
from inference.types import TAG_ZH

if TYPE_CHECKING:
    from bot.ops.settings import Settings

Markup = Literal["plain", "html", "mrkdwn"]

EMOJI = {"positive": "😊", "negative": "😔", "neutral": "😐", "excited": "😠"}
EXCITED_HAPPY = "🤩"


def lang_of(code: str | None) -> str:
    """Reply language from a platform language code: "zh" for Chinese, else "en"."""
    return "zh" if code and code.lower().startswith("zh") else "en"


#: Characters that start or end Slack mrkdwn formatting: *bold*, _italic_, ~strike~, `code`.
_MRKDWN_MARKS = re.compile(r"([*_~`])")
#: U+2060 WORD JOINER: invisible, and Slack no longer sees the mark beside it as formatting.
_JOINER = "\u2060"


def escape(text: str, markup: Markup) -> str:
    """Escape user text so it shows literally in ``markup``.

    Slack has no escape for its formatting marks, so each mark gets an invisible word
    joiner on both sides: a transcript saying ``*really*`` shows the asterisks, not bold.
    """
    if markup == "html":
        return html.escape(text, quote=False)
    if markup == "mrkdwn":
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return _MRKDWN_MARKS.sub(f"{_JOINER}\\1{_JOINER}", text)
    return text


def bold(text: str, markup: Markup) -> str:
    """Bold (already escaped) text."""
    if markup == "html":
        return f"<b>{text}</b>"
    if markup == "mrkdwn":
        return f"*{text}*"
    return text


def tag_line(label: str, confidence: float, valence: float = 0.0) -> str:
    """``😠 激动 / excited · 0.82``: the tag in both languages with its confidence."""
    emoji = EMOJI.get(label, "")
    if label == "excited" and valence > 0.2:
        emoji = EXCITED_HAPPY
    return f"{emoji} {TAG_ZH.get(label, label)} / {label} · {confidence:.2f}"


def voice_label(label: str, lang: str = "en") -> str:
    """The voice reading's ``label`` in ``lang`` (the one table, ``voice.<label>`` in the
    catalogue); a label the catalogue does not know (a fine-tuned model's) as it is."""
    key = f"voice.{label}"
    return catalogue.template(key, lang_of(lang)) if catalogue.has(key) else label


_LABELS = {
    "en": {"voice": "voice", "text": "words", "arousal": "arousal", "heard": "Transcript",
           "off": "off"},
    "zh": {"voice": "声音", "text": "文字", "arousal": "激活度", "heard": "转写",
           "off": "未启用"},
}


def format_analysis(a: Analysis, lang: str = "en", markup: Markup = "plain") -> str:
    """The reply to a voice note: tag line, the two readings, then the transcript."""
    words = _LABELS[lang_of(lang)]
    emo = a.emotion
    lines = [bold(escape(tag_line(emo.label, emo.confidence, emo.valence), markup), markup)]
    if emo.voice is not None:
        lines.append(f"🎙 {words['voice']}: {escape(voice_label(emo.voice.label, lang), markup)} "
                     f"({words['arousal']} {emo.voice.arousal:.2f})")
    else:
        lines.append(f"🎙 {words['voice']}: {words['off']}")
    if emo.text is not None:
        score = emo.text.scores.get(emo.text.label, 0.0)
        tag = emo.text.label if lang_of(lang) == "en" else TAG_ZH.get(emo.text.label, "")
        lines.append(f"📝 {words['text']}: {escape(tag, markup)} ({score:.2f})")
    else:
        lines.append(f"📝 {words['text']}: {words['off']}")
    lines.append("")
    lines.append(f"{words['heard']} ({a.duration_s:.1f} s, {escape(a.language or '?', markup)}):")
    lines.append(escape(a.transcript, markup))
    return "\n".join(lines)


def format_error(code: str, lang: str = "en", **params: object) -> str:
    """A friendly reply for an error code (see :mod:`inference.errors`)."""
    key = f"error.{code}" if catalogue.has(f"error.{code}") else "error.internal"
    template = catalogue.template(key, lang_of(lang))
    defaults = {"limit": "", "wait": "30"}
    defaults.update({k: str(v) for k, v in params.items()})
    return template.format(**defaults)


def error_reply(exc: BaseException, lang: str, settings: Settings,
                markup: Markup = "plain") -> str:
    """The user's phrase for any failure, escaped for ``markup``: the one error mapping.

    :class:`~inference.errors.Busy` says how long to wait; a
    :class:`~inference.errors.VoicemoodError` (input refusals, download refusals, missing
    models) its code's phrase with the configured limit; anything else the apology, whose
    details belong in the log, never in a reply.
    """
    params: dict[str, object] = {}
    if isinstance(exc, Busy):
        code = "busy"
        params["wait"] = max(1, math.ceil(exc.retry_after_s))
    elif isinstance(exc, VoicemoodError):
        code = exc.code
        if code == "too_large":
            params["limit"] = human_bytes(settings.max_audio_bytes)
        elif code == "too_long":
            params["limit"] = human_seconds(settings.max_audio_seconds)
        elif code == "download_too_large":
            params["limit"] = human_bytes(getattr(exc, "limit_bytes", settings.max_audio_bytes))
    else:
        code = "internal"
    return escape(format_error(code, lang, **params), markup)


def human_bytes(n: int) -> str:
    """``50 MB`` style size: the one wording of sizes, shared with the refusals that
    :mod:`inference` writes (CLI and API), see :func:`inference.errors.human_bytes`."""
    return errors.human_bytes(n)


def human_seconds(seconds: float) -> str:
    """``10 min`` / ``90 s`` style duration."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def text(key: str, lang: str = "en", **params: object) -> str:
    """A fixed phrase in the user's language."""
    return catalogue.template(key, lang_of(lang)).format(**params)


def format_history(items: Sequence[Analysis], lang: str = "en", markup: Markup = "plain",
                   tz: str = "UTC", preview: int = 80) -> str:
    """One line per analysis, newest first: time, tag, the start of the transcript."""
    if not items:
        return text("history_empty", lang)
    zone = ZoneInfo(tz)
    lines = [text("history_header", lang, n=len(items))]
    for a in items:
        when = datetime.fromtimestamp(a.created_at, zone).strftime("%Y-%m-%d %H:%M")
        snippet = a.transcript if len(a.transcript) <= preview else a.transcript[:preview] + "…"
        head = escape(f"{when} · {tag_line(a.label, a.emotion.confidence, a.emotion.valence)}",
                      markup)
        lines.append(f"• {head}\n  {escape(snippet, markup)}")
    return "\n".join(lines)


def help_text(commands: str, lang: str = "en") -> str:
    """The help message, with the front end's own list of commands."""
    return catalogue.template("help", lang_of(lang)).format(commands=commands)


MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def day_label(d: date, lang: str = "en", *, weekday: bool = False) -> str:
    """A short date for summaries and chart axes: ``Mar 5`` (``Tue Mar 5`` with
    ``weekday``) in English, ``3月5日`` in Chinese."""
    if lang.startswith("zh"):
        return f"{d.month}月{d.day}日"
    text = f"{MONTHS_EN[d.month - 1]} {d.day}"
    return f"{_WEEKDAYS_EN[d.weekday()]} {text}" if weekday else text
