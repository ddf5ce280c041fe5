"""Metrics on disk: metrics.jsonl for scripts, TensorBoard summaries for people.

metrics.jsonl has one JSON object per line, `{"kind": "train"|"val", "step", "epoch",
"time", ...values}`, flushed line by line so a killed run keeps everything it logged. On
resume the lines past the restored step are dropped (they describe steps that will be
trained again), so the file always reads as one run.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.rundir import METRICS, TB


def _metadata(plugin: str, data_class: int) -> Any:
    """SummaryMetadata for TensorBoard's scalars/images plugins.

    The summaries are written with the low-level `tf.summary.write`, which needs no
    `tensorboard` package (TensorFlow 2.21 no longer installs it, and `tf.summary.scalar`
    refuses to work without it); TensorBoard reads them exactly as its own.
    """
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=data_class,
    )


def write_scalar(name: str, value: float, step: int) -> None:
    """A scalar in the default summary writer (TensorBoard's 'scalars' plugin)."""
    import tensorflow as tf

    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_metadata("scalars", 1))  # DATA_CLASS_SCALAR


def write_image(name: str, image: np.ndarray, step: int) -> None:
    """One uint8 HxWx3 picture (TensorBoard's 'images' plugin: [width, height, png])."""
    import tensorflow as tf

    png = tf.io.encode_png(tf.constant(image, tf.uint8))
    tensor = tf.stack([tf.as_string(image.shape[1]), tf.as_string(image.shape[0]), png])
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images", 3))  # BLOB_SEQUENCE


def write_text(name: str, text: str, step: int) -> None:
    """A markdown text (TensorBoard's 'text' plugin: a string tensor, rendered as markdown)."""
    import tensorflow as tf

    tf.summary.write(name, tf.constant(text), step=step,
                     metadata=_metadata("text", 2))  # DATA_CLASS_TENSOR


def truncate_after(path: Path, step: int) -> int:
    """Drop lines whose step is past `step`; returns how many were dropped."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut short by a kill
            dropped += 1
            continue
        if int(rec.get("step", 0)) > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text("".join(k + "\n" for k in kept))
        os.replace(tmp, path)
    return dropped


def read(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl (for tests, plots and bench)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def image_grid(images: np.ndarray, columns: int = 4) -> np.ndarray:
    """uint8 [N,H,W,3] tiled into one [rows*H, columns*W, 3] picture (black padding)."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * h, columns * w, c), images.dtype)
    for i in range(n):
        r, col = divmod(i, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
    return grid


class MetricsLog:
    """Writes metrics.jsonl and TensorBoard. `enabled=False` (non-chief workers) writes nothing."""

    def __init__(self, run_dir: str | Path, *, resume_step: int | None = None,
                 enabled: bool = True):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self._writers: dict[str, Any] = {}
        if not enabled:
            return
        path = self.run_dir / METRICS
        if resume_step is not None:
            truncate_after(path, resume_step)
        elif path.exists():
            path.unlink()
        self._file = open(path, "a", buffering=1)

    def _writer(self, kind: str) -> Any:
        import tensorflow as tf

        if kind not in self._writers:
            self._writers[kind] = tf.summary.create_file_writer(str(self.run_dir / TB / kind))
        return self._writers[kind]

    def log(self, kind: str, step: int, epoch: int, values: dict[str, float]) -> dict:
        """One line in metrics.jsonl and one scalar per value in tb/<kind>."""
        record = {"kind": kind, "step": int(step), "epoch": int(epoch),
                  "time": round(time.time(), 3)}
        record.update({k: (float(v) if isinstance(v, (int, float, np.floating)) else v)
                       for k, v in values.items()})
        if not self.enabled:
            return record
        self._file.write(json.dumps(record) + "\n")
        with self._writer(kind).as_default():
            for key, value in values.items():
                if isinstance(value, (int, float, np.floating)) and math.isfinite(float(value)):
                    write_scalar(key.replace("/", "_per_"), float(value), int(step))
        return record

    def images(self, step: int, name: str, images: np.ndarray) -> None:
        """A grid of (augmented) input images, as the model sees them before preprocessing."""
        if not self.enabled or len(images) == 0:
            return
        grid = image_grid(np.asarray(images, np.uint8))
        with self._writer("train").as_default():
            write_image(name, grid, int(step))

    def close(self) -> None:
        if not self.enabled:
            return
        for writer in self._writers.values():
            writer.flush()
            writer.close()
        self._writers = {}
        self._file.close()
