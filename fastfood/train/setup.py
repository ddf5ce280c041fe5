"""What a training run is made of, built the same way for the loop and the benchmarks.

`plan` turns the data size, global batch and strategy layout into steps per epoch and
the run's length; `build` makes the model, the optimizer on its schedule and the
compiled steps under the strategy. `fastfood.train.loop` and `fastfood.benchmark.train`
both call these, so what the benchmark times is what training runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.train import distribute


@dataclass(frozen=True)
class Plan:
    """How long the run is, in steps and epochs, and how the batch is split."""

    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    per_replica_batch: int


def plan(num_files: int, config: RunConfig, layout: distribute.Layout, *,
         per_replica_pipelines: bool = False) -> Plan:
    """Steps per epoch (every pipeline yields the same number), total steps, epochs.

    `per_replica_pipelines`: a multi-worker cluster's workers build one pipeline per
    local replica themselves (DALI on GPUs), so the files are split per replica.
    """
    from fastfood import loaders

    batch = config.loader.batch_size
    per_replica = layout.per_replica_batch(batch)
    if per_replica_pipelines:
        spe = loaders.steps_per_epoch(num_files, per_replica, (0, layout.num_replicas))
    else:
        spe = loaders.steps_per_epoch(num_files, per_replica, (0, layout.num_pipelines)) \
            // layout.replicas_per_pipeline
    if spe == 0:
        raise FastfoodError(
            f"--batch-size {batch} is larger than the {num_files} usable training images "
            f"(per input pipeline: {layout.num_pipelines})")
    total = config.train.max_steps or config.train.epochs * spe
    return Plan(spe, total, math.ceil(total / spe), per_replica)


@dataclass
class Parts:
    """The model, its optimizer and the compiled steps of one run."""

    model: Any
    optimizer: Any
    train_step: Any
    head_step: Any  # fc8 only, while the backbone is frozen; None when it never is
    eval_step: Any


def build(config: RunConfig, strategy: Any, plan: Plan, *, loss_scale: bool,
          jit_compile: bool, load_weights: bool = True) -> Parts:
    """Model, optimizer (on the recipe's schedule) and steps under the strategy's scope.

    `config` is resolved (`fastfood.train.recipe.resolve`: no 'auto' or None left).
    `load_weights=False` for a run about to be restored from its checkpoint (no need to
    read the pretrained file). Set the precision policy before calling.
    """
    from fastfood import model as models
    from fastfood.train.schedule import lr_schedule
    from fastfood.train.step import make_eval_step, make_optimizer, make_train_step

    tcfg = config.train
    with strategy.scope():
        model = models.build(config.model, load_weights=load_weights)
        schedule = lr_schedule(
            tcfg.lr, plan.total_steps,
            warmup_steps=round(tcfg.warmup_epochs * plan.steps_per_epoch),
            end_factor=tcfg.end_lr_factor, shape=tcfg.schedule)
        optimizer = make_optimizer(schedule, tcfg.momentum, loss_scale=loss_scale,
                                   head_variables=models.head_variables(model),
                                   head_lr_mult=tcfg.head_lr_mult)
        optimizer.build(model.trainable_variables)

    def train_step(variables: Any = None) -> Any:
        return make_train_step(model, optimizer, strategy,
                               global_batch=config.loader.batch_size,
                               weight_decay=tcfg.weight_decay, jit_compile=jit_compile,
                               variables=variables, label_smoothing=tcfg.label_smoothing)

    return Parts(
        model, optimizer, train_step(),
        train_step(models.head_variables(model)) if tcfg.freeze_epochs else None,
        make_eval_step(model, strategy, num_classes=config.model.num_classes),
    )
