"""Evaluate's findings in TensorBoard, beside the run's training curves (tb/eval_<split>).

Scalars (top-1, top-5, macro precision/recall/F1, ECE, NLL) at the run's training step, so
repeated evaluations of a run line up with its curves; the most confused pairs and the top
losses as markdown tables (the text plugin); the worst errors as one image grid. Written
with `tf.summary.write` and explicit plugin metadata (fastfood.train.metrics), so no
`tensorboard` package is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastfood.evaluate import Evaluation

GRID_SIDE = 96  # px per image in the worst-errors grid
GRID_IMAGES = 16


def write_evaluation(ev: Evaluation, folder: str | os.PathLike[str]) -> Path:
    import tensorflow as tf

    from fastfood.train.metrics import image_grid, write_image, write_scalar, write_text

    cs = ev.class_scores
    cal = ev.calibration()
    values = {"top1": ev.top1, "top5": ev.top5, "macro_precision": cs.macro_precision,
              "macro_recall": cs.macro_recall, "macro_f1": cs.macro_f1}
    if cal is not None:
        values.update(ece=cal["ece"], ece_uncalibrated=cal["ece_uncalibrated"],
                      nll=cal["nll"], temperature=cal["temperature"])
    writer = tf.summary.create_file_writer(os.fspath(folder))
    with writer.as_default():
        for name, value in values.items():
            write_scalar(name, float(value), ev.step)
        write_text("most_confused", confused_markdown(ev), ev.step)
        write_text("top_losses", losses_markdown(ev), ev.step)
        pixels = [p for p in (_square(row["file"]) for row in ev.top_losses(GRID_IMAGES))
                  if p is not None]
        if pixels:
            write_image("worst_errors", image_grid(np.stack(pixels), columns=4), ev.step)
    writer.flush()
    writer.close()
    return Path(folder)


def _cell(text: object) -> str:
    """Text for a markdown table cell (a | would start a new cell)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def confused_markdown(ev: Evaluation) -> str:
    rows = ["| true class | predicted as | images | of the true class |", "|---|---|---:|---:|"]
    rows += [f"| {_cell(p['true_name'])} | {_cell(p['predicted_name'])} | {p['count']} | "
             f"{p['share_of_true']:.1%} |" for p in ev.most_confused()]
    return "\n".join(rows) if len(rows) > 2 else "No image was confused with another class."


def losses_markdown(ev: Evaluation) -> str:
    rows = ["| file | true class | p(true) | predicted | p(predicted) | loss |",
            "|---|---|---:|---|---:|---:|"]
    rows += [f"| {_cell(os.path.basename(r['file']))} | {_cell(r['true_name'])} | "
             f"{r['p_true']:.1%} | {_cell(r['predicted_name'])} | {r['p_predicted']:.1%} | "
             f"{r['loss']:.2f} |" for r in ev.top_losses()]
    return "\n".join(rows) if len(rows) > 2 else "No images were evaluated."


def _square(path: str) -> np.ndarray | None:
    """The image as a GRID_SIDE square (centre crop), or None when it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (GRID_SIDE, GRID_SIDE))
            square = ImageOps.fit(image.convert("RGB"), (GRID_SIDE, GRID_SIDE))
            return np.asarray(square, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
