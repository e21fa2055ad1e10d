"""The numbers of one ``/trend`` answer: a row per local day and the report over the period.

Plain data shared by the summary (:mod:`bot.trend.summary`, which computes and words it) and
the chart (:mod:`bot.trend.chart`, which draws it), so neither imports the other's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from inference.types import TAGS

#: Fewer notes than this in a period: no trend, no chart, no comparison.
MIN_NOTES = 3


@dataclass
class DayRow:
    """One calendar day of the period (local time zone)."""

    date: date
    notes: int = 0
    mood: float | None = None  # mean valence of the day's notes; None without notes
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TAGS, 0))

    @property
    def negative_share(self) -> float | None:
        """Share of the day's notes tagged negative; None without notes."""
        return self.counts.get("negative", 0) / self.notes if self.notes else None


@dataclass
class TrendReport:
    """Everything ``/trend`` answers for one user and period; ``text`` is the summary."""

    days: int
    notes: int
    minutes: float
    tag_shares: dict[str, float]
    daily: list[DayRow]
    mood: float | None
    previous_mood: float | None
    direction: str | None  # "improving", "steady", "declining"; None when not comparable
    change: float | None
    top_voice: str | None
    lowest_day: DayRow | None
    sustained_negative: bool
    text: str = ""
    png: bytes | None = None
    tz: str = "UTC"
    lang: str = "en"
    previous_notes: int = 0
    negative_streak: int = 0  # mostly-negative days in a row up to the latest day with notes

    @property
    def start(self) -> date:
        """First local day of the period."""
        return self.daily[0].date

    @property
    def end(self) -> date:
        """Last local day of the period (today)."""
        return self.daily[-1].date

    @property
    def enough_data(self) -> bool:
        """Whether the period has enough notes to talk about a trend."""
        return self.notes >= MIN_NOTES
