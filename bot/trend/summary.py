"""Mood history for ``/trend``: one summary (and chart) shared by Telegram, Slack and the CLI.

Definitions, all in the user's time zone (``VOICEMOOD_TZ``, default UTC):

* **Period** -- the last ``days`` calendar days, today included: from local midnight
  ``days - 1`` days ago up to local midnight tonight. Days are cut at local midnight, so a
  note at 23:30 UTC belongs to the next day in Asia/Shanghai, and a day that crosses a DST
  change is 23 or 25 hours long. The **previous period** is the ``days`` calendar days
  just before it.
* **Mood score** -- each note's fused valence (-1 negative .. +1 positive). A day's mood is
  the mean over that day's notes; the period's mood is the mean of its *daily* means, so one
  chatty day does not outweigh the rest of the week.
* **Direction** -- ``change = mood - previous_mood``. ``|change| < STEADY_BAND`` (0.10) is
  *steady*, above it *improving*, below it *declining*. There is no direction (``None``)
  when either period has fewer than ``MIN_NOTES`` notes.
* **Too little data** -- fewer than ``MIN_NOTES`` (3) notes in the period: the summary only
  says how many notes there are and asks for a few more; no chart is drawn.
* **Negative for several days** -- the negative share is at least ``NEGATIVE_SHARE``
  (50 %) on each of at least ``NEGATIVE_DAYS`` (3) consecutive calendar days, the run ending
  on the latest day with notes in the period. A day without notes breaks the run. The
  summary then says so plainly and kindly; it never diagnoses.
* **Top voice emotion** -- the most frequent voice label (ties: alphabetical); labels that
  say nothing (``unknown``, ``other``) are left out.

Everything is computed in plain Python from two indexed range queries
(:meth:`HistoryStore.between`); only the chart runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.trend.report import MIN_NOTES, DayRow, TrendReport
from bot.wording import day_label, voice_label
from inference.types import TAG_ZH, TAGS

if TYPE_CHECKING:
    from bot.analysis import Analysis
    from bot.storage.history import HistoryStore

DEFAULT_DAYS = 7
MAX_DAYS = 365
#: Period moods closer than this count as "steady".
STEADY_BAND = 0.10
#: A day counts as "mostly negative" from this share of negative notes on.
NEGATIVE_SHARE = 0.5
#: This many mostly-negative days in a row trigger the gentle note.
NEGATIVE_DAYS = 3
#: Voice labels that carry no emotion and would only crowd out real ones.
_UNINFORMATIVE_VOICE = frozenset({"unknown", "unk", "other", "<unk>", ""})

_PERIOD_RE = re.compile(r"^(\d{1,4})\s*(d|day|days|w|wk|week|weeks|天|周)?$")


def parse_period(arg: str | None) -> int:
    """Turn a ``/trend`` argument into a number of days.

    Accepts nothing (7 days), a bare number of days (``"14"``), days (``"30d"``) or weeks
    (``"2w"``), case and surrounding blanks ignored. Raises :class:`ValueError` with a
    message fit to show the user for anything else or for a period outside 1..365 days.
    """
    text = (arg or "").strip().lower()
    if not text:
        return DEFAULT_DAYS
    match = _PERIOD_RE.match(text)
    if match is None:
        raise ValueError(
            f"I don't understand the period {(arg or '').strip()!r}. "
            "Try /trend 7d, /trend 30d or /trend 90d."
        )
    number = int(match.group(1))
    unit = match.group(2) or "d"
    days = number * 7 if unit in ("w", "wk", "week", "weeks", "周") else number
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"The period must be between 1 and {MAX_DAYS} days (got {days}).")
    return days


def zone_for(tz: str) -> ZoneInfo:
    """The :class:`ZoneInfo` for ``tz``; raises :class:`ValueError` for an unknown name."""
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"Unknown time zone {tz!r} (VOICEMOOD_TZ); use a name like Asia/Shanghai"
        ) from exc


async def build_trend(
    store: HistoryStore,
    platform: str,
    user_id: str,
    *,
    days: int = DEFAULT_DAYS,
    tz: str = "UTC",
    lang: str = "en",
    now: datetime | None = None,
    chart: bool = True,
) -> TrendReport:
    """Build the ``/trend`` report for one user over the last ``days`` days.

    Reads only this user's notes (``platform`` + ``user_id``) for the period and the one
    before it. ``lang`` starting with ``"zh"`` gives a Chinese summary, anything else
    English. ``now`` (naive means UTC) fixes "today" for tests. With ``chart`` the PNG is
    rendered in a worker thread; it stays ``None`` when there is too little data.
    Raises :class:`ValueError` for a period outside 1..365 days or an unknown time zone.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"The period must be between 1 and {MAX_DAYS} days (got {days}).")
    zone = zone_for(tz)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    # Local midnights bracket every day; bisecting on them is exact across DST changes.
    prev_days = [first - timedelta(days=days - i) for i in range(days)]
    cur_days = [first + timedelta(days=i) for i in range(days)]
    cur_bounds = [_midnight(d, zone) for d in [*cur_days, today + timedelta(days=1)]]
    prev_bounds = [_midnight(d, zone) for d in prev_days] + [cur_bounds[0]]

    current = await store.between(platform, user_id, cur_bounds[0], cur_bounds[-1])
    previous = await store.between(platform, user_id, prev_bounds[0], prev_bounds[-1])

    report = summarize(current, previous, cur_days, cur_bounds, prev_days, prev_bounds)
    report.tz = zone.key
    report.lang = "zh" if _is_zh(lang) else "en"
    report.text = format_summary(report)
    if chart and report.enough_data:
        report.png = await asyncio.to_thread(_render, report)
    return report


