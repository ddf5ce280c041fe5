"""`train_and_evaluate(config)`: the training run, and the only place with side effects.

The loop calls a compiled step per batch and otherwise only counts: logs are fetched from
the device every `log_every` steps (the only host syncs), validation runs every
--val-every steps and at each epoch end, checkpoints are written every --save-every
steps, every TrainConfig.save_every_s seconds, at each epoch end and when SIGINT/SIGTERM
asks the run to stop. In a cluster, the stop and the timed save are agreed by every
worker first (`lockstep`), and every worker takes part in every save.

Exact resume: the checkpoint records the global step, the epoch and the batches done in
it; the loaders read an order that is a function of (seed, epoch) alone, so the resumed
run reads exactly the batches that would have come next, and the optimizer's own step
counter (restored with it) keeps the LR schedule on the same curve.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import IO, Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood import rundir
from fastfood.train import distribute, precision, recipe, setup
from fastfood.train.resume import resolve as resolve_run
from fastfood.train.checkpoints import Checkpoints, Position
from fastfood.train.lockstep import Lockstep, StopFlag
from fastfood.train.metrics import MetricsLog
from fastfood.train.progress import Progress
from fastfood.train.runner import Runner


def train_and_evaluate(config: RunConfig, *, resume: bool = False, spec: Any = None,
                       strategy: Any = None, log_every: int | None = None,
                       stream: IO[str] | None = None, fancy: bool | None = None) -> dict:
    """Train per `config`, validating and checkpointing on the way; returns a summary.

    `resume`: continue the run in config.train.run_dir (or the latest under runs/) even if
    some settings changed (structural ones may not). Without it a run dir that holds a run
    with the same settings is continued, one with other settings is refused.
    `spec`: an already loaded DatasetSpec; `strategy`: a tf.distribute strategy to use
    instead of the one this machine calls for. The summary's `exit_code` is 0, or
    130/143 when SIGINT/SIGTERM stopped the run (after saving).
    """
    stream = stream or sys.stderr
    config, spec, run_dir, continuing = resolve_run(config, resume, spec)

    import keras

    from fastfood import loaders
    from fastfood.model import convention_of
    from fastfood.train import feeds

    strategy = strategy or distribute.make_strategy()
    hw = precision.detect()
    prec = precision.choose_precision(config.train.precision, hw)
    xla, xla_reason = precision.choose_xla(config.train.xla, hw)
    kind = loaders.resolve_kind(config.loader.kind)
    lay = distribute.layout(strategy)
    chief, task = distribute.worker_id(strategy)
    good, bad = loaders.preflight(spec.train.files)
    if not good:
        path, reason = bad[0]
        raise FastfoodError(
            f"none of the {len(bad)} training images can be read (first: {path}: {reason})")
    on_device = feeds.decodes_on_gpu(kind)
    plan = setup.plan(len(good), config, lay,
                      per_replica_pipelines=on_device and lay.kind == "multi-worker")
    say = _sayer(stream) if chief else (lambda text: None)
    shout = _sayer(stream)  # what every worker says (why it stopped)

    previous_policy = keras.mixed_precision.global_policy().name
    precision.apply(prec)
    keras.utils.set_random_seed(config.train.seed)
    try:
        parts = setup.build(config, strategy, plan, loss_scale=prec.loss_scale,
                            jit_compile=xla, load_weights=not continuing)
        with strategy.scope():
            ckpts = Checkpoints(run_dir if chief else run_dir / f".worker{task}", parts.model,
                                parts.optimizer, keep=config.train.keep_checkpoints,
                                source=run_dir)
            pos = ckpts.restore() if continuing else None
        config = dataclasses.replace(config, model=dataclasses.replace(
            config.model, convention=convention_of(parts.model)))
        if chief:
            rundir.write_start(run_dir, config, spec.classes, spec.display_names)
        say(_banner_run(run_dir, pos))
        say(f"data {spec.root}: {len(spec.classes)} classes, {len(good)} train / "
            f"{len(spec.val)} val images" + (f" ({len(bad)} unreadable train files skipped)"
                                            if bad else ""))
        say(recipe.describe(config))
        say(f"precision {prec.short} ({prec.policy}): {prec.reason}; "
            f"XLA {'on' if xla else 'off'}: {xla_reason}")
        say(f"{distribute.describe(strategy)}; loader {kind}"
            f"{' (decoding on the GPU)' if on_device else ''}; global batch "
            f"{config.loader.batch_size} ({plan.per_replica_batch} per replica); "
            f"{plan.steps_per_epoch} steps/epoch, {plan.total_steps} steps in "
            f"{plan.num_epochs} epochs" + (f"; only fc8 trains for "
                                            f"{config.train.freeze_epochs} epochs"
                                            if config.train.freeze_epochs else ""))
        every = log_every or max(1, min(50, plan.steps_per_epoch // 10))
        runner = Runner(
            config=config, spec=spec, strategy=strategy, parts=parts, ckpts=ckpts,
            plan=plan, kind=kind, on_device=on_device, chief=chief, log_every=every,
            lockstep=Lockstep(strategy, multi_worker=lay.kind == "multi-worker", every=every),
            metrics=MetricsLog(run_dir, resume_step=pos.step if pos else None, enabled=chief),
            progress=Progress(total_epochs=plan.num_epochs, stream=stream, fancy=fancy)
            if chief else None,
            say=say, shout=shout, task=task,
        )
        with StopFlag() as stop:
            summary = runner.run(pos or Position(), stop)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    summary.update(run_dir=str(run_dir), precision=prec.policy, xla=xla, loader=kind,
                   strategy=lay.kind, replicas=lay.num_replicas)
    if chief:
        rundir.write_json(run_dir / rundir.SUMMARY, summary)
    return summary


def _sayer(stream: IO[str]) -> Any:
    def say(text: str) -> None:
        print(f"fastfood: {text}", file=stream, flush=True)

    return say


def _banner_run(run_dir: Path, pos: Position | None) -> str:
    if pos is None:
        return f"run dir {run_dir} (new run)"
    return (f"run dir {run_dir} (resuming at step {pos.step}, epoch {pos.epoch + 1}, "
            f"batch {pos.batch_in_epoch})")


__all__ = ["train_and_evaluate", "StopFlag"]
