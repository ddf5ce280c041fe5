"""Top-1, top-5, per-class accuracy and the confusion matrix of a run on a split.

    ev = evaluate("runs/food101", split="val")
    write_outputs(ev, "runs/food101")   # eval_val.json, confusion_val.png

Images go through the same batched eval-view decoding as predict (`fastfood.inference.batches`,
the loaders' eval mode) and the same float32 forward pass, so `predict` over the split's
files gives exactly the top-1 answers counted here. Files that cannot be read or decoded
are skipped and listed (`skipped`); `n` counts the images actually evaluated.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.phases import PhaseTimer
from fastfood.config import MAX_PIXELS
from fastfood.errors import FastfoodError
from fastfood.inference.batches import Batch, decode_batches
from fastfood.inference.forward import Forward, top_k

SPLITS = ("val", "test", "train")
TOP_K = 5


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found. Accuracies are fractions of `n` (0 when n is 0)."""

    split: str
    classes: tuple[str, ...]
    display_names: tuple[str, ...]
    confusion: np.ndarray  # int64 [C, C]: rows true class, columns top-1 prediction
    top5_correct: int
    skipped: tuple[tuple[str, str], ...] = ()
    run_dir: str = ""
    data_root: str = ""
    checkpoint: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def per_class_n(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def per_class_correct(self) -> np.ndarray:
        return np.diag(self.confusion)

    @property
    def top1(self) -> float:
        return float(np.trace(self.confusion)) / self.n if self.n else 0.0

    @property
    def top5(self) -> float:
        return self.top5_correct / self.n if self.n else 0.0

    def to_json(self) -> dict[str, Any]:
        per_class = []
        for i, (cls, name) in enumerate(zip(self.classes, self.display_names)):
            count = int(self.per_class_n[i])
            correct = int(self.per_class_correct[i])
            per_class.append({"class": cls, "name": name, "n": count, "correct": correct,
                              "top1": correct / count if count else None})
        return {
            "split": self.split, "n": self.n, "top1": self.top1, "top5": self.top5,
            "top5_k": min(TOP_K, len(self.classes)),
            "skipped": [{"file": f, "error": e} for f, e in self.skipped],
            "per_class": per_class, "run_dir": self.run_dir, "data": self.data_root,
            "checkpoint": self.checkpoint, "seconds": round(self.seconds, 3), **self.extra,
        }


def evaluate(
    run_dir: str | os.PathLike[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str = "val",
    loader: str = "auto",
    batch_size: int | None = None,
    timer: PhaseTimer | None = None,
) -> Evaluation:
    """Evaluate a run (default: the newest under runs/) on `split` of its data (or `data`)."""
    from fastfood.inference.runs import load_run, resolve_run_dir

    if split not in SPLITS:
        raise FastfoodError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = resolve_run_dir(run_dir)
    from fastfood.rundir import read_info

    info = read_info(path)
    root, files, labels = split_files(info, data, split)
    model, info = load_run(path, None, timer)
    batch = int(batch_size) if batch_size is not None else \
        int(info.config.loader.batch_size or 64)
    if batch < 1:
        raise FastfoodError(f"--batch-size must be >= 1, got {batch}")
    start = time.perf_counter()
    confusion, top5_correct, skipped = count(
        Forward(model, info.image_size), files, labels, num_classes=info.num_classes,
        image_size=info.image_size, batch_size=batch, loader=loader,
        max_pixels=info.config.loader.max_pixels,
    )
    return Evaluation(
        split=split, classes=info.classes, display_names=info.display_names,
        confusion=confusion, top5_correct=top5_correct, skipped=tuple(skipped),
        run_dir=str(path), data_root=str(root), checkpoint=info.checkpoint_path,
        seconds=time.perf_counter() - start,
        extra={"loader": loader, "batch_size": batch},
    )


def split_files(info: Any, data: str | os.PathLike[str] | None,
                split: str) -> tuple[Path, tuple[str, ...], tuple[int, ...]]:
    """(root, files, labels) of `split`, checked against the run's classes.

    `data` defaults to the run's config.json data root; an empty root there means the
    built-in sample, as in training.
    """
    from fastfood import data as data_layer

    cfg = info.config.data
    root = data_layer.root_of(data if data is not None else cfg.root)
    spec = data_layer.load_config(cfg, root)
    if tuple(spec.classes) != tuple(info.classes):
        missing = [c for c in info.classes if c not in spec.classes][:3]
        extra = [c for c in spec.classes if c not in info.classes][:3]
        detail = "; ".join(([f"missing {missing}"] if missing else [])
                           + ([f"not in the run {extra}"] if extra else []))
        raise FastfoodError(
            f"--data {root}: its classes are not the run's ({len(spec.classes)} vs "
            f"{len(info.classes)} classes, {detail or 'same names in another order'})"
        )
    chosen = getattr(spec, split)
    if not chosen.files:
        hint = (" (class folders: train with --test-fraction, or add a test/ folder beside "
                "train/)" if split == "test" and spec.layout == "folders" else "")
        raise FastfoodError(f"--data {root}: the {split} split has no images{hint}")
    return Path(root), tuple(chosen.files), tuple(chosen.labels)


def count(
    forward: Forward,
    files: Sequence[str],
    labels: Sequence[int],
    *,
    num_classes: int,
    image_size: int,
    batch_size: int,
    loader: str = "auto",
    max_pixels: int = MAX_PIXELS,
) -> tuple[np.ndarray, int, list[tuple[str, str]]]:
    """(confusion [C, C], top-5 hits, skipped (path, reason)) over `files`."""
    labels_arr = np.asarray(labels, dtype=np.int64)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    top5_correct = 0
    failures: list[tuple[int, str]] = []
    traced = len(files) > batch_size
    for item in decode_batches(files, image_size=image_size, batch_size=batch_size, kind=loader,
                               max_pixels=max_pixels):
        if not isinstance(item, Batch):
            failures.append((item.index, item.reason))
            continue
        probs = forward(item.images, traced=traced)
        truth = labels_arr[list(item.indices)]
        best, _ = top_k(probs, TOP_K)
        np.add.at(confusion, (truth, best[:, 0]), 1)
        top5_correct += int((best == truth[:, None]).any(axis=1).sum())
    skipped = [(files[i], reason) for i, reason in sorted(failures)]
    return confusion, top5_correct, skipped


def write_outputs(ev: Evaluation, run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """eval_<split>.json and confusion_<split>.png in the run directory."""
    from fastfood.rundir import write_json

    run_dir = Path(run_dir)
    json_path = run_dir / f"eval_{ev.split}.json"
    png_path = run_dir / f"confusion_{ev.split}.png"
    write_json(json_path, ev.to_json())
    plot_confusion(ev, png_path)
    return json_path, png_path


def plot_confusion(ev: Evaluation, path: str | os.PathLike[str]) -> None:
    """Row-normalised confusion matrix as a PNG (matplotlib's Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    c = len(ev.classes)
    rows = ev.confusion.sum(axis=1, keepdims=True)
    norm = np.divide(ev.confusion, rows, out=np.zeros(ev.confusion.shape), where=rows > 0)
    side = min(24.0, max(5.0, 0.22 * c + 3))
    fig = Figure(figsize=(side, side * 0.9), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{ev.split}: top-1 {ev.top1:.1%}, top-5 {ev.top5:.1%}, n={ev.n}")
    if c <= 40:
        ticks = list(range(c))
        ax.set_xticks(ticks, labels=ev.display_names, rotation=90, fontsize=8)
        ax.set_yticks(ticks, labels=ev.display_names, fontsize=8)
    fig.tight_layout()
    fig.savefig(os.fspath(path))


def per_class_table(ev: Evaluation) -> Any:
    """A rich Table: per class, images, correct, top-1 (worst classes are easy to spot)."""
    from rich.table import Table

    table = Table(title=f"{ev.split}: top-1 {ev.top1:.2%}  top-5 {ev.top5:.2%}  ({ev.n} images)")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("correct", justify="right")
    table.add_column("top-1", justify="right")
    for i, name in enumerate(ev.display_names):
        count_i = int(ev.per_class_n[i])
        correct = int(ev.per_class_correct[i])
        acc = f"{correct / count_i:.1%}" if count_i else "-"
        table.add_row(name, str(count_i), str(correct), acc)
    return table