def summarize(
    current: Sequence[Analysis],
    previous: Sequence[Analysis],
    cur_days: Sequence[date],
    cur_bounds: Sequence[float],
    prev_days: Sequence[date],
    prev_bounds: Sequence[float],
) -> TrendReport:
    """Compute the numbers of a report (no text, no chart) from already-fetched notes.

    ``*_bounds`` are the unix-second starts of each day plus the end of the last one.
    """
    daily = _daily_rows(current, cur_days, cur_bounds)
    previous_daily = _daily_rows(previous, prev_days, prev_bounds)
    notes = len(current)

    tag_counts = Counter(a.emotion.label for a in current)
    tag_shares = {t: (tag_counts[t] / notes if notes else 0.0) for t in TAGS}

    mood = _mean_of_days(daily)
    previous_mood = _mean_of_days(previous_daily)
    direction: str | None = None
    change: float | None = None
    if notes >= MIN_NOTES and len(previous) >= MIN_NOTES:
        assert mood is not None and previous_mood is not None
        change = mood - previous_mood
        if abs(change) < STEADY_BAND:
            direction = "steady"
        else:
            direction = "improving" if change > 0 else "declining"

    voices = Counter(
        a.emotion.voice.label
        for a in current
        if a.emotion.voice is not None and a.emotion.voice.label not in _UNINFORMATIVE_VOICE
    )
    top_voice = min(voices, key=lambda v: (-voices[v], v)) if voices else None

    lowest_day: DayRow | None = None
    lowest = float("inf")
    for row in daily:
        # Strict "<" keeps the earliest of equally low days.
        if row.mood is not None and row.mood < lowest:
            lowest_day, lowest = row, row.mood

    streak = _negative_streak(daily)
    return TrendReport(
        days=len(cur_days),
        notes=notes,
        minutes=sum(a.duration_s for a in current) / 60.0,
        tag_shares=tag_shares,
        daily=daily,
        mood=mood,
        previous_mood=previous_mood,
        direction=direction,
        change=change,
        top_voice=top_voice,
        lowest_day=lowest_day,
        sustained_negative=streak >= NEGATIVE_DAYS,
        previous_notes=len(previous),
        negative_streak=streak,
    )


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _is_zh(lang: str) -> bool:
    return (lang or "").strip().lower().startswith("zh")


def _daily_rows(
    notes: Sequence[Analysis], days: Sequence[date], bounds: Sequence[float]
) -> list[DayRow]:
    rows = [DayRow(d) for d in days]
    sums = [0.0] * len(rows)
    for a in notes:
        i = bisect_right(bounds, a.created_at) - 1
        if not 0 <= i < len(rows):
            continue  # outside the queried range; cannot happen with store.between
        row = rows[i]
        row.notes += 1
        sums[i] += a.emotion.valence
        label = a.emotion.label
        row.counts[label] = row.counts.get(label, 0) + 1
    for row, total in zip(rows, sums, strict=True):
        if row.notes:
            row.mood = total / row.notes
    return rows


def _mean_of_days(rows: Sequence[DayRow]) -> float | None:
    moods = [r.mood for r in rows if r.mood is not None]
    return sum(moods) / len(moods) if moods else None


def _negative_streak(rows: Sequence[DayRow]) -> int:
    """Mostly-negative calendar days in a row, ending on the latest day with notes."""
    last = max((i for i, r in enumerate(rows) if r.notes), default=None)
    if last is None:
        return 0
    streak = 0
    for row in reversed(rows[: last + 1]):
        share = row.negative_share
        if share is None or share < NEGATIVE_SHARE:
            break
        streak += 1
    return streak


