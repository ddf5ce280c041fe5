"""What a run tells: metrics.jsonl and TensorBoard, the progress bar, and its throughput.

The loop hands this the logs it already has; the only host sync of a step is here, when a
logging interval ends (`train`). Throughput is counted in windows of steps that exclude
validation and saving (`pause` closes a window), so img/s is the training rate alone.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any, Callable

from fastfood.errors import FastfoodError
from fastfood.train.metrics import MetricsLog
from fastfood.train.position import Position
from fastfood.train.progress import Progress, val_line


def sayer(stream: IO[str] | None) -> Callable[[str], None]:
    """A function printing `fastfood: TEXT` lines on `stream` (stderr by default)."""
    def say(text: str) -> None:
        print(f"fastfood: {text}", file=stream or sys.stderr, flush=True)

    return say


class RunLog:
    """Logs of one worker: the chief writes metrics and shows progress, every worker can
    `shout` (why it stopped)."""

    def __init__(self, metrics: MetricsLog, progress: Progress | None, *, every: int,
                 global_batch: int, stream: IO[str] | None = None, chief: bool = True):
        self.metrics, self.progress, self.every, self.batch = metrics, progress, every, global_batch
        self.shout = sayer(stream)
        self.say = self.shout if chief else (lambda text: None)
        self.trained, self.train_time = 0, 0.0  # steps and seconds inside closed windows
        self._since, self._mark = 0, time.perf_counter()

    def start_epoch(self, pos: Position, steps_here: int) -> None:
        if self.progress:
            self.progress.start_epoch(pos.epoch, steps_here, pos.batch_in_epoch)
        self._since, self._mark = 0, time.perf_counter()

    def end_epoch(self) -> None:
        if self.progress:
            self.progress.end_epoch()

    def stepped(self) -> bool:
        """Count a step; True when a logging interval ends with it."""
        self._since += 1
        return self._since >= self.every

    def train(self, pos: Position, logs: dict, lr_hint: float) -> None:
        """Fetch the step's logs (the host sync), check the loss, write and show them."""
        values = {k: float(v) for k, v in logs.items()}
        check_finite(values["loss"], pos.step, lr_hint, self.metrics.run_dir)
        now = time.perf_counter()
        values["img/s"] = self._since * self.batch / max(now - self._mark, 1e-9)
        self.pause(now)
        self.metrics.log("train", pos.step, pos.last_epoch + 1, values)
        if self.progress:
            self.progress.update(pos.step, pos.batch_in_epoch or self.progress.steps, values)

    def val(self, pos: Position, result: dict) -> None:
        self.metrics.log("val", pos.step, pos.last_epoch + 1, result)
        if self.progress:
            self.progress.message(val_line(pos.step, pos.last_epoch, result))

    def pause(self, now: float | None = None) -> None:
        """Close the current timing window (the steps since the last one)."""
        now = now or time.perf_counter()
        if self._since:
            self.train_time += now - self._mark
            self.trained += self._since
        self._mark, self._since = now, 0

    def img_per_s(self) -> float | None:
        return self.trained * self.batch / self.train_time if self.train_time > 0 else None

    def close(self) -> None:
        self.pause()
        self.metrics.close()


def check_finite(loss: float, step: int, lr: float, run_dir: Any) -> None:
    """Stop a diverged run before it checkpoints NaN weights over good ones."""
    if not math.isfinite(loss):
        raise FastfoodError(
            f"training diverged: loss is {loss} at step {step}; lower --lr (it is {lr:g}). "
            f"The last good checkpoint is in {run_dir}/ckpt")
