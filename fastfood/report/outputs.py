"""What `fastfood evaluate` leaves in the run directory: JSON, CSV, HTML, TensorBoard, PNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastfood.evaluate import Evaluation


def write_outputs(ev: Evaluation, run_dir: str | os.PathLike[str]) -> dict[str, Path | str]:
    """Everything evaluate leaves in the run directory, by kind:

    json (eval_<split>.json), csv (predictions_<split>.csv), html (report_<split>.html),
    tensorboard (tb/eval_<split>) and png (confusion_<split>.png). The PNG needs
    matplotlib (the `bench` extra); without it `png` is the reason it was not written, and
    the HTML report still has the matrix.
    """
    from fastfood.report.evaluation import write_report
    from fastfood.report.tensorboard import write_evaluation
    from fastfood.rundir import TB, write_json

    run_dir = Path(run_dir)
    out: dict[str, Path | str] = {
        "json": run_dir / f"eval_{ev.split}.json",
        "csv": run_dir / f"predictions_{ev.split}.csv",
        "html": run_dir / f"report_{ev.split}.html",
        "tensorboard": run_dir / TB / f"eval_{ev.split}",
    }
    write_json(out["json"], ev.to_json())  # type: ignore[arg-type]
    write_predictions_csv(ev, out["csv"])  # type: ignore[arg-type]
    write_report(ev, out["html"])  # type: ignore[arg-type]
    write_evaluation(ev, out["tensorboard"])  # type: ignore[arg-type]
    png = run_dir / f"confusion_{ev.split}.png"
    try:
        plot_confusion(ev, png)
        out["png"] = png
    except ImportError:
        out["png"] = ("confusion PNG not written: matplotlib is not installed (pip install "
                      "matplotlib, or fastfood[bench]); the HTML report has the matrix")
    return out


PREDICTION_COLUMNS = ("file", "true_class", "predicted_class", "p_true", "p_predicted",
                      "loss", "correct", "unknown")


def write_predictions_csv(ev: Evaluation, path: str | os.PathLike[str]) -> None:
    """One row per evaluated file, in input order: its true and predicted class, the
    probability of each, the loss; `unknown` is empty without --min-confidence."""
    import csv

    r = ev.records
    tmp = Path(path).with_name(f".{Path(path).name}.tmp{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PREDICTION_COLUMNS)
        if r is not None:
            loss, conf, p_true = r.loss, r.confidence, r.p_true
            for i, file in enumerate(r.files):
                unknown = "" if ev.min_confidence is None else int(conf[i] < ev.min_confidence)
                writer.writerow([file, ev.classes[r.labels[i]], ev.classes[r.predicted[i]],
                                 f"{p_true[i]:.6g}", f"{conf[i]:.6g}", f"{loss[i]:.6g}",
                                 int(r.predicted[i] == r.labels[i]), unknown])
    os.replace(tmp, path)


def plot_confusion(ev: Evaluation, path: str | os.PathLike[str]) -> None:
    """Row-normalised confusion matrix as a PNG (matplotlib's Agg canvas, no pyplot state).
    ImportError when matplotlib is not installed (it is an optional extra)."""
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
