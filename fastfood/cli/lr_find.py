"""`fastfood lr-find`: sweep the learning rate on the run's data and model, print the loss
against the rate, write it as CSV (and a PNG where matplotlib is installed), and suggest a
rate (`fastfood.train.lr_find` states the rule). Takes `fastfood train`'s options, so the
sweep trains what that command would; it leaves no run directory behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fastfood.cli.options import build_config, config_options


@click.command("lr-find")
@config_options
@click.option("--start-lr", type=float, default=1e-5, show_default=True,
              help="The sweep's first rate.")
@click.option("--end-lr", type=float, default=1.0, show_default=True,
              help="The sweep's last rate (it stops earlier once the loss diverges).")
@click.option("--steps", type=click.IntRange(min=5), default=100, show_default=True,
              help="Steps in the sweep, one rate each.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="The CSV of the sweep; the PNG goes beside it. Default: lr_find.csv here, "
                   "or in --run-dir when one is given (the only case a folder is made).")
@click.pass_context
def lr_find(ctx: click.Context, start_lr: float, end_lr: float, steps: int, out: str | None,
            **params: Any) -> None:
    """Suggest a learning rate: a short exponential LR sweep with the training setup."""
    from fastfood import data
    from fastfood.errors import FastfoodError

    explicit = {name for name in params
                if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    config = build_config(params, explicit)
    spec = data.load_config(config.data)
    if out is None and params.get("run_dir"):
        Path(params["run_dir"]).mkdir(parents=True, exist_ok=True)
        out = str(Path(params["run_dir"]) / "lr_find.csv")
    out_path = Path(out or "lr_find.csv")
    if not out_path.parent.is_dir():
        raise FastfoodError(f"--out {out}: folder {out_path.parent} does not exist")

    from fastfood.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fastfood.train import lr_find as finder

    result = finder.sweep(config, start=start_lr, end=end_lr, steps=steps, spec=spec,
                          say=lambda line: click.echo(f"fastfood: {line}", err=True))
    every = max(1, len(result.lrs) // 20)
    click.echo(f"{'lr':>10}  {'loss':>8}  {'smoothed':>8}")
    for i, lr, loss, sm in result.rows():
        if i % every == 0 or i == len(result.lrs) - 1:
            click.echo(f"{lr:10.3g}  {loss:8.4f}  {sm:8.4f}")
    finder.write_csv(result, out_path)
    png = out_path.with_suffix(".png")
    drawn = finder.write_png(result, png)
    if result.diverged_at is not None:
        click.echo(f"fastfood: the loss diverged at lr {result.diverged_at:.3g}", err=True)
    click.echo(f"fastfood: wrote {out_path}" + (f" and {png}" if drawn else
                                               " (no PNG: matplotlib is not installed)"),
               err=True)
    click.echo(f"suggested --lr {result.suggested:.3g} (steepest descent of the smoothed "
               f"loss; the lowest loss's rate / 10 is {result.min_over_10:.3g})")
