"""Replies to long notes: split at sentence ends to the platform's message limit, and
beyond :data:`MAX_MESSAGES` messages the full transcript as a ``.txt`` file instead.

A 10-minute monologue transcribes to ~10,000 characters: three Telegram messages read
fine, eight do not. Then the reply keeps the tags, the readings and the start of the
transcript (cut at a sentence end) and says that the whole text is in the attached file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.analysis import Analysis
from bot.wording import Markup, escape, format_analysis
from bot.wording.journal import journal_text

#: More pieces than this and the transcript goes into a file.
MAX_MESSAGES = 3
#: Where a sentence ends: after . ! ? … (and closing quotes) before a blank, after Chinese
#: full stops, or at a line break.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？；]+[”’」』）]*|\n+")

Measure = Callable[[str], int]


@dataclass
class LongReply:
    """What to send for one analysis: ``messages`` in order, then (when set) the file."""

    messages: list[str]
    transcript_file: bytes | None = None
    filename: str = ""


def split_sentences(text: str, limit: int, measure: Measure = len) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` (as ``measure`` counts), each ending at
    a sentence end where one fits; a sentence longer than ``limit`` is cut at a blank, or
    anywhere as a last resort."""
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if measure(rest) <= limit:
            pieces.append(rest)
            break
        cut = _cut(rest, limit, measure)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return pieces


def _cut(text: str, limit: int, measure: Measure) -> int:
    fits = _longest_prefix(text, limit, measure)
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, fits) if m.end() <= fits]
    if ends and ends[-1] > 0:
        return ends[-1]
    if fits < len(text) and text[fits].isspace():
        return fits
    blank = text.rfind(" ", 0, fits)
    return blank + 1 if blank > 0 else max(fits, 1)


def _longest_prefix(text: str, limit: int, measure: Measure) -> int:
    lo, hi = 0, len(text)
    while lo < hi:  # bisect: measure may be costly (UTF-16 lengths)
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_reply(analysis: Analysis, lang: str, markup: Markup, limit: int,
              measure: Measure = len, max_messages: int = MAX_MESSAGES) -> LongReply:
    """The reply to ``analysis`` for a platform whose messages hold ``limit`` units."""
    pieces = split_sentences(format_analysis(analysis, lang, markup), limit, measure)
    if len(pieces) <= max_messages:
        return LongReply(pieces)
    note = "\n\n" + journal_text("transcript_file", lang)
    # The tags, readings and as much of the transcript as fits one message with the note.
    head = format_analysis(replace(analysis, transcript=""), lang, markup)
    room = limit - measure(head) - measure(note) - measure(" …") - 1

    def shown(text: str) -> int:  # as it will appear, escaped for the markup
        return measure(escape(text, markup))

    start = split_sentences(analysis.transcript, room, shown)[0] if room > 0 else ""
    first = format_analysis(replace(analysis, transcript=start + " …"), lang, markup)
    name = f"{journal_text('transcript_file_name', lang)}.txt"
    return LongReply([first + note], analysis.transcript.encode("utf-8"), name)
