"""Telegram-only wording and the splitting of long HTML replies to Telegram's limit."""

from __future__ import annotations

import re

from bot import wording

#: Telegram's limit for one message's text (counted in UTF-16 code units).
MESSAGE_LIMIT = 4096

#: Telegram-only phrases (everything shared lives in bot.wording).
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "commands": (
            "Commands:\n"
            "/history [n] — your last n analyses (default 5)\n"
            "/trend [7d|30d|90d] — how your mood has been going\n"
            "/forget — delete everything stored about you\n"
            "/export [csv|json] [days] — your history as a file\n"
            "/digest [on [weekday] [HH:MM] | off | tz Area/City] — a weekly mood digest\n"
            "/privacy [transcripts off|on] — what I keep about you\n"
            "/mood — reply with it to a voice note to have it analysed\n"
            "/help — this message"
        ),
        "send_voice": "Send me a voice note (or an audio file) and I'll tell you what I "
                      "hear. /help lists the commands.",
        "sent_privately": "I've sent that to you in a private chat.",
        "private_needed": "That's personal, so I only show it in a private chat. Please "
                          "open a chat with me (@{bot}), press Start, then send {command} "
                          "there.",
        "not_yours": "Only the person who asked can press this button.",
        "expired": "This button has expired.",
        "cmd_history": "your last analyses",
        "cmd_trend": "your mood trend",
        "cmd_forget": "delete everything stored about you",
        "cmd_help": "what I do and what I store",
    },
    "zh": {
        "commands": (
            "命令：\n"
            "/history [n] — 你最近的 n 条分析（默认 5 条）\n"
            "/trend [7d|30d|90d] — 你的情绪走势\n"
            "/forget — 删除保存的关于你的全部内容\n"
            "/export [csv|json] [天数] — 把你的记录导出为文件\n"
            "/digest [on [星期] [HH:MM] | off | tz 地区/城市] — 每周情绪摘要\n"
            "/privacy [transcripts off|on] — 我保存了什么\n"
            "/mood — 用它回复一条语音，我就会分析\n"
            "/help — 显示本说明"
        ),
        "send_voice": "给我发一条语音（或音频文件），我会告诉你我听到了什么。/help 查看命令。",
        "sent_privately": "已通过私聊发给你。",
        "private_needed": "这是个人信息，我只在私聊中显示。请先打开与我的私聊（@{bot}），"
                          "点击“开始”，然后在那里发送 {command}。",
        "not_yours": "只有发起请求的人才能点这个按钮。",
        "expired": "这个按钮已失效。",
        "cmd_history": "你最近的分析",
        "cmd_trend": "你的情绪走势",
        "cmd_forget": "删除保存的关于你的全部内容",
        "cmd_help": "我能做什么、保存什么",
    },
}


def phrase(key: str, lang: str = "en", **params: object) -> str:
    """A Telegram-only phrase in the user's language (English unless Chinese)."""
    return PHRASES[wording.lang_of(lang)][key].format(**params)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


_TAG_RE = re.compile(r"<(/?)([a-zA-Z-]+)[^>]*>")


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split HTML ``text`` into pieces of at most ``limit`` UTF-16 units.

    Cuts at a line break where possible, else at a space, else anywhere; never inside an
    HTML tag or an ``&…;`` entity, and tags open at a cut are closed and reopened so each
    piece is valid HTML on its own.
    """
    pieces: list[str] = []
    rest = text
    reopen = ""
    while rest:
        rest = reopen + rest
        if utf16_len(rest) <= limit:
            pieces.append(rest)
            break
        # Leave room for the closing tags we may need to append.
        cut = _cut_point(rest, limit - 40)
        head, rest = rest[:cut], rest[cut:]
        open_tags = _open_tags(head)
        closing = "".join(f"</{t}>" for t in reversed(open_tags))
        reopen = "".join(f"<{t}>" for t in open_tags)
        pieces.append(head.rstrip() + closing)
        rest = rest.lstrip("\n ")
    return [p for p in pieces if p.strip()]


def _cut_point(text: str, limit: int) -> int:
    # Largest prefix that fits, in characters.
    end, used = 0, 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        end += 1
    window = text[:end]
    for sep in ("\n", " "):
        at = window.rfind(sep)
        if at > end // 2:
            return _safe(text, at + 1)
    return _safe(text, end)


def _safe(text: str, cut: int) -> int:
    """Move ``cut`` left so it does not fall inside ``<…>`` or ``&…;``."""
    lt, gt = text.rfind("<", 0, cut), text.rfind(">", 0, cut)
    if lt > gt:
        cut = lt
    amp = text.rfind("&", 0, cut)
    if amp != -1 and ";" not in text[amp:cut] and re.match(r"&#?\w+;", text[amp:]):
        cut = amp
    return max(cut, 1)


def _open_tags(html_text: str) -> list[str]:
    stack: list[str] = []
    for closing, name in _TAG_RE.findall(html_text):
        name = name.lower()
        if closing:
            if name in stack:
                del stack[len(stack) - 1 - stack[::-1].index(name)]
        else:
            stack.append(name)
    return stack
