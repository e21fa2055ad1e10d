"""Telegram's message limit, the splitting of long HTML replies to it, and the lookup of the
Telegram-only phrases (which live in :mod:`bot.wording`'s one catalogue)."""

from __future__ import annotations

import re

from bot import wording

#: Telegram's limit for one message's text (counted in UTF-16 code units).
MESSAGE_LIMIT = 4096

def phrase(key: str, lang: str = "en", **params: object) -> str:
    """A Telegram-only phrase (``telegram.<key>`` in :mod:`bot.wording`'s catalogue) in the
    user's language (English unless Chinese)."""
    return wording.text(f"telegram.{key}", lang, **params)


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
