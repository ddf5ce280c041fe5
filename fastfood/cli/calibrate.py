"""`fastfood calibrate`: fit a run's softmax temperature on its val split (calibration.json).

`fastfood train` does this itself at the end of a successful run; this command is for runs
trained before it did, for a run whose weights changed since (a resumed run), or to fit
on other data (--data). Flags are checked before TensorFlow is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from fastfood.cli.stdout import answers_only
from fastfood.config import FILE_KINDS


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Run to calibrate (default: the newest under runs/).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset root whose val split to fit on (default: the run's).")
@click.option("--loader", type=click.Choice(FILE_KINDS), default=FILE_KINDS[0], show_default=True)
@click.option("--batch-size", type=int, default=None,
              help="Images per forward pass (default: the run's training batch size).")
@click.option("--json", "as_json", is_flag=True, help="Print calibration.json's content.")
def calibrate(run_dir: Path | None, data: Path | None, loader: str, batch_size: int | None,
              as_json: bool) -> None:
    """Fit the temperature that makes a run's probabilities honest, on its val split."""
    from fastfood.calibrate import fit_temperature
    from fastfood.data import check_root
    from fastfood.errors import FastfoodError
    from fastfood.inference.runs import resolve_run_dir
    from fastfood.rundir import CALIBRATION

    if batch_size is not None and batch_size < 1:
        raise FastfoodError(f"--batch-size must be >= 1, got {batch_size}")
    path = resolve_run_dir(run_dir)
    if data is not None:
        check_root(data)
    with answers_only() as out:
        cal = fit_temperature(path, data=data, loader=loader, batch_size=batch_size)
        if as_json:
            click.echo(json.dumps(cal.to_json()), file=out)
        else:
            click.echo(f"fastfood: {cal.describe()}; wrote {path / CALIBRATION}", file=out)
