"""Evaluations made up for report tests: real image files, known probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fastfood.evaluate import Evaluation, Records, confusion_of, top5_hits


def made_evaluation(tmp_path: Path, names: tuple[str, ...] = ("apple", "bread", "curry"),
                    n: int = 30, seed: int = 0) -> Evaluation:
    """An Evaluation of n real image files with known probabilities."""
    rng = np.random.default_rng(seed)
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = tmp_path / f"img{i:02d}.jpg"
        Image.new("RGB", (40 + i, 30), (8 * i, 100, 200 - 5 * i)).save(path)
        files.append(str(path))
    labels = rng.integers(0, len(names), n)
    logits = rng.normal(0, 2, (n, len(names))).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    records = Records(tuple(files), labels, logits, probs.astype(np.float32),
                      probs.argmax(axis=1).astype(np.int64))
    return Evaluation(split="val", classes=names, display_names=tuple(x.title() for x in names),
                      confusion=confusion_of(records, len(names)),
                      top5_correct=top5_hits(records), records=records, min_confidence=0.6,
                      skipped=(("/data/broken.jpg", "not a JPEG or PNG file"),))
