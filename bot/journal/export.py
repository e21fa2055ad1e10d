"""Export one person's mood history as CSV or JSON, for every front end and the CLI.

One row per stored analysis, oldest first, with the columns in :data:`COLUMNS`:

* ``time`` -- ISO 8601 with the UTC offset, in ``VOICEMOOD_TZ`` (``2026-11-20T09:30:00+08:00``)
* ``duration_s``, ``confidence``, ``valence``, ``arousal`` -- numbers, 3 decimals
* ``tag`` -- the final tag (positive, negative, neutral, excited)
* ``text_label``, ``voice_label`` -- the two readings (empty / null when that side was off)
* ``language``, ``transcript`` -- empty when the person had transcripts switched off

CSV is UTF-8 with a byte-order mark, so spreadsheet programs show Chinese text correctly
without an import dialog. A text cell that a spreadsheet would read as a formula (it begins
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a transcript saying
"=HYPERLINK(...)") gets a leading ``'`` the OWASP way, so it shows as the text it is;
numbers (a negative valence) stay numbers. JSON is one array of objects with the same keys,
unchanged.

Rows are read in pages of :data:`PAGE_ROWS` and encoded page by page, so a history of
100,000 notes never sits in memory at once. Only one export per person runs at a time
(:class:`ExportInProgress` for a second one), so a person pressing /export repeatedly does
not queue up copies of the same large file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Literal

from bot.trend.summary import MAX_DAYS, zone_for

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bot.storage.history import HistoryStore

Format = Literal["csv", "json"]
FORMATS: tuple[Format, ...] = ("csv", "json")
COLUMNS = ("time", "duration_s", "tag", "confidence", "valence", "arousal", "text_label",
           "voice_label", "language", "transcript")
MIME = {"csv": "text/csv", "json": "application/json"}
#: Rows fetched and encoded per step of the stream.
PAGE_ROWS = 500
#: Exports up to this size stay in memory before being sent; larger ones spill to disk.
SPOOL_BYTES = 8 * 1024 * 1024
BOM = "\ufeff".encode()
#: First characters that make a spreadsheet cell a formula (OWASP "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: (platform, user id) of exports running in this process.
_RUNNING: set[tuple[str, str]] = set()


class ExportInProgress(Exception):
    """An export for this person is already running."""


@dataclass
class ExportFile:
    """A finished export, ready to send: ``file`` is positioned at its start."""

    filename: str
    mime: str
    rows: int
    size: int
    file: IO[bytes]


def parse_format(value: str | None) -> Format:
    """``csv`` (default) or ``json``, case-insensitive; :class:`ValueError` otherwise."""
    fmt = (value or "csv").strip().lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {value!r}: use csv or json")
    return fmt  # type: ignore[return-value]


def since_for_days(days: int | None, tz: str, now: datetime | None = None) -> float | None:
    """Start (unix seconds) of the last ``days`` calendar days in ``tz``, today included,
    as ``/trend`` counts them; None for the whole history."""
    if days is None:
        return None
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days must be between 1 and {MAX_DAYS} (got {days})")
    zone = zone_for(tz)
    now = now or datetime.now(UTC)
    first = now.astimezone(zone).date() - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=zone).timestamp()


async def iter_rows(store: HistoryStore, platform: str, user_id: str,
                    since: float | None = None, page: int = PAGE_ROWS
                    ) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The person's stored analyses, oldest first, ``page`` rows at a time (see
    :meth:`~bot.storage.history.HistoryStore.export_pages`)."""
    async for rows in store.export_pages(platform, user_id, since, page):
        yield rows


