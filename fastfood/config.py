"""Frozen configuration, one dataclass per concern.

Built once by the CLI, passed explicitly, and written to the run directory as JSON so a
run can be resumed, evaluated and exported with exactly the settings it was trained with.
The defaults here are the CLI's defaults (fastfood/cli/train.py reads them), and every
dataclass checks its values when it is made, so a flag, a resumed run's config.json and a
library caller all meet the same rules; an error names the flag that sets the value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastfood.data.food101 import VAL_FROM
from fastfood.data.safety import check_held_out, check_val_fraction
from fastfood.errors import FastfoodError
from fastfood.loaders.spec import CROPS, KINDS
from fastfood.train.precision import PRECISIONS, XLA_MODES


def _require(value: Any, ok: Callable[[Any], bool], flag: str, rule: str) -> None:
    """FastfoodError "FLAG must be RULE, got VALUE" unless ok(value) (a wrong type fails)."""
    try:
        good = bool(ok(value)) and not (isinstance(value, float) and math.isnan(value))
    except TypeError:
        good = False
    if not good:
        raise FastfoodError(f"{flag} must be {rule}, got {value!r}")


def _one_of(value: Any, choices: tuple[str, ...], flag: str) -> None:
    if value not in choices:
        raise FastfoodError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")


def _at_least(value: Any, low: int, flag: str) -> None:
    _require(value, lambda v: isinstance(v, numbers.Integral), flag, "a whole number")
    _require(value, lambda v: v >= low, flag, f">= {low}")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset and which split of it.

    `val_from` says where Food-101's val split comes from: 'train' (val_fraction of each
    class of meta/train.txt, the default) or 'test' (meta/test.txt itself). It has no flag:
    it exists so the config.json of a run saved before the test split, which has no such
    key, reads back as 'test' (RunConfig.from_dict) and resuming or evaluating that run on
    'val' uses the images it was validated on.
    """

    root: str = ""  # empty: the built-in sample, generated into the cache on first use
    val_fraction: float = 0.1  # of each class: class folders, and Food-101's meta/train.txt
    split_seed: int = 0
    test_fraction: float = 0.0  # of each class, class folders only (Food-101 has test.txt)
    val_from: str = "train"  # Food-101: train (carved from train.txt) | test (test.txt)

    def __post_init__(self) -> None:
        check_val_fraction(self.val_fraction, "--val-fraction")
        _at_least(self.split_seed, 0, "--split-seed")
        check_val_fraction(self.test_fraction, "--test-fraction")
        check_held_out(self.val_fraction, self.test_fraction)
        _one_of(self.val_from, VAL_FROM, "data.val_from")


@dataclass(frozen=True)
class LoaderConfig:
    """How images get from files to batches. Values are 0-255 RGB whatever the kind.

    The output size is the model's input size, ModelConfig.image_size.
    """

    kind: str = "auto"  # auto | dali | tfdata | synthetic (loaders.spec.KINDS)
    batch_size: int = 64
    # auto (inception when fine-tuning, seed from scratch) | inception (random-resized) |
    # seed (random square, margin 10)
    train_crop: str = "auto"
    num_threads: int = 0  # 0: the cores split between this process's pipelines, capped

    def __post_init__(self) -> None:
        _one_of(self.kind, KINDS, "--loader")
        _at_least(self.batch_size, 1, "--batch-size")
        _one_of(self.train_crop, ("auto", *CROPS), "--crop")
        _at_least(self.num_threads, 0, "loader.num_threads")


