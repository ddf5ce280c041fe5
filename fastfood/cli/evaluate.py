"""`fastfood evaluate`: how a run does on a split, and where it goes wrong.

Writes into the run directory: eval_<split>.json (everything below), predictions_<split>.csv
(one row per file: true and predicted class, the probability of each, the loss),
report_<split>.html (one self-contained page: worst errors as a gallery, the confusion
matrix, per-class table, calibration), TensorBoard summaries in tb/eval_<split>, and
confusion_<split>.png when matplotlib is installed. Prints per-class, most-confused and
top-loss tables, or with --json one JSON object (top1, top5, macro_f1, per_class,
most_confused, top_losses, calibration, min_confidence, target_accuracy, skipped, precision,
agreement with float32, ...)
alone on stdout: what native libraries print goes to stderr (``fastfood.cli.stdout``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from fastfood.cli.options import precision_option
from fastfood.cli.stdout import answers_only
from fastfood.config import FILE_KINDS
from fastfood.evaluate import SPLITS, TARGET_ACCURACY
from fastfood.inference.agreement import DEFAULT_SAMPLE


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Run to evaluate (default: the newest under runs/).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: the one in the run's config.json).")
@click.option("--split", type=click.Choice(SPLITS), default=SPLITS[0], show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--loader", type=click.Choice(FILE_KINDS), default=FILE_KINDS[0], show_default=True)
@click.option("--batch-size", type=int, default=None,
              help="Images per forward pass (default: the run's training batch size).")
@click.option("--min-confidence", type=float, default=None,
              help="Report coverage and accuracy when images whose top (calibrated) "
                   "probability is under this are answered 'unknown'.")
@click.option("--target-accuracy", type=float, default=TARGET_ACCURACY, show_default=True,
              help="Report the lowest --min-confidence whose answered images reach this "
                   "accuracy, and its coverage.")
@precision_option
@click.option("--agreement-sample", type=int, default=DEFAULT_SAMPLE, show_default=True,
              help="At a precision other than fp32, run this many of the images (evenly "
                   "spaced) again at float32 and report the top-1 agreement and the largest "
                   "probability difference (JSON: agreement); 0 skips it.")
def evaluate(run_dir: Path | None, data: Path | None, split: str, as_json: bool, loader: str,
             batch_size: int | None, min_confidence: float | None,
             target_accuracy: float, precision: str, agreement_sample: int) -> None:
    """Evaluate a trained run on every image of a split."""
    from fastfood.data import check_root
    from fastfood.errors import FastfoodError
    from fastfood.evaluate import evaluate as run_evaluation
    from fastfood.inference.runs import resolve_run_dir
    from fastfood.predict import check_min_confidence

    check_min_confidence(min_confidence)
    if agreement_sample < 0:
        raise FastfoodError(f"--agreement-sample must be >= 0, got {agreement_sample}")
    if not 0.0 < target_accuracy <= 1.0:
        raise FastfoodError(f"--target-accuracy must be in (0, 1], got {target_accuracy:g}")
    path = resolve_run_dir(run_dir)  # fail fast, before TensorFlow is imported
    if data is not None:
        check_root(data)
    with answers_only() as out:  # native libraries' chatter goes to stderr
        from fastfood.report.outputs import write_outputs

        ev = run_evaluation(path, data=data, split=split, loader=loader, batch_size=batch_size,
                            min_confidence=min_confidence, target_accuracy=target_accuracy,
                            precision=precision, agreement_sample=agreement_sample,
                            on_precision=lambda p: click.echo(p.line(), err=True))
        written = write_outputs(ev, path)
        png = written.pop("png")
        if not isinstance(png, Path):
            click.echo(f"fastfood: {png}", err=True)
        if as_json:
            click.echo(json.dumps(ev.to_json()), file=out)
            return
        from rich.console import Console

        from fastfood.report.console import (confused_table, losses_table, per_class_table,
                                             summary_lines)

        console = Console(file=out)
        console.print(per_class_table(ev))
        if ev.most_confused():
            console.print(confused_table(ev))
        if ev.n:
            console.print(losses_table(ev))
        for file, reason in ev.skipped:
            console.print(f"skipped {file}: {reason}", style="yellow", markup=False)
        for line in summary_lines(ev):
            console.print(line, markup=False)
        files = [str(p) for p in written.values()] + ([str(png)] if isinstance(png, Path) else [])
        agreement = ev.extra.get("agreement")
        if agreement and agreement.get("sample"):
            console.print(f"{ev.extra['precision']['precision']} vs fp32 on {agreement['sample']} "
                          f"images: top-1 agrees on {agreement['top1_agreement']:.2%}, largest "
                          f"probability difference {agreement['max_prob_diff']:.4f}",
                          markup=False)
        console.print(f"top-1 {ev.top1:.2%}  top-5 {ev.top5:.2%}  over {ev.n} images "
                      f"({len(ev.skipped)} skipped); wrote {', '.join(files)}", markup=False)