def record(row: tuple[Any, ...], zone: ZoneInfo) -> dict[str, Any]:
    """One stored row as an export record (keys :data:`COLUMNS`)."""
    _, created, duration, label, confidence, valence, arousal, text_label, voice_label, \
        language, transcript = row
    return {
        "time": datetime.fromtimestamp(float(created), zone).isoformat(timespec="seconds"),
        "duration_s": round(float(duration), 3),
        "tag": label,
        "confidence": round(float(confidence), 3),
        "valence": round(float(valence), 3),
        "arousal": round(float(arousal), 3),
        "text_label": text_label,
        "voice_label": voice_label,
        "language": language or "",
        "transcript": transcript or "",
    }


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet runs: text that would start a formula
    gets a leading ``'``; numbers and None (an empty cell) are left as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_lines(records: Iterable[dict[str, Any]], header: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)  # \r\n line ends and quoting as spreadsheets expect
    if header:
        writer.writerow(COLUMNS)
    for rec in records:
        writer.writerow([csv_cell(rec[c]) for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


class ExportStream:
    """The export as an async stream of UTF-8 chunks (one per page of rows).

    ``rows`` counts the records streamed so far: after the stream ends it is the number
    in the file, read in the same pass (a note stored meanwhile cannot make it disagree).
    """

    def __init__(self, store: HistoryStore, platform: str, user_id: str, fmt: Format,
                 tz: str, since: float | None = None, page: int = PAGE_ROWS) -> None:
        self._args = (store, platform, str(user_id), since, page)
        self.fmt = fmt
        self.zone = zone_for(tz)
        self.rows = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.fmt == "csv":
            yield BOM + _csv_lines((), header=True)
        else:
            yield b"["
        async for rows in iter_rows(*self._args):
            records = [record(r, self.zone) for r in rows]
            if self.fmt == "csv":
                yield _csv_lines(records, header=False)
            else:
                yield "".join(("\n" if self.rows + i == 0 else ",\n")
                              + json.dumps(rec, ensure_ascii=False)
                              for i, rec in enumerate(records)).encode("utf-8")
            self.rows += len(records)
        if self.fmt == "json":
            yield b"\n]\n" if self.rows else b"]\n"


async def write_export(out: IO[bytes], store: HistoryStore, platform: str, user_id: str,
                       fmt: Format, tz: str, since: float | None = None) -> tuple[int, int]:
    """Stream the export into the binary file ``out``; returns (rows, bytes written).

    Writes happen in a worker thread, so a slow disk never stalls the event loop.
    """
    stream = ExportStream(store, platform, user_id, fmt, tz, since)
    size = 0
    async for chunk in stream:
        await asyncio.to_thread(out.write, chunk)
        size += len(chunk)
    return stream.rows, size


@asynccontextmanager
async def exclusive(platform: str, user_id: str) -> AsyncIterator[None]:
    """Hold the person's export slot; :class:`ExportInProgress` when it is taken."""
    key = (platform, str(user_id))
    if key in _RUNNING:
        raise ExportInProgress(f"an export for {platform} user {user_id} is already running")
    _RUNNING.add(key)
    try:
        yield
    finally:
        _RUNNING.discard(key)


@asynccontextmanager
async def open_export(store: HistoryStore, platform: str, user_id: str, fmt: Format = "csv",
                      tz: str = "UTC", days: int | None = None, now: datetime | None = None
                      ) -> AsyncIterator[ExportFile]:
    """Build the person's export in a spooled temporary file and hand it out to be sent.

    The person's export slot is held until the ``async with`` block ends, so sending
    counts as part of the export. Raises :class:`ExportInProgress` or, for bad ``days``
    or ``tz``, :class:`ValueError`.
    """
    since = since_for_days(days, tz, now)
    async with exclusive(platform, user_id):
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            rows, size = await write_export(spool, store, platform, user_id, fmt, tz, since)
            await asyncio.to_thread(spool.seek, 0)
            stamp = (now or datetime.now(UTC)).astimezone(zone_for(tz)).strftime("%Y%m%d")
            name = f"voicemood-{platform}-{_safe(user_id)}-{stamp}.{fmt}"
            yield ExportFile(filename=name, mime=MIME[fmt], rows=rows, size=size, file=spool)
        finally:
            spool.close()


def _safe(value: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(value))[:40]
