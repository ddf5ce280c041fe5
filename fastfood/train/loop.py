"""`train_and_evaluate(config)`: set a run up, then `train_loop`, the whole loop in one place.

The loop calls a compiled step per batch and otherwise only counts: logs are fetched from
the device at the end of each logging interval (the only host syncs), validation runs every
--val-every steps and at each epoch end, checkpoints are written every --save-every steps,
every TrainConfig.save_every_s seconds, at each epoch end and when SIGINT/SIGTERM asks the
run to stop. In a cluster, the stop and the timed save are agreed by every worker first
(`lockstep`), and every worker takes part in every save.

Exact resume: the checkpoint records the position (global step, epoch, batches done in
it); the loaders read an order that is a function of (seed, epoch) alone, so the resumed
run reads exactly the batches that would have come next, and the optimizer's own step
counter (restored with it) keeps the LR schedule on the same curve.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import IO, Any

from fastfood import machine, rundir
from fastfood.config import RunConfig, parse_duration
from fastfood.errors import FastfoodError
from fastfood.loaders.request import LoaderRequest
from fastfood.loaders.skips import SkipLog
from fastfood.train import class_weights, distribute, precision, recipe, setup
from fastfood.train.budget import Patience, TimeBudget
from fastfood.train.checkpoints import Checkpoints, write_folder
from fastfood.train.feeds import EvalFeed, TrainFeed, decodes_on_gpu
from fastfood.train.lockstep import Lockstep, StopFlag
from fastfood.train.log import RunLog
from fastfood.train.metrics import MetricsLog
from fastfood.train.position import Position
from fastfood.train.progress import Progress
from fastfood.train.resume import resolve as resolve_run
from fastfood.train.run import Run


def train_loop(run: Run, pos: Position, stop: StopFlag) -> dict:
    """Train from `pos` to the plan's last step (or a stop), validating and saving on the
    way; returns the summary. Each decision reads top to bottom in the body below.

    A signal stops the run with a checkpoint to resume from (exit 130/143); patience
    spent or the time limit reached end it cleanly instead (a final validation and save,
    exit 0). A --time-limit fits the plan's length to the time once, after a few steps."""
    import tensorflow as tf

    plan, tcfg, log = run.plan, run.config.train, run.log
    started, stopped, ended, short_epochs, logs = time.perf_counter(), "", "", 0, None
    if pos.step >= plan.total_steps:
        log.say(f"already trained {pos.step} of {plan.total_steps} steps; nothing to do")
    elif run.lockstep.agree(run.budget.out_of_time)[0]:
        ended = "time limit"
        log.say(f"the --time-limit {tcfg.time_limit} is spent ({run.budget.elapsed():.0f} s "
                "trained); resume with a larger one to train on")
    while pos.step < plan.total_steps and not stopped and not ended:
        epoch, first, iterator = pos.epoch, pos, run.train.at(pos)
        step_fn = run.step_fn(epoch)
        log.start_epoch(pos, min(plan.steps_per_epoch,
                                 pos.batch_in_epoch + plan.total_steps - pos.step))
        while pos.epoch == epoch and pos.step < plan.total_steps:
            try:
                with run.guard(pos):  # a decode failure surfaces here, named
                    batch = next(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):  # files skipped at decode
                if pos == first:
                    raise FastfoodError(f"epoch {epoch + 1} produced no batches: the training "
                                        "images fail to decode") from None
                log.say(f"epoch {epoch + 1} ended after {pos.batch_in_epoch} of "
                        f"{plan.steps_per_epoch} batches (images that failed to decode were "
                        "skipped)")
                pos, short_epochs = pos.next_epoch(), short_epochs + 1
                break
            with run.guard(pos):
                if pos.step == 0 and log.metrics.enabled:
                    run.image_grid(batch)
                logs = step_fn(batch)
            pos = pos.advance(plan.steps_per_epoch)
            run.budget.stepped(pos.step)
            ends = pos.epoch != epoch or pos.step == plan.total_steps
            with run.guard(pos):
                if log.stepped() or ends:
                    log.train(pos, logs, tcfg.lr)
                run.report_skips(pos)
                want_save = False
                if run.lockstep.due(pos.step) or ends:
                    want_stop, want_save, late, fit = run.lockstep.agree(
                        bool(stop.signum), run.ckpts.timer_due(), run.budget.out_of_time,
                        run.budget.wants_fit(pos.step))
                    if want_stop:
                        stopped = stop.name or "a peer worker's signal"
                        break
                    if late:
                        ended = "time limit"
                        break
                    if fit:
                        plan = run.fit_to_time(pos)
                        ends = ends or pos.step >= plan.total_steps
                if ends:
                    break
                if tcfg.val_every and pos.step % tcfg.val_every == 0:
                    run.validate(pos)
                    if run.patience_spent():
                        ended = "patience"
                        break
                if want_save or (tcfg.save_every and pos.step % tcfg.save_every == 0):
                    run.save(pos, logs)
        log.end_epoch()
        if not stopped and not ended and (pos.epoch != epoch or pos.step >= plan.total_steps):
            with run.guard(pos):
                run.validate(pos)
                run.save(pos)
                if run.patience_spent():
                    ended = "patience"
    if ended:
        log.say(f"ending at step {pos.step} of {plan.total_steps}: "
                + ("--patience " + str(tcfg.patience) + ": val top-1 has not improved for "
                   f"{run.patience.bad} validations; best/ keeps the best weights"
                   if ended == "patience" else f"--time-limit {tcfg.time_limit} reached"))
    return finish(run, pos, stop, stopped=stopped, short_epochs=short_epochs, started=started,
                  logs=logs, ended=ended)