@dataclass(frozen=True)
class ModelConfig:
    """What network, at what width, from which weights."""

    num_classes: int = 0  # 0: from the dataset
    image_size: int = 224
    width: float = 1.0
    dropout: float = 0.5
    weights: str = "imagenet"  # imagenet | none | path to a TF-slim prefix or Keras .h5
    convention: str = ""  # slim | keras: filled in from the weights when the model is built
    norm: str = "auto"  # auto (batch for weights none, else none) | batch | none

    def __post_init__(self) -> None:
        _at_least(self.num_classes, 0, "model.num_classes")
        _at_least(self.image_size, 32, "--image-size")
        _require(self.width, lambda v: 0 < v <= 4, "--width", "in (0, 4]")
        _require(self.dropout, lambda v: 0 <= v < 1, "--dropout", "in [0, 1)")
        _require(self.weights, lambda v: isinstance(v, str) and v, "--weights",
                 "imagenet, none or a path")
        _one_of(self.norm, ("auto", "batch", "none"), "--norm")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation and the bookkeeping around it."""

    epochs: int = 20
    lr: float | None = None  # None: by weights, norm and batch (fastfood.train.recipe)
    end_lr_factor: float = 1e-4  # decay to lr * this over the run, as the seed
    warmup_epochs: float | None = None  # None: 0 when fine-tuning, 2 from scratch
    schedule: str = "linear"  # linear | cosine: the decay after the warm-up
    label_smoothing: float = 0.0
    head_lr_mult: float = 1.0  # fc8 learns at lr * this
    momentum: float = 0.9
    weight_decay: float = 5e-4
    freeze_epochs: int = 0
    precision: str = "auto"  # auto | fp32 | mixed | fp16 | bf16 (train.precision.PRECISIONS)
    xla: str = "auto"  # auto | on | off
    val_every: int = 0  # steps; 0: at epoch ends only
    save_every: int = 500  # steps
    save_every_s: float = 300.0  # and at least this often in wall-clock seconds
    keep_checkpoints: int = 3
    max_steps: int = 0  # 0: epochs * steps_per_epoch
    strict: bool = False  # stop (with a checkpoint) on the first file that fails to decode
    seed: int = 0
    run_dir: str = ""

    def __post_init__(self) -> None:
        _at_least(self.epochs, 1, "--epochs")
        _require(self.lr, lambda v: v is None or v > 0, "--lr", "> 0")
        _require(self.warmup_epochs, lambda v: v is None or v >= 0, "--warmup-epochs", ">= 0")
        _one_of(self.schedule, ("linear", "cosine"), "--schedule")
        _require(self.label_smoothing, lambda v: 0 <= v < 1, "--label-smoothing", "in [0, 1)")
        _require(self.head_lr_mult, lambda v: v > 0, "--head-lr-mult", "> 0")
        _require(self.end_lr_factor, lambda v: 0 <= v <= 1, "train.end_lr_factor", "in [0, 1]")
        _require(self.momentum, lambda v: 0 <= v < 1, "--momentum", "in [0, 1)")
        _require(self.weight_decay, lambda v: v >= 0, "--weight-decay", ">= 0")
        _at_least(self.freeze_epochs, 0, "--freeze-epochs")
        _one_of(self.precision, PRECISIONS, "--precision")
        _one_of(self.xla, XLA_MODES, "--xla")
        _at_least(self.val_every, 0, "--val-every")
        _at_least(self.save_every, 0, "--save-every")
        _require(self.save_every_s, lambda v: v >= 0, "train.save_every_s", ">= 0")
        _at_least(self.keep_checkpoints, 1, "train.keep_checkpoints")
        _at_least(self.max_steps, 0, "--max-steps")
        _at_least(self.seed, 0, "--seed")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run was started with."""

    data: DataConfig = field(default_factory=DataConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """The inverse of to_dict; also reads the config.json of runs written before the
        loader's output size became the model's image_size alone (loader.image_size), of
        runs saved before batch norm existed (no "norm": they are the plain net), and of
        runs saved before the test split (no "val_from": they validated on Food-101's
        test.txt and trained on all of train.txt)."""
        loader = {k: v for k, v in d.get("loader", {}).items() if k != "image_size"}
        model = dict(d.get("model", {}))
        model.setdefault("norm", "none" if "model" in d else ModelConfig.norm)
        data = dict(d.get("data", {}))
        data.setdefault("val_from", "test" if "data" in d else DataConfig.val_from)
        return cls(
            data=DataConfig(**data),
            loader=LoaderConfig(**loader),
            model=ModelConfig(**model),
            train=TrainConfig(**d.get("train", {})),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
