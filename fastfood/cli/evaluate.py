"""`fastfood evaluate`: top-1/top-5 and per-class accuracy of a run on a split.

Writes eval_<split>.json and confusion_<split>.png into the run directory; prints a
per-class table, or with --json one JSON object (top1, top5, n, per_class, skipped, ...),
alone on stdout: what native libraries print goes to stderr (``fastfood.cli.stdout``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from fastfood.cli.stdout import answers_only
from fastfood.evaluate import SPLITS
from fastfood.config import FILE_KINDS


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
def evaluate(run_dir: Path | None, data: Path | None, split: str, as_json: bool, loader: str,
             batch_size: int | None) -> None:
    """Evaluate a trained run on every image of a split."""
    from fastfood.data import check_root
    from fastfood.evaluate import evaluate as run_evaluation
    from fastfood.evaluate import per_class_table, write_outputs
    from fastfood.inference.runs import resolve_run_dir

    path = resolve_run_dir(run_dir)  # fail fast, before TensorFlow is imported
    if data is not None:
        check_root(data)
    with answers_only() as out:  # native libraries' chatter goes to stderr
        ev = run_evaluation(path, data=data, split=split, loader=loader, batch_size=batch_size)
        json_path, png_path = write_outputs(ev, path)
        if as_json:
            click.echo(json.dumps(ev.to_json()), file=out)
            return
        from rich.console import Console

        console = Console(file=out)
        console.print(per_class_table(ev))
        for file, reason in ev.skipped:
            console.print(f"skipped {file}: {reason}", style="yellow", markup=False)
        console.print(f"top-1 {ev.top1:.2%}  top-5 {ev.top5:.2%}  over {ev.n} images "
                      f"({len(ev.skipped)} skipped); wrote {json_path} and {png_path}",
                      markup=False)
