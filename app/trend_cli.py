"""``voicemood trend``: the ``/trend`` summary (and chart) on the command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.storage.history import HistoryStore
from bot.trend.summary import MAX_DAYS, build_trend, zone_for

if TYPE_CHECKING:
    from bot.ops.settings import Settings

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


async def run_trend_cli(
    settings: Settings,
    user: str,
    days: int,
    chart_path: Path | None,
    lang: str,
    platform: str = "cli",
) -> int:
    """Print the mood trend of ``user`` on ``platform`` and optionally write its chart.

    Reads the history database at ``settings.db`` and cuts days in ``settings.tz``.
    Returns 0 on success, 2 for a bad argument (period, user, time zone) and 1 when the
    chart file cannot be written.
    """
    if not str(user).strip():
        print("voicemood trend: --user must not be empty", file=sys.stderr)
        return EXIT_USAGE
    if not 1 <= days <= MAX_DAYS:
        print(f"voicemood trend: --days must be between 1 and {MAX_DAYS}", file=sys.stderr)
        return EXIT_USAGE
    try:
        zone_for(settings.tz)
    except ValueError as exc:
        print(f"voicemood trend: {exc}", file=sys.stderr)
        return EXIT_USAGE

    store = await HistoryStore.open(settings.db)
    try:
        report = await build_trend(
            store,
            platform,
            str(user).strip(),
            days=days,
            tz=settings.tz,
            lang=lang,
            chart=chart_path is not None,
        )
    finally:
        await store.close()

    print(report.text, flush=True)
    if chart_path is None:
        return EXIT_OK
    if report.png is None:
        # Too little data for a chart: say so rather than leave an old file looking current.
        print(f"Not enough notes for a chart; {chart_path} was not written.", file=sys.stderr)
        return EXIT_OK
    try:
        await asyncio.to_thread(_write_chart, chart_path, report.png)
    except OSError as exc:
        print(f"voicemood trend: cannot write chart to {chart_path}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Chart written to {chart_path}", file=sys.stderr)
    return EXIT_OK


def _write_chart(path: Path, png: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
