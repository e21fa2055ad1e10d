"""``voicemood export``: one person's history as CSV or JSON, to a file or standard output."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bot.journal.export import (
    ExportInProgress,
    exclusive,
    parse_format,
    since_for_days,
    write_export,
)
from bot.storage.history import HistoryStore
from bot.trend.summary import parse_period, zone_for

if TYPE_CHECKING:
    from bot.ops.settings import Settings

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``export`` on the ``voicemood`` sub-command parser."""
    p = sub.add_parser(
        "export", help="export a user's history as CSV or JSON",
        description="Write every stored analysis of one user (time in VOICEMOOD_TZ, "
                    "duration, tag, confidence, valence, arousal, text and voice labels, "
                    "language, transcript). CSV is UTF-8 with a byte-order mark.")
    p.add_argument("--user", required=True, help="history user id")
    p.add_argument("--platform", default="cli",
                   help="history platform: cli, telegram, slack, web (default cli)")
    p.add_argument("--format", default="csv", choices=["csv", "json"], dest="fmt",
                   help="file format (default csv)")
    p.add_argument("--days", default=None,
                   help="only the last N calendar days, today included (7, 30d, 2w...)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="write here instead of standard output")


async def run_export_cli(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``voicemood export``. Returns 0, 2 for a bad argument, 1 when writing fails.

    A file is written next to its final name and renamed at the end, so an interrupted
    export never leaves a truncated file that looks complete.
    """
    user = str(args.user).strip()
    if not user:
        return _usage("--user must not be empty")
    try:
        fmt = parse_format(args.fmt)
        days = parse_period(args.days) if args.days is not None else None
        zone_for(settings.tz)
        since = since_for_days(days, settings.tz)
    except ValueError as exc:
        return _usage(str(exc))

    store = await HistoryStore.open(settings.db)
    try:
        async with exclusive(args.platform, user):
            if args.output is None:
                rows, _ = await write_export(_stdout(), store, args.platform, user, fmt,
                                             settings.tz, since)
            else:
                rows = await _to_file(args.output, store, args.platform, user, fmt,
                                      settings.tz, since)
    except ExportInProgress as exc:
        print(f"voicemood export: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"voicemood export: cannot write {args.output}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        await store.close()
    where = f" to {args.output}" if args.output is not None else ""
    print(f"{rows} analyses exported{where}", file=sys.stderr)
    return EXIT_OK


async def _to_file(path: Path, store: HistoryStore, platform: str, user: str, fmt: str,
                   tz: str, since: float | None) -> int:
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    out = await asyncio.to_thread(partial.open, "wb")
    try:
        rows, _ = await write_export(out, store, platform, user, fmt, tz, since)  # type: ignore[arg-type]
    except BaseException:
        await asyncio.to_thread(out.close)
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    await asyncio.to_thread(out.close)
    await asyncio.to_thread(os.replace, partial, path)
    return rows


def _stdout() -> IO[bytes]:
    return sys.stdout.buffer


def _usage(message: str) -> int:
    print(f"voicemood export: {message}", file=sys.stderr)
    return EXIT_USAGE
