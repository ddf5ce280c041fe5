"""How far a non-float32 answer is from the float32 one, measured on a sample of images.

bf16 keeps 8 significant bits, so a model run in it can answer a near-tie differently from
float32. Evaluate says by how much instead of assuming: it runs the same run at float32
(`--precision fp32`, batch norm folded as well) over an evenly spaced sample of the images
it just evaluated, and reports the share whose top-1 is the same and the largest
difference of any class probability.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.config import MAX_PIXELS
from fastfood.inference.batches import Batch, decode_batches
from fastfood.inference.forward import Forward, top_k

#: Images re-run at float32 by default (evaluate's --agreement-sample).
DEFAULT_SAMPLE = 64


def sample_indices(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (all of them when k >= n), sorted."""
    if k <= 0 or n <= 0:
        return np.zeros(0, np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def compare(probs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement and the largest probability difference of two [n, C] answers."""
    probs, reference = np.asarray(probs, np.float32), np.asarray(reference, np.float32)
    if not len(probs):
        return {"sample": 0, "top1_agreement": None, "top1_differs": 0,
                "max_prob_diff": None}
    same = top_k(probs, 1)[0][:, 0] == top_k(reference, 1)[0][:, 0]
    return {"sample": int(len(probs)), "top1_agreement": float(same.mean()),
            "top1_differs": int((~same).sum()),
            "max_prob_diff": float(np.abs(probs - reference).max())}


def against_fp32(
    run_dir: str | Path,
    files: Sequence[str],
    probs: np.ndarray,
    *,
    sample: int = DEFAULT_SAMPLE,
    batch_size: int = 32,
    loader: str = "auto",
    max_pixels: int = MAX_PIXELS,
    model_path: str | Path | None = None,
) -> dict[str, Any]:
    """`compare` of `probs` (one row per file, as evaluated) with the run at float32 on an
    evenly spaced sample of `sample` of the files."""
    from fastfood.inference.runs import inference_model

    start = time.perf_counter()
    chosen = sample_indices(len(files), sample)
    reference = inference_model(run_dir, "fp32", model_path=model_path)
    forward = Forward(reference.model, reference.info.image_size, reference.info.temperature)
    picked = [files[i] for i in chosen]
    rows: dict[int, np.ndarray] = {}
    for item in decode_batches(picked, image_size=forward.image_size, batch_size=batch_size,
                               kind=loader, max_pixels=max_pixels,
                               exif=reference.info.exif):
        if isinstance(item, Batch):
            for i, row in zip(item.indices, forward(item.images,
                                                    traced=len(picked) > batch_size)):
                rows[i] = row
    kept = sorted(rows)  # a file that no longer decodes is left out of the comparison
    result = compare(np.asarray(probs)[chosen[kept]] if kept else np.zeros((0, 1)),
                     np.stack([rows[i] for i in kept]) if kept else np.zeros((0, 1)))
    return {"reference": "fp32", **result, "of": len(files),
            "seconds": round(time.perf_counter() - start, 3)}
