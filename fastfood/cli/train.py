"""`fastfood train`: parse flags, build the RunConfig, call fastfood.train.

Thin on purpose: defaults and choices come from fastfood.config and the spec tuples, the
config dataclasses check the values (one-line errors naming the flag), the dataset is read
before TensorFlow loads (a bad --data fails in a second), and with --resume the run's own
config.json is the base that only the flags given explicitly override.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.loaders.spec import CROPS, KINDS
from fastfood.train.precision import PRECISIONS

#: The choices of --norm and --schedule, kept here so `fastfood train --help` needs no
#: TensorFlow (fastfood.model.NORMS and fastfood.train.schedule.SCHEDULES import it; the
#: tests check they are equal).
NORMS = ("auto", "batch", "none")
SCHEDULES = ("linear", "cosine")

# flag (click parameter name) -> the config field it sets
FIELDS: dict[str, tuple[str, str]] = {
    "data": ("data", "root"),
    "val_fraction": ("data", "val_fraction"),
    "split_seed": ("data", "split_seed"),
    "test_fraction": ("data", "test_fraction"),
    "loader": ("loader", "kind"),
    "weights": ("model", "weights"),
    "epochs": ("train", "epochs"),
    "batch_size": ("loader", "batch_size"),
    "image_size": ("model", "image_size"),
    "norm": ("model", "norm"),
    "width": ("model", "width"),
    "dropout": ("model", "dropout"),
    "lr": ("train", "lr"),
    "warmup_epochs": ("train", "warmup_epochs"),
    "schedule": ("train", "schedule"),
    "label_smoothing": ("train", "label_smoothing"),
    "head_lr_mult": ("train", "head_lr_mult"),
    "momentum": ("train", "momentum"),
    "weight_decay": ("train", "weight_decay"),
    "freeze_epochs": ("train", "freeze_epochs"),
    "crop": ("loader", "train_crop"),
    "precision": ("train", "precision"),
    "xla": ("train", "xla"),
    "val_every": ("train", "val_every"),
    "save_every": ("train", "save_every"),
    "run_dir": ("train", "run_dir"),
    "max_steps": ("train", "max_steps"),
    "seed": ("train", "seed"),
    "strict": ("train", "strict"),
}


def default(name: str) -> Any:
    """The default of flag `name`: the value RunConfig() holds for the field it sets."""
    section, field = FIELDS[name]
    return getattr(getattr(RunConfig(), section), field)


def build_config(params: dict[str, Any], explicit: set[str], base: RunConfig | None = None
                 ) -> RunConfig:
    """The RunConfig: `base` (a resumed run's config) with the explicit flags over it,
    or the defaults with every flag over them. Values are checked as the config is made
    (a FastfoodError naming the flag)."""
    config = base or RunConfig()
    sections = {name: dataclasses.asdict(getattr(config, name)) for name in
                ("data", "loader", "model", "train")}
    for name, (section, field) in FIELDS.items():
        if base is not None and name not in explicit:
            continue
        value = params[name]
        if name == "xla":
            value = "auto" if value is None else ("on" if value else "off")
        if name in ("data", "run_dir"):
            value = sections[section][field] if value is None else str(value)
        sections[section][field] = value
    return RunConfig.from_dict(sections)


@click.command()
@click.option("--data", type=str, default=None,
              help="Dataset folder (Food-101 layout or class folders), or food101 for "
                   "the one `fastfood data food101` downloaded. Default: the built-in sample.")
@click.option("--val-fraction", type=float, default=default("val_fraction"), show_default=True,
              help="The share of each class held out for validation: of Food-101's "
                   "meta/train.txt, and of class folders without val/.")
@click.option("--test-fraction", type=float, default=default("test_fraction"),
              show_default=True,
              help="Class folders without train/: the share of each class held out for "
                   "`fastfood evaluate --split test` (Food-101 has meta/test.txt).")
@click.option("--split-seed", type=int, default=default("split_seed"), show_default=True,
              help="Seed of those held-out splits.")
@click.option("--loader", type=click.Choice(KINDS), default=default("loader"),
              show_default=True, help="Input pipeline.")
@click.option("--weights", type=str, default=default("weights"), show_default=True,
              help="imagenet, none (random init), or a TF-slim checkpoint prefix / Keras .h5.")
@click.option("--norm", type=click.Choice(NORMS), default=default("norm"),
              show_default=True,
              help="Batch norm after each convolution (vgg19_bn): auto = batch with --weights "
                   "none, none with pretrained weights.")
@click.option("--epochs", type=int, default=default("epochs"), show_default=True)
@click.option("--batch-size", type=int, default=default("batch_size"), show_default=True,
              help="Global batch, split over the replicas.")
@click.option("--image-size", type=int, default=default("image_size"), show_default=True)
@click.option("--width", type=float, default=default("width"), show_default=True,
              help="Channel multiplier (random init only; 0.125 for quick runs).")
@click.option("--dropout", type=float, default=default("dropout"), show_default=True,
              help="Dropout rate before fc7 and fc8.")
@click.option("--lr", type=float, default=default("lr"),
              help="Peak learning rate, decayed to "
                   f"lr*{RunConfig().train.end_lr_factor:g} over the run. Default: 1e-3 "
                   "fine-tuning, 0.01 from scratch (0.006 with --norm none), each at batch 64 "
                   "and scaled linearly with --batch-size.")
@click.option("--warmup-epochs", type=float, default=default("warmup_epochs"),
              help="Linear warm-up to --lr over this many epochs. Default: 0 fine-tuning, "
                   "2 from scratch.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default=default("schedule"),
              show_default=True, help="Decay after the warm-up.")
@click.option("--label-smoothing", type=float, default=default("label_smoothing"),
              show_default=True, help="Share of the target spread evenly over all classes.")
@click.option("--head-lr-mult", type=float, default=default("head_lr_mult"),
              show_default=True,
              help="fc8 learns at lr times this (e.g. 10 for a fresh head on pretrained weights).")
@click.option("--momentum", type=float, default=default("momentum"), show_default=True)
@click.option("--weight-decay", type=float, default=default("weight_decay"), show_default=True)
@click.option("--freeze-epochs", type=int, default=default("freeze_epochs"), show_default=True,
              help="Train only fc8 for this many epochs, then end to end.")
@click.option("--crop", type=click.Choice(("auto", *CROPS)), default=default("crop"),
              show_default=True,
              help="Training crop: random-resized (inception), or a random square 10 px in "
                   "from the shorter side (seed); auto: inception fine-tuning, seed from scratch.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=default("precision"),
              show_default=True,
              help="auto: fp16 on tensor-core GPUs, bf16 on bf16 CPUs, else fp32.")
@click.option("--xla/--no-xla", default=None, help="XLA compilation [default: on for GPUs].")
@click.option("--val-every", type=int, default=default("val_every"), show_default=True,
              help="Validate every N steps too (always at epoch ends).")
@click.option("--save-every", type=int, default=default("save_every"), show_default=True,
              help=f"Checkpoint every N steps (also every {RunConfig().train.save_every_s:g} s, "
                   "at epoch ends and on Ctrl-C).")
@click.option("--run-dir", type=str, default=None,
              help="Where the run goes. Default: runs/<timestamp>.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir (default: the latest under runs/).")
@click.option("--max-steps", type=int, default=default("max_steps"), show_default=True,
              help="Stop after N steps (0: epochs x steps per epoch).")
@click.option("--seed", type=int, default=default("seed"), show_default=True)
@click.option("--strict", is_flag=True, default=default("strict"),
              help="Stop (with a checkpoint) on the first image that fails to decode, "
                   "instead of naming it and going on.")
@click.pass_context
def train(ctx: click.Context, resume: bool, **params: Any) -> None:
    """Fine-tune VGG19 on a dataset; checkpoints and logs go to the run directory.

    Ctrl-C (or SIGTERM) saves a checkpoint and stops; run the same command again, or
    add --resume, to continue exactly where it stopped.
    """
    from fastfood import data
    from fastfood.train import rundir

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

    root = config.data.root
    if not root:
        from fastfood.data.sample import default_sample

        root = str(default_sample())
    spec = data.from_config(config.data, root)

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
