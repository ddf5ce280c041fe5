"""`fastfood train`: parse flags, build the RunConfig, call fastfood.train.

Thin on purpose: every option is made from the config's field metadata
(`fastfood.cli.options`), the config dataclasses check the values (one-line errors naming
the flag), the dataset is read before TensorFlow loads (a bad --data fails in a second),
and with --resume the run's own config.json is the base that only the flags given
explicitly override.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from fastfood.cli.options import build_config, config_options
from fastfood.errors import FastfoodError


@click.command()
@config_options
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir (default: the latest under runs/).")
@click.pass_context
def train(ctx: click.Context, resume: bool, **params: Any) -> None:
    """Fine-tune VGG19 on a dataset; checkpoints and logs go to the run directory.

    Ctrl-C (or SIGTERM) saves a checkpoint and stops; run the same command again, or
    add --resume, to continue exactly where it stopped.
    """
    from fastfood import data
    from fastfood import rundir

    explicit = {name for name in params
                if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    base = None
    if resume:
        run_dir = params["run_dir"] or rundir.latest_run_dir()
        if run_dir is None:
            raise FastfoodError("--resume: no run under runs/ to resume; pass --run-dir")
        base = rundir.read_config(run_dir)
        if base is None:
            raise FastfoodError(f"--resume: {run_dir} is not a run directory (no config.json)")
        params["run_dir"] = str(run_dir)
        explicit.add("run_dir")
    config = build_config(params, explicit, base)

    spec = data.load_config(config.data)

    from fastfood.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # only now: every mistake above answered without it
    from fastfood.train import train_and_evaluate

    summary = train_and_evaluate(config, resume=resume, spec=spec)
    val = summary.get("val") or {}
    if summary["exit_code"]:
        sys.exit(summary["exit_code"])
    best = summary.get("best_top1")
    click.echo(
        f"fastfood: done: {summary['step']} steps"
        + (f", val top1 {val['top1']:.3f} top5 {val['top5']:.3f}" if val else "")
        + (f", best top1 {best:.3f}" if best is not None and best >= 0 else "")
        + f"; run dir {summary['run_dir']}",
        err=True,
    )
