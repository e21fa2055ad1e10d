"""Long replies (bot/long_reply.py): sentence-end splitting and the transcript-as-file
fallback, with literal expectations."""

from __future__ import annotations

from bot.core.long_reply import fit_reply, split_sentences
from tests.journal_seed import row


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_splits_after_sentence_ends_in_english_and_chinese():
    assert split_sentences("One. Two three. Four!", 10) == ["One.", "Two three.", "Four!"]
    assert split_sentences("It said \"no.\" Then left? Yes.", 16) == [
        "It said \"no.\"", "Then left? Yes."]
    assert split_sentences("今天很好。明天也好。后天呢？", 6) == [
        "今天很好。", "明天也好。", "后天呢？"]
    assert split_sentences("short", 100) == ["short"]


def test_a_sentence_longer_than_the_limit_is_cut_at_a_blank_then_anywhere():
    assert split_sentences("aaaa bbbb cccc", 9) == ["aaaa bbbb", "cccc"]
    assert split_sentences("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_limits_count_as_the_platform_counts():
    # Each 😊 is two UTF-16 units: Telegram counts 8 here, len() only 4.
    assert split_sentences("😊😊. 😊😊.", 6, utf16) == ["😊😊.", "😊😊."]


def test_a_few_messages_stay_messages():
    sender, analysis = row("telegram", "1", "m", 0.0, "First sentence here. " * 12)
    fitted = fit_reply(analysis, "en", "plain", 200)
    assert fitted.transcript_file is None
    assert len(fitted.messages) == 2
    assert all(len(m) <= 200 for m in fitted.messages)
    assert fitted.messages[1].endswith("First sentence here.")
    assert not fitted.messages[1].startswith(" ")


def test_beyond_a_few_messages_the_transcript_comes_as_a_file():
    text = " ".join(f"Sentence number {i} is here." for i in range(60))
    _, analysis = row("telegram", "1", "m", 0.0, text, "positive", confidence=0.9)
    fitted = fit_reply(analysis, "en", "plain", 300)
    assert fitted.transcript_file == text.encode()
    assert fitted.filename == "transcript.txt"
    [message] = fitted.messages
    assert len(message) <= 300
    assert message.endswith("Sentence number 4 is here. …\n\n"
                            "The transcript is long; here it is in full as a file.")
    assert message.startswith("😊 正向 / positive · 0.90\n")
    zh = fit_reply(analysis, "zh", "html", 300)
    assert zh.filename == "转写.txt"
    assert zh.messages[0].endswith("转写内容较长，完整内容见文件。")
