"""What the mood-journal features (export, weekly digest, privacy) say, in English and
Chinese, for every front end. ``{cmd}`` is the front end's spelling of the command
(``/digest`` on Telegram, ``/voicemood digest`` on Slack)."""

from __future__ import annotations

from bot.wording import lang_of

WEEKDAY_NAMES = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "export_caption": "Your voicemood history: {rows} analyses.",
        "export_empty": "You have no analyses yet, so there is nothing to export.",
        "export_running": "Your export is already being prepared; it will arrive in a moment.",
        "export_usage": "Use {cmd} [csv|json] [days], e.g. {cmd} json 30.",
        "export_too_large": "Your export is {size}, more than I can send here ({limit}). "
                            "Try a shorter period, e.g. {cmd} csv 90.",
        "digest_off_status": "Your weekly digest is off. Turn it on with {cmd} on [weekday] "
                             "[HH:MM], e.g. {cmd} on sun 19:00.",
        "digest_on_status": "Your weekly digest comes every {weekday} at {time} ({tz}); the "
                            "next one is due {next}. {cmd} off stops it.",
        "digest_on": "Weekly digest on: every {weekday} at {time} ({tz}), starting {next}. "
                     "Weeks without voice notes are skipped. {cmd} tz Area/City changes the "
                     "time zone.",
        "digest_off": "Weekly digest off.",
        "digest_was_off": "Your weekly digest was already off.",
        "digest_tz": "Digest time zone set to {tz}.",
        "digest_usage": "Use {cmd} on [weekday] [HH:MM], {cmd} off, {cmd} tz Area/City, or "
                        "{cmd} alone to see your setting.",
        "digest_bad_weekday": "I don't know the day {value!r}. Use mon, tue, wed, thu, fri, "
                              "sat or sun.",
        "digest_bad_time": "I don't understand the time {value!r}. Use 24-hour HH:MM, e.g. "
                           "19:00.",
        "digest_bad_tz": "I don't know the time zone {value!r}. Use a name like Asia/Shanghai "
                         "or Europe/Berlin.",
        "digest_title": "📬 Your weekly mood digest",
        "privacy_kept": "What I keep about you, for each voice note: its time, length and "
                        "language, the mood tag with its confidence, valence and arousal, and "
                        "the word and voice readings{transcript}. Never the audio.",
        "privacy_with_transcript": ", plus the transcript",
        "privacy_no_transcript": " — but no transcript: you turned transcripts off (replies "
                                 "still show it; notes from before keep theirs)",
        "privacy_retention": "Analyses older than {days} days are deleted automatically.",
        "privacy_no_retention": "Analyses are kept until you delete them.",
        "privacy_digest_on": "Weekly digest: on ({weekday} {time}, {tz}).",
        "privacy_digest_off": "Weekly digest: off.",
        "privacy_howto": "{cmd} transcripts off|on changes what is kept for new notes; "
                         "{forget} deletes everything.",
        "privacy_off": "Transcripts off: from now on I keep only the tags and scores of your "
                       "notes. My replies still show what I heard. Notes stored before keep "
                       "their transcript until you use {forget}.",
        "privacy_on": "Transcripts on: new notes are stored with their transcript again.",
        "privacy_usage": "Use {cmd} to see what I keep, or {cmd} transcripts off|on.",
        "transcript_file": "The transcript is long; here it is in full as a file.",
        "transcript_file_name": "transcript",
        "export_sent": "📎 I've sent your export to our direct messages.",
        "mood_hint": "Reply to a voice note with {cmd} and I'll analyse it.",
        "not_a_note": "That message has no voice note or audio file I can analyse.",
        "cmd_export": "your history as a CSV or JSON file",
        "cmd_digest": "a weekly mood digest: on, off, time",
        "cmd_privacy": "what I keep about you; transcripts off",
        "cmd_mood": "reply to a voice note: analyse it",
    },
    "zh": {
        "export_caption": "你的 voicemood 记录：共 {rows} 条分析。",
        "export_empty": "还没有分析记录，没有可导出的内容。",
        "export_running": "你的导出正在准备中，马上就到。",
        "export_usage": "用法：{cmd} [csv|json] [天数]，例如 {cmd} json 30。",
        "export_too_large": "导出文件有 {size}，超过了这里能发送的上限（{limit}）。"
                            "请换一个较短的时间段，例如 {cmd} csv 90。",
        "digest_off_status": ("每周摘要未开启。用 {cmd} on [星期] [HH:MM] 开启，"
                              "例如 {cmd} on sun 19:00。"),
        "digest_on_status": ("每周摘要：每{weekday} {time}（{tz}），下一次在 {next}。"
                             "{cmd} off 可关闭。"),
        "digest_on": "已开启每周摘要：每{weekday} {time}（{tz}），从 {next} 开始。"
                     "没有语音的那一周不发送。{cmd} tz 地区/城市 可更改时区。",
        "digest_off": "已关闭每周摘要。",
        "digest_was_off": "每周摘要本来就是关闭的。",
        "digest_tz": "摘要时区已设为 {tz}。",
        "digest_usage": "用法：{cmd} on [星期] [HH:MM]、{cmd} off、{cmd} tz 地区/城市，"
                        "或只发 {cmd} 查看当前设置。",
        "digest_bad_weekday": "不认识 {value!r} 这个日子。请用 mon、tue、wed、thu、fri、sat、sun"
                              "（或 周一…周日）。",
        "digest_bad_time": "看不懂时间 {value!r}。请用 24 小时制 HH:MM，例如 19:00。",
        "digest_bad_tz": "不认识时区 {value!r}。请用 Asia/Shanghai 这样的名称。",
        "digest_title": "📬 你的每周情绪摘要",
        "privacy_kept": "每条语音我保存：时间、时长、语言、情绪标签及其置信度、效价和激活度，"
                        "以及文字和声音两方面的判断{transcript}。从不保存音频。",
        "privacy_with_transcript": "，还有转写文本",
        "privacy_no_transcript": "——但不保存转写：你已关闭转写保存（回复中仍会显示；"
                                 "之前的记录保留原有转写）",
        "privacy_retention": "超过 {days} 天的分析会被自动删除。",
        "privacy_no_retention": "分析会一直保留，直到你删除。",
        "privacy_digest_on": "每周摘要：开启（{weekday} {time}，{tz}）。",
        "privacy_digest_off": "每周摘要：关闭。",
        "privacy_howto": "{cmd} transcripts off|on 更改新语音保存的内容；{forget} 删除全部内容。",
        "privacy_off": "已关闭转写保存：今后只保存你的语音的标签和分数。"
                       "回复中仍会显示我听到的内容。"
                       "之前保存的记录保留转写，直到你使用 {forget}。",
        "privacy_on": "已开启转写保存：新的语音会连同转写一起保存。",
        "privacy_usage": "用法：{cmd} 查看保存的内容，或 {cmd} transcripts off|on。",
        "transcript_file": "转写内容较长，完整内容见文件。",
        "transcript_file_name": "转写",
        "export_sent": "📎 导出文件已通过私信发给你。",
        "mood_hint": "用 {cmd} 回复一条语音，我就会分析它。",
        "not_a_note": "这条消息里没有我能分析的语音或音频文件。",
        "cmd_export": "导出你的记录（CSV 或 JSON 文件）",
        "cmd_digest": "每周情绪摘要：开启、关闭、时间",
        "cmd_privacy": "我保存了什么；关闭转写保存",
        "cmd_mood": "回复一条语音：分析它",
    },
}


def journal_text(key: str, lang: str = "en", **params: object) -> str:
    """A mood-journal phrase in the person's language (English unless Chinese)."""
    return TEXTS[lang_of(lang)][key].format(**params)


def weekday_name(weekday: int, lang: str = "en") -> str:
    """``Sunday`` / ``周日`` for 6."""
    return WEEKDAY_NAMES[lang_of(lang)][weekday]
