"""The ``/trend`` chart: daily mood line over per-day tag counts, as a phone-sized PNG.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas and never through ``pyplot``,
so it keeps no global figure state, is safe to call from a worker thread and leaks nothing.
Chinese labels need a CJK font (Debian: ``fonts-noto-cjk``); without one the chart falls
back to English labels rather than drawing empty boxes. A period without any note draws
the empty axes with a "no data" notice instead of an empty line and no bars.
"""

from __future__ import annotations

import glob
import io
import math
import threading
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

# Figure + the Agg canvas directly: no pyplot, so no global backend switch is needed.
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.wording import day_label
from inference.types import TAG_ZH, TAGS

if TYPE_CHECKING:
    from bot.trend.report import DayRow, TrendReport

#: 1000 x 700 px: wide enough for 90 bars, still legible when a phone scales it down.
WIDTH_IN, HEIGHT_IN, DPI = 10.0, 7.0, 100
#: Colour-blind-safe tag colours (teal, orange-red, grey, amber).
TAG_COLORS = {
    "positive": "#2a9d8f",
    "negative": "#e76f51",
    "neutral": "#adb5bd",
    "excited": "#e9c46a",
}
#: The daily mood line and its markers (dark slate).
LINE_COLOR = "#264653"
#: The "no data" notice of an empty period.
NO_DATA_COLOR = "#495057"
_LATIN_FONT = "DejaVu Sans"  # ships with matplotlib, so always present
#: CJK families to look for, Simplified Chinese first.
_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
)
#: Where fonts-noto-cjk and friends put their files, for a font cache built before install.
_CJK_GLOBS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK*.ttc",
    "/usr/share/fonts/**/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/**/NotoSansSC*.[ot]tf",
    "/usr/share/fonts/**/wqy-*.tt[cf]",
)
_font_lock = threading.Lock()
def _installed_cjk_family() -> str | None:
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((family for family in _CJK_FAMILIES if family in names), None)


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Family name of an installed CJK font usable by matplotlib, or None.

    matplotlib's font cache is built once, so a font installed later is missing from it;
    the usual file locations are then registered by hand.
    """
    with _font_lock:
        family = _installed_cjk_family()
        if family is not None:
            return family
        for pattern in _CJK_GLOBS:
            for path in sorted(glob.glob(pattern, recursive=True)):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue  # a broken font file must not break /trend
        return _installed_cjk_family()


def render_trend_chart(
    report_or_daily_rows: TrendReport | Sequence[DayRow], lang: str = "en", tz: str = "UTC"
) -> bytes:
    """Draw the daily mood line and stacked per-day tag counts; return PNG bytes.

    Takes a :class:`~bot.trend.report.TrendReport` or its ``daily`` rows. ``lang`` starting with
    ``"zh"`` labels in Chinese when a CJK font is installed, else in English; ``tz`` is only
    named in the title (the rows are already cut into local days).
    """
    rows: Sequence[DayRow] = getattr(report_or_daily_rows, "daily", report_or_daily_rows)
    if not rows:
        raise ValueError("no days to draw")
    cjk = find_cjk_font() if (lang or "").lower().startswith("zh") else None
    zh = cjk is not None
    family = [_LATIN_FONT, cjk] if cjk else [_LATIN_FONT]
    n = len(rows)
    xs = list(range(n))

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    try:
        grid = fig.add_gridspec(2, 1, height_ratios=(3, 2), hspace=0.08)
        ax_mood = fig.add_subplot(grid[0])
        ax_tags = fig.add_subplot(grid[1], sharex=ax_mood)
        fig.subplots_adjust(left=0.09, right=0.955, top=0.855, bottom=0.08)

        span = (f"最近{n}天" if zh else f"last {n} days") if n != 1 else ("今天" if zh else "today")
        title = f"{span}的情绪（{tz}）" if zh else f"Mood, {span} ({tz})"
        fig.suptitle(title, fontsize=22, fontweight="bold", fontfamily=family, y=0.975)

        # Mood line; NaN leaves a gap on days without notes instead of inventing a value.
        moods = [r.mood if r.mood is not None else math.nan for r in rows]
        ax_mood.axhspan(0, 1.05, color=TAG_COLORS["positive"], alpha=0.07, lw=0)
        ax_mood.axhspan(-1.05, 0, color=TAG_COLORS["negative"], alpha=0.07, lw=0)
        ax_mood.axhline(0, color="#6c757d", lw=1.2)
        marker = 9 if n <= 31 else 5
        ax_mood.plot(xs, moods, color=LINE_COLOR, lw=3, marker="o", ms=marker)
        if not any(r.notes for r in rows):
            ax_mood.text(0.5, 0.5, "暂无数据" if zh else "no data", transform=ax_mood.transAxes,
                         ha="center", va="center", fontsize=28, color=NO_DATA_COLOR,
                         fontfamily=family,
                         bbox={"facecolor": "white", "edgecolor": "none", "pad": 12})
        ax_mood.set_ylim(-1.05, 1.05)
        ax_mood.set_yticks([-1, -0.5, 0, 0.5, 1])
        ax_mood.set_ylabel("情绪分" if zh else "mood score", fontsize=16, fontfamily=family)
        ax_mood.grid(axis="y", alpha=0.3)
        ax_mood.tick_params(labelsize=14, labelbottom=False)

        # Stacked bars, one colour per tag, in the product's tag order.
        bottoms = [0] * n
        for tag in TAGS:
            heights = [r.counts.get(tag, 0) for r in rows]
            ax_tags.bar(
                xs,
                heights,
                bottom=bottoms,
                width=0.8,
                color=TAG_COLORS[tag],
                label=TAG_ZH[tag] if zh else tag,
                edgecolor="white" if n <= 31 else "none",
                linewidth=0.5,
            )
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        ax_tags.set_ylim(0, max(max(bottoms), 1) * 1.15)
        ax_tags.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        ax_tags.set_ylabel("语音条数" if zh else "notes", fontsize=16, fontfamily=family)
        ax_tags.grid(axis="y", alpha=0.3)
        ax_tags.tick_params(labelsize=14)
        # On the figure, under the title, so it never covers a bar or the line.
        fig.legend(
            *ax_tags.get_legend_handles_labels(),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.925),
            ncol=len(TAGS),
            frameon=False,
            prop=font_manager.FontProperties(family=family, size=15),
            handlelength=1.2,
            columnspacing=1.4,
        )

        # At most ~8 date labels, always including today at the right edge.
        step = max(1, math.ceil(n / 8))
        ticks = list(range(n - 1, -1, -step))[::-1]
        ax_tags.set_xticks(ticks)
        ax_tags.set_xticklabels([_day_label(rows[i].date, zh) for i in ticks], fontfamily=family)
        ax_tags.set_xlim(-0.6, n - 0.4)

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return buf.getvalue()
    finally:
        # Drop artists now rather than at the next GC pass; matters for a long-running bot.
        fig.clear()


def _day_label(d: date, zh: bool) -> str:
    return day_label(d, "zh" if zh else "en")
