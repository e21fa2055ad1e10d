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
        lines.append(f"🎙 {words['voice']}: {escape(emo.voice.label, markup)} "
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


ERRORS = {
    "en": {
        "empty": "That file is empty — please send the voice note again.",
        "too_large": "That file is too large for me ({limit}). Please send a shorter recording.",
        "not_audio": "That doesn't look like audio. Send a voice note or an audio file "
                     "(ogg, mp3, m4a, mp4, webm, wav, flac).",
        "corrupt": "I couldn't decode that audio — the file seems damaged. "
                   "Could you record it again?",
        "unsupported_codec": "That audio uses a format I can't decode. Please send it as "
                             "ogg, mp3, m4a or wav.",
        "too_long": "That recording is too long: I analyse up to {limit}. "
                    "Please send a shorter one.",
        "silent": "I couldn't hear anything — the recording seems silent.",
        "no_speech": "I couldn't make out any words in that recording. "
                     "Try speaking closer to the microphone.",
        "busy": "I'm busy with other recordings right now. Please try again in about "
                "{wait} s.",
        "download_too_large": "That file is larger than {limit}, which is the most I can "
                              "download here. Please send a shorter recording.",
        "download_failed": "I couldn't download that file. Please try sending it again.",
        "internal": "Sorry — something went wrong on my side while analysing that. "
                    "It has been logged; please try again in a moment.",
        "bad_input": "I couldn't analyse that file.",
        "model_unavailable": "The speech models are not available right now. "
                             "The operator has been told.",
        "unavailable": "I can't reach my speech workers right now. Please try again later "
                       "— in a few minutes.",
    },
    "zh": {
        "empty": "文件是空的，请重新发送语音。",
        "too_large": "文件太大了（上限 {limit}），请发送短一些的录音。",
        "not_audio": "这看起来不是音频。请发送语音消息或音频文件"
                     "（ogg、mp3、m4a、mp4、webm、wav、flac）。",
        "corrupt": "无法解码这段音频，文件可能已损坏。请重新录一次。",
        "unsupported_codec": "这段音频的编码格式无法解码，请以 ogg、mp3、m4a 或 wav 格式发送。",
        "too_long": "录音太长了：最多分析 {limit}。请发送短一些的录音。",
        "silent": "什么也没听到，这段录音似乎是静音。",
        "no_speech": "没有识别出任何话语。请靠近麦克风再试一次。",
        "busy": "正在处理其他录音，请大约 {wait} 秒后再试。",
        "download_too_large": "文件超过 {limit}，这是这里能下载的上限。请发送短一些的录音。",
        "download_failed": "无法下载这个文件，请重新发送。",
        "internal": "抱歉，分析时出了点问题，已记录下来，请稍后再试。",
        "bad_input": "无法分析这个文件。",
        "model_unavailable": "语音模型暂时不可用，已通知管理员。",
        "unavailable": "暂时无法连接语音处理服务，请过几分钟再试。",
    },
}


def format_error(code: str, lang: str = "en", **params: object) -> str:
    """A friendly reply for an error code (see :mod:`inference.errors`)."""
    table = ERRORS[lang_of(lang)]
    template = table.get(code, table["internal"])
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


TEXTS = {
    "en": {
        "working": "🎧 Transcribing {seconds} s of audio…",
        "working_unknown": "🎧 Analysing your recording…",
        "not_allowed": "Sorry, this bot is private and you're not on its list of users. "
                       "Nothing you send is processed or stored.",
        "sender_not_allowed": "Sorry, this bot is private and the person who sent that note "
                              "is not on its list of users, so I won't analyse or store it.",
        "history_empty": "You have no analyses yet. Send me a voice note!",
        "history_header": "Your last {n} analyses:",
        "forget_confirm": "This deletes everything I have stored about you ({count} "
                          "analyses). It cannot be undone. Are you sure?",
        "forget_yes": "Yes, delete",
        "forget_no": "Cancel",
        "forget_done": "Done: {count} analyses deleted. Nothing about you is stored now.",
        "forget_cancelled": "Cancelled — nothing was deleted.",
        "forget_nothing": "I have nothing stored about you.",
        "bad_number": "Please give a number between 1 and {max}, e.g. {example}.",
        "pending_too_old": "Sorry — I was restarted while your voice note was waiting and it "
                           "is too old to analyse now. Please send it again.",
    },
    "zh": {
        "working": "🎧 正在转写 {seconds} 秒的音频…",
        "working_unknown": "🎧 正在分析你的录音…",
        "not_allowed": "抱歉，这是一个私人机器人，你不在用户名单中。你发送的内容不会被处理或保存。",
        "sender_not_allowed": "抱歉，这是一个私人机器人，发这条语音的人不在用户名单中，"
                              "所以我不会分析或保存它。",
        "history_empty": "还没有分析记录。发一条语音给我吧！",
        "history_header": "你最近的 {n} 条分析：",
        "forget_confirm": "这将删除我保存的关于你的全部内容（{count} 条分析），"
                          "且无法恢复。确定吗？",
        "forget_yes": "确定删除",
        "forget_no": "取消",
        "forget_done": "已删除 {count} 条分析。现在没有保存任何关于你的内容。",
        "forget_cancelled": "已取消，没有删除任何内容。",
        "forget_nothing": "没有保存任何关于你的内容。",
        "bad_number": "请给出 1 到 {max} 之间的数字，例如 {example}。",
        "pending_too_old": "抱歉，你的语音在等待处理时我重启了，现在已经太久无法分析。请重新发送。",
    },
}


def text(key: str, lang: str = "en", **params: object) -> str:
    """A fixed phrase in the user's language."""
    return TEXTS[lang_of(lang)][key].format(**params)


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


HELP = {
    "en": (
        "I'm voicemood. Send me a voice note, an audio file or a video note and I'll reply "
        "with what you said and the mood I hear — from your words and your voice — as one "
        "of four tags: 😊 positive, 😔 negative, 😐 neutral, 😠 excited.\n\n"
        "What I store: for each note, the transcript, the tags and scores, its length and "
        "time, under your user id — never the audio. Only you can see your history.\n\n"
        "{commands}"
    ),
    "zh": (
        "我是 voicemood。给我发语音、音频文件或视频消息，"
        "我会回复你说的内容，以及我从你的话语和声音中"
        "听出的情绪：😊 正向、😔 负向、😐 中性、😠 激动。\n\n"
        "我保存什么：每条语音的转写、情绪标签和分数、时长和时间，按你的用户 ID 保存——从不保存音频。"
        "只有你能看到自己的记录。\n\n"
        "{commands}"
    ),
}


def help_text(commands: str, lang: str = "en") -> str:
    """The help message, with the front end's own list of commands."""
    return HELP[lang_of(lang)].format(commands=commands)


MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def day_label(d: date, lang: str = "en", *, weekday: bool = False) -> str:
    """A short date for summaries and chart axes: ``Mar 5`` (``Tue Mar 5`` with
    ``weekday``) in English, ``3月5日`` in Chinese."""
    if lang.startswith("zh"):
        return f"{d.month}月{d.day}日"
    text = f"{MONTHS_EN[d.month - 1]} {d.day}"
    return f"{_WEEKDAYS_EN[d.weekday()]} {text}" if weekday else text
