"""What `fastfood evaluate` prints: rich tables and the plain lines under them."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastfood.evaluate import Evaluation


def _pct(value: float | None) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:.1%}"


def per_class_table(ev: Evaluation) -> Any:
    """A rich Table: per class, images, correct, top-1, precision, recall."""
    from rich.table import Table

    cs = ev.class_scores
    table = Table(title=f"{ev.split}: top-1 {ev.top1:.2%}  top-5 {ev.top5:.2%}  ({ev.n} images)")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("correct", justify="right")
    table.add_column("top-1", justify="right")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    for i, name in enumerate(ev.display_names):
        count_i = int(ev.per_class_n[i])
        correct = int(ev.per_class_correct[i])
        acc = f"{correct / count_i:.1%}" if count_i else "-"
        table.add_row(name, str(count_i), str(correct), acc, _pct(cs.precision[i]),
                      _pct(cs.recall[i]))
    return table


def confused_table(ev: Evaluation) -> Any:
    """A rich Table of the most confused class pairs (empty when nothing is confused)."""
    from rich.table import Table

    table = Table(title="most confused (true -> predicted)")
    for name, justify in (("true class", "left"), ("predicted as", "left"),
                          ("images", "right"), ("of the class", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for pair in ev.most_confused():
        table.add_row(pair["true_name"], pair["predicted_name"], str(pair["count"]),
                      f"{pair['share_of_true']:.1%}")
    return table


def losses_table(ev: Evaluation, k: int = 10) -> Any:
    """A rich Table of the files with the highest loss."""
    from rich.table import Table

    table = Table(title="top losses")
    for name, justify in (("file", "left"), ("true class", "left"), ("p(true)", "right"),
                          ("predicted", "left"), ("p(pred)", "right"), ("loss", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in ev.top_losses(k):
        table.add_row(os.path.basename(row["file"]), row["true_name"], f"{row['p_true']:.1%}",
                      row["predicted_name"], f"{row['p_predicted']:.1%}", f"{row['loss']:.2f}")
    return table


def summary_lines(ev: Evaluation) -> list[str]:
    """The plain lines under the tables: macro scores, calibration, the thresholds."""
    cs = ev.class_scores
    lines = [f"macro precision {cs.macro_precision:.2%}  recall {cs.macro_recall:.2%}  "
             f"F1 {cs.macro_f1:.2%}"]
    cal = ev.calibration()
    if cal is not None:
        lines.append(f"calibration: temperature {cal['temperature']:.3f}; ECE "
                     f"{cal['ece']:.2%} ({cal['ece_uncalibrated']:.2%} at T=1; "
                     f"{cal['bins']} equal-width bins of the top-1 probability)")
    sel = ev.at_min_confidence()
    if sel is not None:
        acc = "-" if sel.accuracy is None else f"{sel.accuracy:.2%}"
        lines.append(f"at --min-confidence {sel.threshold:g}: answers {sel.answered} of "
                     f"{sel.total} ({sel.coverage:.1%} coverage), accuracy {acc}; the rest "
                     "are 'unknown'")
    target = ev.for_target()
    if ev.records is not None:
        if target is None:
            lines.append(f"no confidence threshold reaches {ev.target_accuracy:.1%} accuracy "
                         f"on this split")
        else:
            lines.append(f"--min-confidence {target.threshold:.4g} reaches "
                         f"{target.accuracy:.2%} accuracy (target {ev.target_accuracy:.1%}) "
                         f"at {target.coverage:.1%} coverage ({target.answered} of "
                         f"{target.total} images) on this split")
    return lines
