"""Progress of ``voicemood analyze`` on standard error, so standard output stays the results.

Loading the models takes seconds to minutes and a batch of files longer still, so the
command says what it is doing: "loading models…", then ``[n/N] FILE`` per file, as its
result comes up in the order of the files (several files are analysed at once). On a
terminal that is one line redrawn in place with a bar; elsewhere (a log, a pipe, a test)
plain lines, since carriage returns and escape codes would only be noise there.
``--json`` output is unchanged: nothing here writes to standard output.
"""

from __future__ import annotations

import sys
from typing import TextIO

from inference.stages import OnStage, fraction

#: Cells of the bar drawn on a terminal.
BAR_WIDTH = 20
#: Carriage return plus "erase to end of line": the next draw replaces the last.
_CLEAR = "\r\x1b[K"


class Progress:
    """Where ``voicemood analyze`` stands, written to ``stream`` (standard error)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False
        self._file = (0, "")

    def loading(self) -> None:
        """Say that the models are loading (the long silent part of a first run)."""
        self._write("voicemood: loading models…\n")

    def start(self, number: int, name: str) -> None:
        """File ``number`` (1-based) of ``total`` is being analysed."""
        self._file = (number, name)
        if not self.tty:
            self._write(f"[{number}/{self.total}] {name}\n")
            return
        self._draw(0.0, "")

    def stage(self, stage: str, done: float = 0.0) -> None:
        """The current file entered ``stage`` (an :data:`inference.stages.OnStage`): on a
        terminal the bar moves within the file's share and names the stage; elsewhere
        nothing, so logs keep one line per file."""
        if self.tty and self._file[0]:
            self._draw(fraction(stage, done), f" · {stage}")

    def stage_of(self, number: int) -> OnStage:
        """The stage callback of file ``number``: several files are analysed at once, and
        only the stages of the file shown (the next result in order) move the bar."""

        def on_stage(stage: str, done: float = 0.0) -> None:
            if self._file[0] == number:
                self.stage(stage, done)

        return on_stage

    def _draw(self, within: float, suffix: str) -> None:
        number, name = self._file
        done = int((number - 1 + within) * BAR_WIDTH // max(self.total, 1))
        bar = "█" * done + "░" * (BAR_WIDTH - done)
        self._write(f"{_CLEAR}{bar} [{number}/{self.total}] {name}{suffix}")
        self._drawn = True

    def clear(self) -> None:
        """Take the bar off the terminal before a result is printed (or at the end)."""
        if self._drawn:
            self._write(_CLEAR)
            self._drawn = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
