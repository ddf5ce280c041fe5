"""Temperature scaling: one scalar T fitted on the validation split, so that softmax(z / T)
means what it says.

    cal = fit_temperature("runs/food101")    # loads the run, runs val, writes calibration.json
    cal.temperature, cal.ece_before, cal.ece_after

Why one temperature (Guo et al. 2017): a fine-tuned network is over-confident (it gives
0.95+ to images it gets wrong), and dividing the logits by a single T > 1 fixes most of
that without changing any top-1 answer, so accuracy figures, the confusion matrix and every
comparison with the uncalibrated run stay valid. T minimises the validation NLL; the
expected calibration error (scores.ECE_BINS: 15 equal-width bins of the top-1
probability) is reported before and after.

calibration.json records the checkpoint it was fitted for (relative to the run dir).
`load_run` applies T only when it restores that same checkpoint: after a resumed run, or
with `--model` naming another checkpoint, the temperature would belong to other weights,
so T = 1 is used and a line on stderr says to run `fastfood calibrate` again.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastfood import scores
from fastfood.errors import FastfoodError
from fastfood.rundir import CALIBRATION, relative_checkpoint

#: T is searched in [T_MIN, T_MAX]: a val split the model gets entirely right would
#: otherwise drive T towards 0 (every answer 100 % sure), and one it gets all wrong
#: towards infinity (uniform answers); both ends are reported as such.
T_MIN, T_MAX = 0.05, 20.0


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did on the split it was fitted on."""

    temperature: float
    n: int
    split: str
    checkpoint: str  # the weights it was fitted for, relative to the run dir
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    top1: float
    bins: int = scores.ECE_BINS
    bin_rule: str = scores.BIN_RULE
    fitted_at: float = 0.0
    at_bound: bool = False  # T hit T_MIN or T_MAX: the split does not pin it down

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for the console."""
        bound = f" (at the search bound [{T_MIN:g}, {T_MAX:g}])" if self.at_bound else ""
        return (f"temperature {self.temperature:.3f}{bound} fitted on {self.n} {self.split} "
                f"images: NLL {self.nll_before:.3f} -> {self.nll_after:.3f}, ECE "
                f"{self.ece_before:.1%} -> {self.ece_after:.1%} ({self.bins} equal-width bins)")


def fit(logits: np.ndarray, labels: np.ndarray) -> tuple[float, bool]:
    """(T minimising the NLL of softmax(logits / T), whether it is at a search bound).

    With b = 1/T the NLL is convex in b (a log-sum-exp of lines minus a line), so its
    derivative, mean(E_softmax(bz)[z] - z_label), only grows with b: bisection on its sign
    finds the one minimum to float precision in 60 halvings.
    """
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise FastfoodError("cannot fit a temperature on no images")
    z_true = z[np.arange(len(labels)), labels]

    def slope(b: float) -> float:
        p = scores.softmax(z, 1.0 / b)
        return float(((p * z).sum(axis=1) - z_true).mean())

    lo, hi = 1.0 / T_MAX, 1.0 / T_MIN
    if slope(lo) >= 0:
        return T_MAX, True
    if slope(hi) <= 0:
        return T_MIN, True
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if slope(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 1.0 / (0.5 * (lo + hi)), False


def summarise(logits: np.ndarray, labels: np.ndarray, temperature: float, at_bound: bool,
              *, split: str, checkpoint: str) -> Calibration:
    """The Calibration record for `temperature` on these logits (before: T = 1)."""
    labels = np.asarray(labels, dtype=np.int64)
    before, after = scores.softmax(logits), scores.softmax(logits, temperature)
    correct = before.argmax(axis=1) == labels
    return Calibration(
        temperature=float(temperature), n=len(labels), split=split, checkpoint=checkpoint,
        nll_before=scores.nll(logits, labels), nll_after=scores.nll(logits, labels, temperature),
        ece_before=scores.ece(before.max(axis=1), correct),
        ece_after=scores.ece(after.max(axis=1), after.argmax(axis=1) == labels),
        top1=float(correct.mean()) if len(labels) else 0.0,
        fitted_at=round(time.time(), 3), at_bound=at_bound,
    )


def fit_temperature(run_dir: str | os.PathLike[str], *, data: str | os.PathLike[str] | None
                    = None, loader: str = "auto", batch_size: int | None = None,
                    write: bool = True) -> Calibration:
    """Load the run (its default weights), run its val split, fit T, write calibration.json."""
    from fastfood.evaluate import collect_logits, split_files
    from fastfood.inference.runs import load_run, resolve_run_dir
    from fastfood.rundir import read_info, write_json

    path = resolve_run_dir(run_dir)
    info = read_info(path)
    _, files, labels = split_files(info, data, "val")
    model, info = load_run(path)
    batch = int(batch_size or info.config.loader.batch_size or 64)
    logits, kept, _ = collect_logits(model, info.image_size, files, batch_size=batch,
                                     loader=loader, exif=info.exif)
    if not len(kept):
        raise FastfoodError(f"{path}: none of the {len(files)} val images could be read")
    y = np.asarray(labels, dtype=np.int64)[kept]
    temperature, at_bound = fit(logits, y)
    cal = summarise(logits, y, temperature, at_bound, split="val",
                    checkpoint=relative_checkpoint(path, info.checkpoint_path))
    if write:
        write_json(Path(path) / CALIBRATION, cal.to_json())
    return cal
