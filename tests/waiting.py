"""Waiting for something another process does (a worker's log line, a row in a database,
a queue's length), where no event can be handed across: check the condition often, fail
with what was awaited after a bounded time. Never a fixed sleep that hopes it happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], within: float, what: str,
               step: float = 0.05) -> None:
    """Block until ``condition()`` is true; AssertionError naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {within:.0f} s waiting for {what}"
        time.sleep(step)


async def until(condition: Callable[[], object], within: float, what: str,
                step: float = 0.05) -> None:
    """:func:`wait_until` without blocking the event loop (fakes in this process keep
    answering meanwhile)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {within:.0f} s waiting for {what}"
        await asyncio.sleep(step)
