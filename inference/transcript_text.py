"""Text rules shared by the Whisper backend, its cross-clip batching and long-note chunking:
how transcript pieces are joined and how Chinese output is made simplified."""

from __future__ import annotations

from collections.abc import Sequence

#: A Mandarin prompt nudges Whisper towards simplified characters and punctuation.
ZH_PROMPT = "以下是普通话的句子。"


def join_text(parts: Sequence[str], language: str) -> str:
    """Join transcript pieces: no spaces between Chinese or Japanese pieces, else one."""
    parts = [p.strip() for p in parts if p.strip()]
    return ("" if language in ("zh", "ja") else " ").join(parts)


def to_simplified(text: str) -> str:
    """Convert traditional Chinese characters to simplified ones."""
    import zhconv

    return zhconv.convert(text, "zh-cn")
