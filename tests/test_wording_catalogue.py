"""The one phrase catalogue: both languages say the same things, with the same fields, and
every front end's lookup reaches it."""

from __future__ import annotations

import string

from adapters.slack.texts import commands
from adapters.slack.texts import phrase as slack_phrase
from adapters.telegram.texts import phrase as telegram_phrase
from bot import wording
from bot.wording.catalogue import catalogue
from bot.wording.journal import journal_text


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_english_and_chinese_have_the_same_keys_and_fields() -> None:
    en, zh = catalogue()["en"], catalogue()["zh"]
    assert set(en) == set(zh)
    mismatched = {key for key in en if _fields(en[key]) != _fields(zh[key])}
    assert mismatched == set()


def test_every_front_end_looks_its_phrases_up_in_the_catalogue() -> None:
    assert telegram_phrase("expired", "zh") == "这个按钮已失效。"
    assert slack_phrase("chart_title", "en", days=7) == "Your mood, last 7 days"
    assert commands("en").startswith("Record an audio clip or share an audio/video file")
    assert journal_text("digest_off", "en") == "Weekly digest off."
    assert wording.text("forget_no", "zh") == "取消"
    assert wording.format_error("silent", "en") == (
        "I couldn't hear anything — the recording seems silent.")
    # An unknown code gets the apology, never a KeyError in a reply path.
    assert wording.format_error("no-such-code", "zh") == (
        "抱歉，分析时出了点问题，已记录下来，请稍后再试。")
    assert wording.help_text("CMDS", "en").endswith("Only you can see your history.\n\nCMDS")


def test_other_languages_are_answered_in_english() -> None:
    assert wording.text("forget_no", "de") == "Cancel"


def test_every_voice_label_a_model_gives_is_said_in_chinese() -> None:
    """Issue #20 item 11: the Chinese reply, page and trend said "声音：agitated"."""
    from inference.voice_emotion2vec import AROUSAL_VALENCE

    expected_zh = {"calm": "平静", "moderate": "适中", "agitated": "躁动", "angry": "生气",
                   "disgusted": "厌恶", "fearful": "恐惧", "happy": "开心", "neutral": "中性",
                   "sad": "难过", "surprised": "惊讶", "other": "其他", "unk": "未知"}
    # The prosodic estimate's three labels, then every emotion2vec / SenseVoice label.
    assert set(AROUSAL_VALENCE) | {"calm", "moderate", "agitated"} <= set(expected_zh)
    assert {label: wording.voice_label(label, "zh-CN") for label in expected_zh} == expected_zh
    assert wording.voice_label("agitated", "en") == "agitated"
    assert wording.voice_label("unk", "en") == "unknown"
    # A fine-tuned model's own label is shown as it is, never a KeyError.
    assert wording.voice_label("bored", "zh") == "bored"
