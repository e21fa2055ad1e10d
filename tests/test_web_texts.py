"""The page's result texts: the timings panel as a readable table (issue #20, item 13) and
the voice reading's label in Chinese (item 11). Pure functions: no server needed."""

from __future__ import annotations

from adapters.web.app import _readings_md, timings_md
from bot.analysis import Analysis
from inference.types import FusedEmotion, TextReading, VoiceReading

TIMINGS = {"probe": 0.0512, "wait_decode": 0.0, "decode": 0.0731, "chunks": 1.0,
           "asr": 1.4923, "voice_emotion": 0.0081, "batch_size": 2.0, "text_emotion": 0.0002,
           "queue_wait": 0.25, "total": 1.6349}
MODELS = {"asr": "whisper-base (whisper-base)", "text_emotion": "lexicon-en+zh",
          "voice_emotion": "prosody-arousal"}


def test_the_timings_table_in_english() -> None:
    assert timings_md(TIMINGS, MODELS, "en") == "\n".join([
        "| step | value |", "|---|---:|",
        "| checking the file | 0.05 s |",
        "| waiting for a decoder | 0.00 s |",
        "| decoding | 0.07 s |",
        "| chunks | 1 |",
        "| transcribing | 1.49 s |",
        "| voice emotion | 0.01 s |",
        "| notes in the batch | 2 |",
        "| words emotion | 0.00 s |",
        "| queue_wait | 0.25 s |",  # a stage the table does not know yet still shows
        "| **total** | **1.63 s** |",
        "",
        "| model | |", "|---|---|",
        "| speech recognition | `whisper-base (whisper-base)` |",
        "| words emotion | `lexicon-en+zh` |",
        "| voice emotion | `prosody-arousal` |",
    ])


def test_the_timings_table_in_chinese() -> None:
    table = timings_md({"decode": 0.07, "chunks": 3.0, "total": 1.5},
                       {"asr": "paraformer-zh"}, "zh-CN")
    assert table == "\n".join([
        "| 步骤 | 数值 |", "|---|---:|",
        "| 解码 | 0.07 秒 |",
        "| 分段数 | 3 |",
        "| **合计** | **1.50 秒** |",
        "",
        "| 模型 | |", "|---|---|",
        "| 语音识别 | `paraformer-zh` |",
    ])


def _analysis(voice_label: str) -> Analysis:
    voice = VoiceReading(label=voice_label, arousal=0.86,
                         scores={"calm": 0.0, "moderate": 0.23, "agitated": 0.77},
                         model="prosody")
    text = TextReading(label="neutral", scores={"positive": 0.0, "negative": 0.0,
                                                "neutral": 1.0, "excited": 0.0}, model="lex")
    emotion = FusedEmotion(label="excited", confidence=0.82, valence=-0.1, arousal=0.86,
                           text=text, voice=voice)
    return Analysis(transcript="hi", language="en", duration_s=4.2, emotion=emotion,
                    models={}, timings={})


def test_the_voice_label_is_chinese_on_the_chinese_page() -> None:
    assert _readings_md(_analysis("agitated"), "zh") == ("声音：躁动（激活度 0.86）\n\n"
                                                        "文字：中性（1.00）")
    assert _readings_md(_analysis("happy"), "zh").startswith("声音：开心（")
    assert _readings_md(_analysis("agitated"), "en") == ("voice: agitated (arousal 0.86)\n\n"
                                                        "words: neutral (1.00)")
