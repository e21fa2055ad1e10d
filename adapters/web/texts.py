"""The page's own words in English and Chinese; replies shared with the bots come from
:mod:`bot.wording`."""

from __future__ import annotations

UI: dict[str, dict[str, str]] = {
    "en": {
        "title": "# voicemood",
        "intro": "Record or upload a voice note. You get back what you said and the mood "
                 "heard in your words and your voice.",
        "tab_analyse": "Analyse",
        "tab_history": "History",
        "audio": "Voice note: record, or upload ogg, mp3, m4a, mp4, webm, wav or flac",
        "analyse": "Analyse",
        "tag": "Mood",
        "readings": "Voice and words",
        "transcript": "Transcript",
        "details": "Recording",
        "duration_language": "{duration:.1f} s · language: {language}",
        "timings": "Timings and models",
        "voice": "voice: {label} (arousal {arousal:.2f})",
        "voice_off": "voice: off",
        "words": "words: {label} ({score:.2f})",
        "words_off": "words: off",
        "days": "Period (days)",
        "refresh": "Refresh",
        "trend": "Trend",
        "chart": "Mood per day",
        "recent": "Recent notes",
        "col_time": "time",
        "col_tag": "mood",
        "col_transcript": "transcript",
        "working": "Analysing the recording…",
        "stage_probe": "Checking the file…",
        "stage_decode": "Decoding the audio…",
        "stage_queue": "Waiting for the speech models…",
        "stage_transcribe": "Transcribing…",
        "stage_emotion": "Reading the mood in the words and the voice…",
        "no_audio": "Record or upload a voice note first.",
        "not_uploaded": "This recording did not come from an upload to this page; "
                        "please record or upload it again.",
        "signed_in": "Signed in as <b>{user}</b> · {logout}",
        "logout": "log out",
        "local": "Local use, no login: your notes are kept as user “local” of platform "
                 "“web”; <code>voicemood trend --user local --platform web</code> shows "
                 "them on the command line.",
        "language": "Language",
        "col_step": "step", "col_value": "value", "seconds": "{s:.2f} s", "col_model": "model",
        "error": "Not analysed",
    },
    "zh": {
        "title": "# voicemood 语音情绪",
        "intro": "录一段语音或上传音频文件，即可看到你说的内容，以及从话语和声音中听出的情绪。",
        "tab_analyse": "分析",
        "tab_history": "历史",
        "audio": "语音：录音，或上传 ogg、mp3、m4a、mp4、webm、wav、flac 文件",
        "analyse": "分析",
        "tag": "情绪",
        "readings": "声音与文字",
        "transcript": "转写",
        "details": "录音",
        "duration_language": "{duration:.1f} 秒 · 语言：{language}",
        "timings": "耗时与模型",
        "voice": "声音：{label}（激活度 {arousal:.2f}）",
        "voice_off": "声音：未启用",
        "words": "文字：{label}（{score:.2f}）",
        "words_off": "文字：未启用",
        "days": "时间范围（天）",
        "refresh": "刷新",
        "trend": "趋势",
        "chart": "每日情绪",
        "recent": "最近的语音",
        "col_time": "时间",
        "col_tag": "情绪",
        "col_transcript": "转写",
        "working": "正在分析录音…",
        "stage_probe": "正在检查文件…",
        "stage_decode": "正在解码音频…",
        "stage_queue": "正在等待语音模型…",
        "stage_transcribe": "正在转写…",
        "stage_emotion": "正在从话语和声音中识别情绪…",
        "no_audio": "请先录音或上传一段语音。",
        "not_uploaded": "这段录音不是通过本页面上传的，请重新录音或上传。",
        "signed_in": "已登录：<b>{user}</b> · {logout}",
        "logout": "退出",
        "local": "本机使用，无需登录：记录保存在平台 “web” 的用户 “local” 名下；命令行中用 "
                 "<code>voicemood trend --user local --platform web</code> 查看。",
        "language": "语言",
        "col_step": "步骤", "col_value": "数值", "seconds": "{s:.2f} 秒", "col_model": "模型",
        "error": "未能分析",
    },
}


#: Rows of the *Timings and models* table: the pipeline's keys in words, per language.
#: Keys not listed are shown as they are, so a new stage still appears.
STAGES: dict[str, dict[str, str]] = {
    "en": {"probe": "checking the file", "wait_decode": "waiting for a decoder",
           "decode": "decoding", "split": "splitting at pauses", "asr": "transcribing",
           "voice_emotion": "voice emotion", "text_emotion": "words emotion",
           "total": "total"},
    "zh": {"probe": "检查文件", "wait_decode": "等待解码", "decode": "解码",
           "split": "按停顿切分", "asr": "转写", "voice_emotion": "声音情绪",
           "text_emotion": "文字情绪", "total": "合计"},
}
#: Timings entries that are counts, not seconds.
COUNTS: dict[str, dict[str, str]] = {
    "en": {"chunks": "chunks", "batch_size": "notes in the batch"},
    "zh": {"chunks": "分段数", "batch_size": "同批语音数"},
}
MODELS: dict[str, dict[str, str]] = {
    "en": {"asr": "speech recognition", "text_emotion": "words emotion",
           "voice_emotion": "voice emotion"},
    "zh": {"asr": "语音识别", "text_emotion": "文字情绪", "voice_emotion": "声音情绪"},
}


def code(lang: str | None) -> str:
    """"zh" for any Chinese ``lang`` ("zh", "zh-CN"…), else "en"."""
    return "zh" if (lang or "").lower().startswith("zh") else "en"


def ui(lang: str | None) -> dict[str, str]:
    """The page's texts in ``lang`` ("zh…" Chinese, anything else English)."""
    return UI[code(lang)]


def lang_from_header(accept_language: str | None) -> str:
    """"zh" or "en" from an ``Accept-Language`` header: the preferred one of the two."""
    best, best_q = "en", -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag.startswith(("zh", "en")):
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        # Equal weights keep the header's order.
        score = q - position * 1e-6
        if score > best_q:
            best, best_q = tag[:2], score
    return best
