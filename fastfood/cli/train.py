"""`fastfood train`: parse flags, build the RunConfig, call fastfood.train.

Thin on purpose: the dataset is read first (a bad --data fails in a second, before
TensorFlow loads), flags are checked with one-line errors naming the flag, and with
--resume the run's own config.json is the base that only the flags given explicitly
override.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click

from fastfood.config import LoaderConfig, ModelConfig, TrainConfig
from fastfood.errors import FastfoodError
from fastfood.loaders.spec import CROPS

#: The choices of --norm and --schedule (fastfood.model.NORMS and
#: fastfood.train.schedule.SCHEDULES, which import TensorFlow; checked equal in the tests).
NORMS = ("auto", "batch", "none")
SCHEDULES = ("linear", "cosine")

# flag (click parameter name) -> the config fields it sets
FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "data": (("data", "root"),),
    "loader": (("loader", "kind"),),
    "weights": (("model", "weights"),),
    "norm": (("model", "norm"),),
    "epochs": (("train", "epochs"),),
    "batch_size": (("loader", "batch_size"),),
    "image_size": (("loader", "image_size"), ("model", "image_size")),
    "width": (("model", "width"),),
    "lr": (("train", "lr"),),
    "warmup_epochs": (("train", "warmup_epochs"),),
    "schedule": (("train", "schedule"),),
    "label_smoothing": (("train", "label_smoothing"),),
    "head_lr_mult": (("train", "head_lr_mult"),),
    "momentum": (("train", "momentum"),),
    "weight_decay": (("train", "weight_decay"),),
    "freeze_epochs": (("train", "freeze_epochs"),),
    "crop": (("loader", "train_crop"),),
    "precision": (("train", "precision"),),
    "xla": (("train", "xla"),),
    "val_every": (("train", "val_every"),),
    "save_every": (("train", "save_every"),),
    "run_dir": (("train", "run_dir"),),
    "max_steps": (("train", "max_steps"),),
    "seed": (("train", "seed"),),
}


def check_flags(p: dict[str, Any]) -> None:
    """One-line errors for values no run can use."""
    rules = [
        ("batch_size", "--batch-size", p["batch_size"] >= 1, "at least 1"),
        ("image_size", "--image-size", p["image_size"] >= 32, "at least 32"),
        ("width", "--width", 0 < p["width"] <= 4, "in (0, 4]"),
        ("epochs", "--epochs", p["epochs"] >= 1, "at least 1"),
        ("lr", "--lr", p["lr"] is None or p["lr"] > 0, "positive"),
        ("warmup_epochs", "--warmup-epochs",
         p["warmup_epochs"] is None or p["warmup_epochs"] >= 0, "0 or more"),
        ("label_smoothing", "--label-smoothing", 0 <= p["label_smoothing"] < 1, "in [0, 1)"),
        ("head_lr_mult", "--head-lr-mult", p["head_lr_mult"] > 0, "positive"),
        ("momentum", "--momentum", 0 <= p["momentum"] < 1, "in [0, 1)"),
        ("weight_decay", "--weight-decay", p["weight_decay"] >= 0, "0 or more"),
        ("freeze_epochs", "--freeze-epochs", p["freeze_epochs"] >= 0, "0 or more"),
        ("val_every", "--val-every", p["val_every"] >= 0, "0 or more"),
        ("save_every", "--save-every", p["save_every"] >= 0, "0 or more"),
        ("max_steps", "--max-steps", p["max_steps"] >= 0, "0 or more"),
    ]
    for key, flag, ok, what in rules:
        if not ok:
            raise FastfoodError(f"{flag} must be {what}, got {p[key]}")


def build_config(params: dict[str, Any], explicit: set[str], base: Any = None) -> Any:
    """The RunConfig: `base` (a resumed run's config) with the explicit flags over it,
    or the defaults with every flag over them."""
    from fastfood.config import RunConfig

    config = base or RunConfig()
    sections = {name: dataclasses.asdict(getattr(config, name)) for name in
                ("data", "loader", "model", "train")}
    for name, targets in FIELDS.items():
        if base is not None and name not in explicit:
            continue
        value = params[name]
        if name == "xla":
            value = "auto" if value is None else ("on" if value else "off")
        if name in ("data", "run_dir") and value is None:
            value = "" if base is None else sections[targets[0][0]][targets[0][1]]
        for section, field in targets:
            sections[section][field] = str(value) if name in ("data", "run_dir") else value
    return RunConfig.from_dict(sections)


@click.command()
@click.option("--data", type=str, default=None,
              help="Dataset folder (Food-101 layout or class folders). Default: the built-in sample.")
@click.option("--loader", type=click.Choice(["auto", "dali", "tfdata", "synthetic"]),
              default="auto", show_default=True, help="Input pipeline.")
@click.option("--weights", type=str, default="imagenet", show_default=True,
              help="imagenet, none (random init), or a TF-slim checkpoint prefix / Keras .h5.")
@click.option("--norm", type=click.Choice(NORMS), default=ModelConfig.norm, show_default=True,
              help="Batch norm after each convolution (vgg19_bn): auto = batch with --weights "
                   "none, none with pretrained weights.")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True,
              help="Global batch, split over the replicas.")
@click.option("--image-size", type=int, default=224, show_default=True)
@click.option("--width", type=float, default=1.0, show_default=True,
              help="Channel multiplier (random init only; 0.125 for quick runs).")
@click.option("--lr", type=float, default=TrainConfig.lr,
              help="Peak learning rate, decayed to lr*1e-4 over the run. Default: 1e-3 "
                   "fine-tuning, 0.02 from scratch (0.006 with --norm none), each at batch 64 "
                   "and scaled linearly with --batch-size.")
@click.option("--warmup-epochs", type=float, default=TrainConfig.warmup_epochs,
              help="Linear warm-up to --lr over this many epochs. Default: 0 fine-tuning, "
                   "2 from scratch.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default=TrainConfig.schedule,
              show_default=True, help="Decay after the warm-up.")
@click.option("--label-smoothing", type=float, default=TrainConfig.label_smoothing,
              show_default=True, help="Share of the target spread evenly over all classes.")
@click.option("--head-lr-mult", type=float, default=TrainConfig.head_lr_mult,
              show_default=True,
              help="fc8 learns at lr times this (e.g. 10 for a fresh head on pretrained weights).")
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=5e-4, show_default=True)
@click.option("--freeze-epochs", type=int, default=0, show_default=True,
              help="Train only fc8 for this many epochs, then end to end.")
@click.option("--crop", type=click.Choice(("auto", *CROPS)), default=LoaderConfig.train_crop,
              show_default=True,
              help="Training crop: random-resized (inception), or the seed's random square "
                   "(almost the whole image); auto: inception fine-tuning, seed from scratch.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "mixed", "fp16", "bf16"]),
              default="auto", show_default=True,
              help="auto: fp16 on tensor-core GPUs, bf16 on bf16 CPUs, else fp32.")
@click.option("--xla/--no-xla", default=None, help="XLA compilation [default: on for GPUs].")
@click.option("--val-every", type=int, default=0, show_default=True,
              help="Validate every N steps too (always at epoch ends).")
@click.option("--save-every", type=int, default=500, show_default=True,
              help="Checkpoint every N steps (also every 5 min, at epoch ends and on Ctrl-C).")
@click.option("--run-dir", type=str, default=None,
              help="Where the run goes. Default: runs/<timestamp>.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir (default: the latest under runs/).")
@click.option("--max-steps", type=int, default=0, show_default=True,
              help="Stop after N steps (0: epochs x steps per epoch).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def train(ctx: click.Context, resume: bool, **params: Any) -> None:
    """Fine-tune VGG19 on a dataset; checkpoints and logs go to the run directory.

    Ctrl-C (or SIGTERM) saves a checkpoint and stops; run the same command again, or
    add --resume, to continue exactly where it stopped.
    """
    from fastfood import data
    from fastfood.train import rundir

    check_flags(params)
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
    spec = data.load(root, config.data.val_fraction, config.data.split_seed)

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
