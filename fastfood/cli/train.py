"""`fastfood train`: parse flags, build the RunConfig, call fastfood.train.

Thin on purpose: every option is made from the config's field metadata
(`fastfood.cli.options`), the config dataclasses check the values (one-line errors naming
the flag), the dataset is read before TensorFlow loads (a bad --data fails in a second),
and with --resume the run's own config.json is the base that only the flags given
explicitly override. After a successful run (exit code 0) the chief fits the softmax
temperature on the val split (`fastfood.calibrate`, calibration.json) unless
--no-calibrate; the other workers of a cluster leave that to it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from fastfood.cli.options import build_config, config_options
from fastfood.errors import FastfoodError


@click.command()
@config_options
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir (default: the latest under runs/).")
@click.option("--calibrate/--no-calibrate", "calibrate", default=True, show_default=True,
              help="At the end, fit the softmax temperature on the val split "
                   "(calibration.json; predict, evaluate and serve use it).")
@click.pass_context
def train(ctx: click.Context, resume: bool, calibrate: bool, **params: Any) -> None:
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
    import tensorflow as tf

    from fastfood.train import train_and_evaluate

    if tf.config.list_physical_devices("GPU"):  # how TF's kernels run there (PTX JIT?)
        from fastfood.doctor.notice import gpu_notice_here

        click.echo(f"fastfood: {gpu_notice_here()}", err=True)

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
    if calibrate and is_chief() and len(spec.val):
        from fastfood.calibrate import fit_temperature

        try:
            cal = fit_temperature(summary["run_dir"])
        except (FastfoodError, OSError) as err:  # the run itself is fine: say so, exit 0
            click.echo(f"fastfood: not calibrated ({err}); probabilities stay at T = 1, "
                       "`fastfood calibrate` retries", err=True)
            return
        click.echo(f"fastfood: calibrated: {cal.describe()}", err=True)


def is_chief() -> bool:
    """Whether this process is the one of a cluster that writes the run's files: no
    TF_CONFIG, its chief, or worker 0 of a cluster without a chief (as
    fastfood.train.distribute.worker_id decides from the strategy, read here from the
    environment since the strategy is gone when training returns)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        tf_config = json.loads(raw)
        task = tf_config.get("task") or {}
        kind, index = task.get("type"), int(task.get("index") or 0)
        has_chief = "chief" in (tf_config.get("cluster") or {})
    except (ValueError, TypeError, AttributeError):
        return True  # training refused a bad TF_CONFIG already
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief) or not kind
