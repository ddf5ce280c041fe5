"""Frozen configuration, one dataclass per concern.

Built once by the CLI, passed explicitly, and written to the run directory as JSON so a
run can be resumed, evaluated and exported with exactly the settings it was trained with.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    """Which dataset and which split of it."""

    root: str = ""  # empty: the built-in sample, generated into the cache on first use
    val_fraction: float = 0.1
    split_seed: int = 0


@dataclass(frozen=True)
class LoaderConfig:
    """How images get from files to batches. Values are 0-255 RGB whatever the kind."""

    kind: str = "auto"  # auto | dali | tfdata | synthetic
    batch_size: int = 64
    image_size: int = 224
    # auto (inception when fine-tuning, seed from scratch) | inception (random-resized) |
    # seed (random square, margin 10)
    train_crop: str = "auto"
    num_threads: int = 0  # 0: all cores


@dataclass(frozen=True)
class ModelConfig:
    """What network, at what width, from which weights."""

    num_classes: int = 0
    image_size: int = 224
    width: float = 1.0
    dropout: float = 0.5
    weights: str = "imagenet"  # imagenet | none | path to a TF-slim prefix or Keras .h5
    convention: str = ""  # slim | keras: filled in from the weights when the model is built
    norm: str = "auto"  # auto (batch for weights none, else none) | batch | none


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation and the bookkeeping around it."""

    epochs: int = 20
    lr: float | None = None  # None: by weights, norm and batch (fastfood.train.schedule)
    end_lr_factor: float = 1e-4  # decay to lr * this over the run, as the seed
    warmup_epochs: float | None = None  # None: 0 when fine-tuning, 2 from scratch
    schedule: str = "linear"  # linear | cosine: the decay after the warm-up
    label_smoothing: float = 0.0
    head_lr_mult: float = 1.0  # fc8 learns at lr * this
    momentum: float = 0.9
    weight_decay: float = 5e-4
    freeze_epochs: int = 0
    precision: str = "auto"  # auto | fp32 | mixed
    xla: str = "auto"  # auto | on | off
    val_every: int = 0  # steps; 0: at epoch ends only
    save_every: int = 500  # steps
    save_every_s: float = 300.0  # and at least this often in wall-clock seconds
    keep_checkpoints: int = 3
    max_steps: int = 0  # 0: epochs * steps_per_epoch
    seed: int = 0
    run_dir: str = ""


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
        model = dict(d.get("model", {}))
        # Runs saved before batch norm existed have no "norm": they are the plain net.
        model.setdefault("norm", "none" if "model" in d else ModelConfig.norm)
        return cls(
            data=DataConfig(**d.get("data", {})),
            loader=LoaderConfig(**d.get("loader", {})),
            model=ModelConfig(**model),
            train=TrainConfig(**d.get("train", {})),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
