"""How a long download shows its progress: a rich bar on a terminal, plain lines elsewhere.

On a TTY the bar shows bytes, rate and time left (rich.progress). In a log file or CI a
bar would be a stream of carriage returns, so there a line is printed at every tenth of
the file (every 100 MiB when the size is unknown) with the same three facts.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Protocol, TextIO

MiB = 1 << 20


class Transfer(Protocol):
    """What download() tells about its progress."""

    def note(self, text: str) -> None:
        """A one-off line: resuming, retrying, starting again."""

    def start(self, total: int | None, done: int) -> None:
        """A transfer of `total` bytes (None: unknown) begins with `done` already on disk."""

    def advance(self, n: int) -> None:
        """`n` more bytes arrived."""

    def finish(self) -> None:
        """The transfer ended (complete or not)."""


def size(n: float) -> str:
    """Bytes in binary units, as rich shows them: 512 B, 3.2 MiB, 4.6 GiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def duration(seconds: float) -> str:
    """5 s, 3 min 20 s, 2 h 05 min."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class PlainLines:
    """Progress as plain lines on `stream`, one per tenth of the file (or per 100 MiB)."""

    def __init__(self, label: str, stream: TextIO,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.stream, self.clock = label, stream, clock
        self.total: int | None = None
        self.done = self.started_at = self.t0 = 0
        self.mark = 0

    def note(self, text: str) -> None:
        print(f"{self.label}: {text}", file=self.stream, flush=True)

    def start(self, total: int | None, done: int) -> None:
        self.total, self.done, self.started_at, self.t0 = total, done, done, self.clock()
        self.mark = self._bucket(done)

    def _bucket(self, done: int) -> int:
        return done * 10 // self.total if self.total else done // (100 * MiB)

    def advance(self, n: int) -> None:
        self.done += n
        bucket = self._bucket(self.done)
        if bucket > self.mark:
            self.mark = bucket
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        elapsed = max(self.clock() - self.t0, 1e-9)
        rate = (self.done - self.started_at) / elapsed
        if not self.total:
            return f"{self.label}: {size(self.done)}, {size(rate)}/s"
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = duration(left) if left != float("inf") else "?"
        return (f"{self.label}: {self.done * 100 // self.total}% ({size(self.done)} of "
                f"{size(self.total)}), {size(rate)}/s, {eta} left")

    def finish(self) -> None:
        pass


class RichBar:
    """Progress as a rich bar: description, bar, bytes done/total, rate, time left."""

    def __init__(self, label: str, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self.label = label
        self.console = Console(file=stream)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 DownloadColumn(binary_units=True), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=False)
        self.task: Any = None

    def note(self, text: str) -> None:
        self.console.print(f"{self.label}: {text}", markup=False, highlight=False)

    def start(self, total: int | None, done: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total, completed=done)
        else:
            self.progress.reset(self.task, total=total, completed=done)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def for_stream(label: str, stream: TextIO | None = None) -> Transfer:
    """A RichBar on a terminal, PlainLines otherwise (stderr by default)."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return RichBar(label, stream) if isatty and isatty() else PlainLines(label, stream)
