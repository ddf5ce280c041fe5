"""What a training run is made of, built the same way for the loop and the benchmarks.

`plan` turns the data size, the global batch and the strategy into the run's shape: the
batch each replica computes on, how the input pipelines are placed and sharded, steps per
epoch and the run's length. It is the one place the per-replica batch is computed; every
loader request made from it asks for one pipeline's batches. `build` makes the model, the
optimizer on its schedule and the compiled steps under the strategy.
`fastfood.train.loop` and `fastfood.benchmark.train` both call these, so what the
benchmark times is what training runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.train import distribute

#: How the input pipelines feed the replicas (see fastfood.train.distribute):
#: single (one device), mirrored (one pipeline per replica, MirroredStrategy), worker (one
#: pipeline per worker, its batches dealt to the worker's replicas) and replicas (one
#: pipeline per local replica, built by hand: MultiWorkerMirroredStrategy decoding on GPUs).
PLACEMENTS = ("single", "mirrored", "worker", "replicas")


@dataclass(frozen=True)
class Plan:
    """The run's shape: batches, pipelines, and how long it is."""

    global_batch: int
    per_replica_batch: int  # the batch every pipeline yields and every replica computes on
    placement: str  # one of PLACEMENTS
    on_device: bool  # the pipelines decode on the replicas' GPUs (DALI with a GPU)
    shards: int  # input pipelines in the whole cluster: the shard count of the files
    pipelines: int  # long-lived input pipelines in this process (they share its cores)
    batches_per_step: int  # batches one pipeline yields per step (>1: placement 'worker')
    steps_per_epoch: int
    total_steps: int
    num_epochs: int


def plan(num_files: int, config: RunConfig, strategy: Any, *, on_device: bool = False,
         placement: str | None = None, validating: bool = False) -> Plan:
    """The plan of a run over `num_files` usable training images under `strategy`.

    `placement` forces one (the tests run the per-replica path on CPUs); by default it
    follows the strategy, and a multi-worker cluster decoding on GPUs builds one pipeline
    per local replica (MultiWorkerMirroredStrategy refuses per-replica input otherwise).
    `validating`: the run keeps evaluation pipelines beside the training ones (DALI's both
    live for the run), so the cores are split between both sets.
    """
    from fastfood import loaders

    lay = distribute.layout(strategy)
    batch = config.loader.batch_size
    if batch % lay.num_replicas:
        raise FastfoodError(f"--batch-size {batch} must be a multiple of the "
                            f"{lay.num_replicas} replicas training in sync")
    per_replica = batch // lay.num_replicas
    if placement is None:
        placement = {"default": "single", "mirrored": "mirrored"}.get(
            lay.kind, "replicas" if on_device else "worker")
    if placement == "worker":
        shards, pipelines, k = lay.workers, 1, lay.num_replicas // lay.workers
    else:
        shards, pipelines, k = lay.num_replicas, lay.local_replicas, 1
    pipelines *= 2 if validating else 1
    spe = loaders.full_batches(num_files, per_replica, shards) // k
    total = config.train.max_steps or config.train.epochs * spe
    return Plan(batch, per_replica, placement, on_device, shards, pipelines, k, spe, total,
                math.ceil(total / spe))


@dataclass
class Parts:
    """The model, its optimizer and the compiled steps of one run."""

    model: Any
    optimizer: Any
    train_step: Any  # (images, labels) of one global batch -> logs
    head_step: Any  # fc8 only, while the backbone is frozen; None when it never is
    eval_step: Any
    schedule: Any = None  # the optimizer's LR schedule (a --time-limit refits its length)
    ema: Any = None  # fastfood.train.ema.Ema with --ema, else None


def build(config: RunConfig, strategy: Any, plan: Plan, *, loss_scale: bool,
          jit_compile: bool, load_weights: bool = True,
          class_weights: Any = None, schedule: Any = None) -> Parts:
    """Model, optimizer (on the recipe's schedule) and steps under the strategy's scope.

    `config` is resolved (`fastfood.train.recipe.resolve`: no 'auto' or None left).
    `load_weights=False` for a run about to be restored from its checkpoint (no need to
    read the pretrained file). `class_weights`: one loss weight per class
    (`fastfood.train.class_weights.for_run`), None for none. `schedule`: a learning-rate
    schedule instead of the recipe's (the LR finder's sweep). Set the precision policy
    before calling.
    """
    from fastfood import model as models
    from fastfood.train.ema import Ema
    from fastfood.train.schedule import lr_schedule
    from fastfood.train.step import make_eval_step, make_optimizer, make_train_step

    tcfg = config.train
    with strategy.scope():
        model = models.build(config.model, load_weights=load_weights)
        schedule = schedule or lr_schedule(
            tcfg.lr, plan.total_steps,
            warmup_steps=round(tcfg.warmup_epochs * plan.steps_per_epoch),
            end_factor=tcfg.end_lr_factor, shape=tcfg.schedule)
        optimizer = make_optimizer(schedule, tcfg.momentum, loss_scale=loss_scale,
                                   head_variables=models.head_variables(model),
                                   head_lr_mult=tcfg.head_lr_mult)
        optimizer.build(model.trainable_variables)
        ema = Ema(model, tcfg.ema, strategy) if tcfg.ema > 0 else None

    def train_step(variables: Any = None) -> Any:
        return make_train_step(model, optimizer, strategy, global_batch=plan.global_batch,
                               weight_decay=tcfg.weight_decay, jit_compile=jit_compile,
                               variables=variables, label_smoothing=tcfg.label_smoothing,
                               class_weights=class_weights, ema=ema)

    return Parts(
        model, optimizer, train_step(),
        train_step(models.head_variables(model)) if tcfg.freeze_epochs else None,
        make_eval_step(model, strategy, num_classes=config.model.num_classes),
        schedule, ema,
    )