def finish(run: Run, pos: Position, stop: StopFlag, *, stopped: str, short_epochs: int,
           started: float, logs: dict | None, ended: str = "") -> dict:
    """The last save: a stop's checkpoint (refused over a diverged loss), or the final
    validation and weights (also when patience or the time limit ended the run)."""
    if stopped:
        path = run.save(pos, logs)
        if run.ckpts.scratch:  # this worker's copy is gone; the chief's is the run's
            path = str(run.ckpts.source / rundir.CKPT_DIR / f"ckpt-{pos.step}")
        exit_code = 128 + int(stop.signum or 15)
        run.log.shout(f"stopped by {stopped} at step {pos.step} of {run.plan.total_steps}; "
                      f"checkpoint {path}. Resume with: fastfood train --resume --run-dir "
                      f"{run.ckpts.source}")
    else:
        exit_code = 0
        if run.last_val is None or run.last_val["step"] != pos.step:
            run.validate(pos)
        run.save(pos, logs if ended else None)
        with run.averaged():
            run.ckpts.save_final()
    run.ckpts.clean_scratch()
    run.log.close()
    return run.summary(pos, stopped, exit_code, short_epochs, started, ended)


def train_and_evaluate(config: RunConfig, *, resume: bool = False, spec: Any = None,
                       strategy: Any = None, log_every: int | None = None,
                       stream: IO[str] | None = None, fancy: bool | None = None,
                       placement: str | None = None) -> dict:
    """Train per `config`, validating and checkpointing on the way; returns a summary.

    `resume`: continue the run in config.train.run_dir (or the latest under runs/) even if
    some settings changed (structural ones may not). Without it a run dir that holds a run
    with the same settings is continued, one with other settings is refused.
    `spec`: an already loaded DatasetSpec; `strategy`: a tf.distribute strategy to use
    instead of the one this machine calls for; `placement`: force an input placement
    (fastfood.train.setup.PLACEMENTS). The summary's `exit_code` is 0, or 130/143 when
    SIGINT/SIGTERM stopped the run (after saving).
    """
    config, spec, run_dir, continuing = resolve_run(config, resume, spec)

    import keras

    from fastfood import loaders
    from fastfood.model import convention_of
    from fastfood.train import step as train_step

    strategy = strategy or distribute.make_strategy()
    hw = machine.detect()
    prec = precision.choose_precision(config.train.precision, hw)
    xla, xla_reason = precision.choose_xla(config.train.xla, hw)
    kind = loaders.resolve_kind(config.loader.kind)
    chief, _ = distribute.worker_id(strategy)
    task = distribute.task(strategy)
    lcfg = config.loader
    good, bad = loaders.preflight(spec.train.files, lcfg.max_pixels)
    if not good:
        path, reason = bad[0]
        raise FastfoodError(
            f"none of the {len(bad)} training images can be read (first: {path}: {reason})")
    plan = setup.plan(len(good), config, strategy, on_device=decodes_on_gpu(kind),
                      placement=placement, validating=len(spec.val) > 0)
    multi_worker = distribute.layout(strategy).kind == "multi-worker"
    previous_policy = keras.mixed_precision.global_policy().name
    precision.apply(prec)
    keras.utils.set_random_seed(config.train.seed)
    weights = class_weights.for_run(config.train.class_weight, spec.train.labels,
                                    config.model.num_classes)
    try:
        parts = setup.build(config, strategy, plan, loss_scale=prec.loss_scale,
                            jit_compile=xla, load_weights=not continuing,
                            class_weights=weights)
        with strategy.scope():
            ckpts = Checkpoints(write_folder(run_dir, chief, task), parts.model,
                                parts.optimizer, keep=config.train.keep_checkpoints,
                                source=run_dir, save_every_s=config.train.save_every_s,
                                ema=parts.ema)
            pos = ckpts.restore() if continuing else None
        state = ckpts.restored_state
        budget = TimeBudget(limit_s=parse_duration(config.train.time_limit),
                            used_s=float(state["train_seconds"]),
                            fitted=int(state["fitted_steps"]))
        if budget.fitted and budget.fitted != plan.total_steps:  # fitted before the resume
            plan = dataclasses.replace(plan, total_steps=budget.fitted,
                                       num_epochs=math.ceil(budget.fitted / plan.steps_per_epoch))
            parts.schedule.refit(budget.fitted)
        config = config.but("model", convention=convention_of(parts.model))
        if chief:
            rundir.write_start(run_dir, config, spec.classes, spec.display_names)
        every = log_every or max(1, min(50, plan.steps_per_epoch // 10))
        log = RunLog(MetricsLog(run_dir, resume_step=pos.step if pos else None, enabled=chief),
                     Progress(total_epochs=plan.num_epochs, stream=stream, fancy=fancy)
                     if chief else None, every=every, global_batch=plan.global_batch,
                     stream=stream, chief=chief)
        scope = train_step.xla_scope(parts.model, strategy, xla)
        _banner(log, config, spec, plan, run_dir, pos, (good, bad), prec,
                xla_line(scope, xla_reason), strategy, kind)
        if weights is not None:
            log.say(class_weights.describe(weights))
        skips = SkipLog()
        request = LoaderRequest(kind=kind, image_size=config.model.image_size,
                                seed=config.train.seed, crop=lcfg.train_crop,
                                num_threads=lcfg.num_threads, skips=skips,
                                max_pixels=lcfg.max_pixels, augment=lcfg.augment,
                                random_erasing=lcfg.random_erasing, exif=lcfg.exif == "on")
        run = Run(config, plan, parts,
                  TrainFeed(strategy, plan, spec.train.files, spec.train.labels, request),
                  EvalFeed(strategy, plan, spec.val.files, spec.val.labels, request),
                  ckpts, log, Lockstep(strategy, multi_worker=multi_worker, every=every),
                  skips, task=task, leader=distribute.coordination_leader(strategy),
                  best_top1=ckpts.restored_best_top1,
                  patience=Patience(config.train.patience, int(state["bad_validations"])),
                  budget=budget)
        with StopFlag() as stop:
            summary = train_loop(run, (pos or Position()).normalized(plan.steps_per_epoch),
                                 stop)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    summary.update(run_dir=str(run_dir), precision=prec.policy,
                   xla=train_step.is_compiled(scope), xla_scope=scope, loader=kind,
                   strategy=distribute.layout(strategy).kind,
                   replicas=int(strategy.num_replicas_in_sync),
                   class_weights=list(weights) if weights is not None else None)
    if chief:
        rundir.write_json(run_dir / rundir.SUMMARY, summary)
    return summary


def _banner(log: RunLog, config: RunConfig, spec: Any, plan: setup.Plan, run_dir: Any,
            pos: Position | None, files: tuple, prec: Any, xla: str, strategy: Any,
            kind: str) -> None:
    """The start-up lines: where the run is, its data, recipe, precision and shape."""
    good, bad = files
    where = "new run" if pos is None else (f"resuming at step {pos.step}, epoch "
                                           f"{pos.epoch + 1}, batch {pos.batch_in_epoch}")
    log.say(f"run dir {run_dir} ({where})")
    log.say(f"data {spec.root}: {len(spec.classes)} classes, {len(good)} train / "
            f"{len(spec.val)} val images"
            + (f" ({len(bad)} unreadable train files skipped)" if bad else ""))
    log.say(recipe.describe(config))
    log.say(f"precision {prec.short} ({prec.policy}): {prec.reason}; {xla}")
    freeze = config.train.freeze_epochs
    log.say(f"{distribute.describe(strategy)}; loader {kind}"
            f"{' (decoding on the GPU)' if plan.on_device else ''}; global batch "
            f"{plan.global_batch} ({plan.per_replica_batch} per replica); "
            f"{plan.steps_per_epoch} steps/epoch, {plan.total_steps} steps in "
            f"{plan.num_epochs} epochs"
            + (f"; only fc8 trains for {freeze} epochs" if freeze else ""))
    stops = [f"patience {config.train.patience} validations"] if config.train.patience else []
    if config.train.time_limit:
        stops.append(f"time limit {config.train.time_limit} (the schedule is fitted to it "
                     "after a few steps)")
    if stops:
        log.say("stops early on " + " or ".join(stops))


def xla_line(scope: str, reason: str) -> str:
    """The banner's words on XLA: what it compiles, and why it is on or off."""
    from fastfood.train import step as train_step

    if scope == train_step.SCOPE_OFF:
        return f"XLA off: {reason}"
    if not train_step.is_compiled(scope):
        return f"XLA {scope} ({reason})"
    return f"XLA on for {scope}: {reason}"


__all__ = ["train_and_evaluate", "train_loop", "StopFlag"]
