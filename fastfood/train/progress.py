"""What a person watching the run sees on stderr.

A rich progress bar per epoch (loss, img/s, ETA) when stderr is a terminal; otherwise
(logs, CI, pipes) one plain line per logging interval, so a log file stays readable.
The loop hands it numbers it already fetched: nothing here touches TensorFlow.
"""

from __future__ import annotations

import sys
from typing import IO, Any


def _fmt(values: dict[str, float]) -> str:
    """loss, batch top-1, learning rate and throughput, in that order, when present."""
    formats = (("loss", "loss {:.4f}"), ("top1", "top1 {:.3f}"), ("lr", "lr {:.3g}"),
               ("img/s", "{:.0f} img/s"))
    return " ".join(fmt.format(values[key]) for key, fmt in formats if key in values)


class Progress:
    """Per-epoch progress; `message()` prints above the bar (or as a plain line)."""

    def __init__(self, *, total_epochs: int, stream: IO[str] | None = None,
                 fancy: bool | None = None):
        self.stream = stream or sys.stderr
        self.total_epochs = total_epochs
        self.fancy = self.stream.isatty() if fancy is None else fancy
        self._bar: Any = None
        self._task: Any = None
        self._console: Any = None
        if self.fancy:
            from rich.console import Console

            self._console = Console(file=self.stream)

    def start_epoch(self, epoch: int, steps: int, done: int = 0) -> None:
        self.epoch, self.steps = epoch, steps
        if not self.fancy:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar,
                                   TextColumn, TimeElapsedColumn, TimeRemainingColumn)

        self._bar = Bar(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=self._console, transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            "train", total=steps, completed=done,
            epoch=f"{epoch + 1}/{self.total_epochs}", stats="",
        )

    def update(self, step: int, batch_in_epoch: int, values: dict[str, float]) -> None:
        stats = _fmt(values)
        if self.fancy and self._bar is not None:
            self._bar.update(self._task, completed=batch_in_epoch, stats=stats)
        else:
            print(f"epoch {self.epoch + 1}/{self.total_epochs} batch {batch_in_epoch}/{self.steps} "
                  f"step {step}: {stats}", file=self.stream, flush=True)

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def message(self, text: str) -> None:
        if self.fancy and self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)


def val_line(step: int, epoch: int, result: dict[str, float]) -> str:
    """`val step 120 epoch 3: top1 0.973 top5 1.000 loss 0.081` (epoch counted from 1)."""
    return (f"val step {step} epoch {epoch + 1}: top1 {result['top1']:.3f} "
            f"top5 {result['top5']:.3f} loss {result['loss']:.3f}")
