"""The few Slack-only phrases (en + zh). Everything shared with Telegram lives in bot.wording."""

from __future__ import annotations

from bot.wording import lang_of

#: The command list shown by ``/voicemood`` (inserted into :func:`bot.wording.help_text`).
COMMANDS = {
    "en": (
        "Record an audio clip or share an audio/video file (m4a, mp4, webm, mp3, ogg, wav...) "
        "in a channel where I am, or here in a direct message, and I reply in its thread.\n"
        "• `/voicemood` — this help\n"
        "• `/voicemood last` — analyse your most recent audio file in this channel\n"
        "• `/trend [7d|30d|90d]` — your mood over time (only you see it; the chart comes "
        "by direct message)\n"
        "• `/voicemood forget` — delete everything I have stored about you\n"
        "• `/voicemood export [csv|json] [days]` — your history as a file, by direct message\n"
        "• `/voicemood digest [on [weekday] [HH:MM] | off | tz Area/City]` — a weekly mood "
        "digest by direct message\n"
        "• `/voicemood privacy [transcripts off|on]` — what I keep about you\n"
        "• Message menu › *Analyse this voice note* — analyse a clip now (the only way in "
        "channels set to on-demand)"
    ),
    "zh": (
        "在我所在的频道里（或在这里私信我）录一段音频或分享音频/视频文件（m4a、mp4、webm、mp3、ogg、"
        "wav……），我会在该消息的话题里回复。\n"
        "• `/voicemood` — 显示本帮助\n"
        "• `/voicemood last` — 分析你在本频道最近的一个音频文件\n"
        "• `/trend [7d|30d|90d]` — 你一段时间以来的情绪（只有你能看到，图表通过私信发送）\n"
        "• `/voicemood forget` — 删除我保存的关于你的全部内容\n"
        "• `/voicemood export [csv|json] [天数]` — 把你的记录导出为文件，通过私信发送\n"
        "• `/voicemood digest [on [星期] [HH:MM] | off | tz 地区/城市]` — 每周情绪摘要，"
        "通过私信发送\n"
        "• `/voicemood privacy [transcripts off|on]` — 我保存了什么\n"
        "• 消息菜单 › *Analyse this voice note* — 立即分析一段音频（按需模式的频道只能这样分析）"
    ),
}

PHRASES = {
    "en": {
        "looking_last": "🔎 Looking for your latest audio file in this channel…",
        "no_recent_audio": "I couldn't find an audio file from you in this channel. Record a "
                           "clip or share an audio file here first (I only see channels I'm "
                           "a member of).",
        "already_analysed": "I analysed that file before — here is the result:",
        "already_working": "I'm already analysing that file; the reply will appear in its "
                           "thread.",
        "chart_title": "Your mood, last {days} days",
        "chart_sent": "📈 I've sent you the chart in a direct message.",
        "unknown_command": "I don't know `{word}`.",
        "trend_working": "📈 Building your mood trend…",
    },
    "zh": {
        "looking_last": "🔎 正在查找你在本频道最近的音频文件…",
        "no_recent_audio": "在本频道里没有找到你发的音频文件。"
                           "请先在这里录一段音频或分享一个音频文件（我只能看到我加入了的频道）。",
        "already_analysed": "这个文件之前分析过了，结果如下：",
        "already_working": "正在分析这个文件，结果会出现在它的话题里。",
        "chart_title": "你最近 {days} 天的情绪",
        "chart_sent": "📈 图表已通过私信发给你。",
        "unknown_command": "不认识 `{word}`。",
        "trend_working": "📈 正在生成你的情绪趋势…",
    },
}


def phrase(key: str, lang: str = "en", **params: object) -> str:
    """A Slack-only phrase in the user's language."""
    return PHRASES[lang_of(lang)][key].format(**params)


def commands(lang: str = "en") -> str:
    """The Slack command list for the help text."""
    return COMMANDS[lang_of(lang)]