def _render(report: TrendReport) -> bytes:
    # Imported here so that bots not asking for charts never load matplotlib.
    from bot.trend.chart import render_trend_chart

    return render_trend_chart(report, report.lang, report.tz)


# --- text ---------------------------------------------------------------------------------


def _signed(value: float) -> str:
    # "-0.00" would read as a tiny bad mood.
    return f"{0.0 if abs(value) < 0.005 else value:+.2f}"


def _pct(share: float) -> str:
    return f"{round(share * 100)}%"


def _day_en(d: date, weekday: bool = False) -> str:
    return day_label(d, "en", weekday=weekday)


def _day_zh(d: date) -> str:
    return day_label(d, "zh")


def _minutes(minutes: float) -> str:
    return f"{minutes:.1f}"


def format_summary(report: TrendReport) -> str:
    """The plain-text summary of ``report`` in ``report.lang`` (kept under 1024 chars)."""
    return _summary_zh(report) if report.lang == "zh" else _summary_en(report)


def _summary_en(r: TrendReport) -> str:
    span = f"last {r.days} days" if r.days != 1 else "today"
    if r.notes == 0:
        return f"No voice notes in the {span} yet -- send a few to see your trend."
    if not r.enough_data:
        noun = "note" if r.notes == 1 else "notes"
        return f"{r.notes} {noun} so far in the {span} -- send a few more to see a trend."

    lines = [
        f"Your mood, {span} ({_day_en(r.start)} - {_day_en(r.end)}, {r.tz})",
        f"{r.notes} notes, {_minutes(r.minutes)} min in total.",
        "Tags: " + ", ".join(f"{t} {_pct(r.tag_shares[t])}" for t in TAGS) + ".",
    ]
    assert r.mood is not None
    mood = f"Mood score: {_signed(r.mood)} (from -1 to +1)"
    if r.direction is None or r.change is None:
        few = "no" if r.previous_notes == 0 else "too few"
        mood += f", {few} notes in the previous {r.days} days to compare with."
    elif r.direction == "steady":
        mood += f", steady against the previous {r.days} days ({_signed(r.change)})."
    else:
        mood += f", {r.direction} against the previous {r.days} days ({_signed(r.change)})."
    lines.append(mood)
    if r.top_voice:
        lines.append(f"Most frequent voice emotion: {voice_label(r.top_voice, 'en')}.")
    if r.lowest_day is not None and r.lowest_day.mood is not None and _days_with_mood(r) >= 2:
        lines.append(
            f"Lowest day: {_day_en(r.lowest_day.date, weekday=True)} "
            f"({_signed(r.lowest_day.mood)})."
        )
    if r.sustained_negative:
        lines.append(
            f"Your notes have leaned negative for {r.negative_streak} days in a row. "
            "Go easy on yourself -- if it helps, talk it over with someone you trust."
        )
    return "\n".join(lines)


def _summary_zh(r: TrendReport) -> str:
    span = f"最近{r.days}天" if r.days != 1 else "今天"
    if r.notes == 0:
        return f"{span}还没有语音记录——发几条就能看到情绪趋势。"
    if not r.enough_data:
        return f"{span}目前只有 {r.notes} 条语音——再发几条就能看到趋势。"

    lines = [
        f"{span}的情绪（{_day_zh(r.start)}–{_day_zh(r.end)}，{r.tz}）",
        f"共 {r.notes} 条语音，{_minutes(r.minutes)} 分钟。",
        "标签：" + "，".join(f"{TAG_ZH[t]} {_pct(r.tag_shares[t])}" for t in TAGS) + "。",
    ]
    assert r.mood is not None
    mood = f"情绪分：{_signed(r.mood)}（-1 到 +1）"
    if r.direction is None or r.change is None:
        mood += f"，前{r.days}天的记录不够，暂无比较。"
    else:
        word = {"improving": "上升", "steady": "基本持平", "declining": "下降"}[r.direction]
        mood += f"，比前{r.days}天{word}（{_signed(r.change)}）。"
    lines.append(mood)
    if r.top_voice:
        lines.append(f"最常见的语音情绪：{voice_label(r.top_voice, 'zh')}。")
    if r.lowest_day is not None and r.lowest_day.mood is not None and _days_with_mood(r) >= 2:
        lines.append(
            f"情绪最低的一天：{_day_zh(r.lowest_day.date)}（{_signed(r.lowest_day.mood)}）。"
        )
    if r.sustained_negative:
        lines.append(
            f"最近连续 {r.negative_streak} 天，负向的语音占了多数。"
            "对自己温柔一点；如果愿意，可以找信任的人聊聊。"
        )
    return "\n".join(lines)


def _days_with_mood(r: TrendReport) -> int:
    return sum(1 for row in r.daily if row.mood is not None)
