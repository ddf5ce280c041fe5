"""What outlives a step: the run's parts, feeds, checkpoints and log, and the few actions
the loop takes with them (validate, save, fail).

The loop itself (`fastfood.train.loop.train_loop`) holds the position and reads top to
bottom; this object holds no position of its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError, first_line
from fastfood.loaders.skips import SkipLog
from fastfood.train import failures
from fastfood.train.budget import Patience, TimeBudget
from fastfood.train.checkpoints import Checkpoints
from fastfood.train.feeds import EvalFeed, TrainFeed
from fastfood.train.lockstep import Lockstep
from fastfood.train.log import RunLog, check_finite
from fastfood.train.position import Position
from fastfood.train.setup import Parts, Plan


@dataclasses.dataclass
class Run:
    """The parts of one run between steps, and the best validation top-1 so far."""

    config: RunConfig
    plan: Plan
    parts: Parts
    train: TrainFeed
    evals: EvalFeed
    ckpts: Checkpoints
    log: RunLog
    lockstep: Lockstep
    skips: SkipLog
    task: tuple[str, int] = ("worker", 0)  # this process's (job, index) in its cluster
    leader: tuple[str, int] = ("worker", 0)  # the task hosting the coordination service
    best_top1: float = -1.0
    last_val: dict | None = None
    val_skipped: list = dataclasses.field(default_factory=list)
    patience: Patience = dataclasses.field(default_factory=Patience)
    budget: TimeBudget = dataclasses.field(default_factory=TimeBudget)

    def step_fn(self, epoch: int) -> Any:
        """fc8 alone while the backbone is frozen, then the whole network."""
        frozen = epoch < self.config.train.freeze_epochs
        return self.parts.head_step if frozen else self.parts.train_step

    def validate(self, pos: Position) -> dict | None:
        """One pass over the validation split; keeps the best weights in best/."""
        import tensorflow as tf

        from fastfood.train.step import evaluate

        if not self.evals.files:
            return None
        with self.averaged():  # with --ema, the average is what is validated and kept
            try:
                result = evaluate(self.parts.eval_step, *self.evals.batches())
            except tf.errors.OpError:
                if not self._drop_undecodable_val_files():
                    raise
                result = evaluate(self.parts.eval_step, *self.evals.batches())
            self.log.val(pos, result)
            self.budget.validated()
            self.patience.record(result["top1"] > self.best_top1)
            if result["top1"] > self.best_top1:
                self.best_top1 = result["top1"]
                self.ckpts.save_best(pos.step, result["top1"])
        self.last_val = {**result, "step": pos.step}
        self.log.pause()
        return result

    def averaged(self) -> Any:
        """A block in which the model holds the weights validation and inference use: the
        EMA with --ema (`fastfood.train.ema`), else the trained ones as they are."""
        return self.parts.ema.applied() if self.parts.ema is not None else nullcontext()

    def save(self, pos: Position, logs: dict | None = None) -> str:
        """A checkpoint of `pos`; with `logs`, refused if the loss is not finite."""
        if logs is not None:
            check_finite(float(logs["loss"]), pos.step, self.config.train.lr,
                         self.ckpts.source)
        path = self.ckpts.save(pos, self.best_top1, self.state())
        self.log.pause()
        return path

    def state(self) -> dict[str, float]:
        """What a checkpoint keeps of patience and the time budget."""
        return {"bad_validations": self.patience.bad, "train_seconds": self.budget.elapsed(),
                "fitted_steps": self.budget.fitted}

    def patience_spent(self) -> bool:
        """Whether the workers agree that val top-1 stopped improving; call on every
        worker after each validation."""
        return self.lockstep.agree(self.patience.spent)[0]

    def fit_to_time(self, pos: Position) -> Plan:
        """Fit the schedule's length to the time left, once, as the workers agree; the
        plan is then the fitted one."""
        import math

        planned = self.plan.total_steps
        agreed = self.lockstep.mean(self.budget.estimate(pos.step, planned))
        total = self.budget.settle(pos.step, planned, agreed)
        if total != planned:
            self.parts.schedule.refit(total)
            self.plan = dataclasses.replace(
                self.plan, total_steps=total,
                num_epochs=math.ceil(total / self.plan.steps_per_epoch))
        self.log.say(f"--time-limit {self.config.train.time_limit}: "
                     + (f"the schedule now ends at step {total} instead of {planned} "
                        "(its warm-up and decay shrunk in proportion to the steps that fit)"
                        if total != planned else f"all {planned} planned steps fit"))
        return self.plan

    def report_skips(self, pos: Position) -> None:
        """Name the files the loader could not decode; under --strict, stop on the first."""
        for path, reason in self.skips.drain():
            self.log.say(f"skipped {path}: cannot decode ({reason})")
            if self.config.train.strict:
                self._raise(failures.Failure("input", f"{path} ({reason})",
                                             failures.EXIT_INPUT, can_save=True), pos, save=True)

    @contextmanager
    def guard(self, pos: Position) -> Iterator[None]:
        """A TensorFlow error inside (the host sync that surfaces an earlier step's failure,
        a collective whose peer is gone) is named like a failed step at `pos`."""
        import tensorflow as tf

        try:
            yield
        except (tf.errors.OpError, RuntimeError) as err:
            if isinstance(err, tf.errors.OutOfRangeError):
                raise
            self.fail(err, pos)

    def fail(self, err: BaseException, pos: Position) -> None:
        """A step raised: name what failed, save if this worker still can, exit with its code."""
        multi = self.lockstep.multi_worker
        failure = failures.classify(
            err, files=tuple(self.train.files), multi_worker=multi,
            self_task=self.task if multi else None, addresses=_cluster_addresses(),
            leader=self.leader if multi else None)
        if failure.kind == "input":
            self.skips.add(failure.detail, first_line(err)[:200])
        self._raise(failure, pos, save=failure.can_save and not multi)

    def _raise(self, failure: failures.Failure, pos: Position, *, save: bool) -> None:
        path = ""
        if save:
            try:
                path = self.ckpts.save(pos, self.best_top1, self.state())
            except Exception:  # noqa: BLE001 - the original failure is the one to report
                path = ""
        raise failures.TrainingFailed(
            failures.explain(failure, step=pos.step, epoch=pos.epoch, checkpoint=path,
                             run_dir=str(self.ckpts.source), previous=self.ckpts.latest()),
            failure.exit_code) from None

    def _drop_undecodable_val_files(self) -> bool:
        """Find the validation files that fail to decode, name them, and leave them out.

        The preflight catches most bad files cheaply; this backstop decodes each file once,
        only after a validation pass failed, as `fastfood evaluate` skips and names them.
        """
        import tensorflow as tf

        from fastfood.loaders.preprocess import eval_image

        size = self.config.model.image_size
        keep, dropped = [], []
        for i, path in enumerate(self.evals.files):
            try:
                eval_image(tf.io.read_file(path), size, self.config.loader.exif == "on")
                keep.append(i)
            except tf.errors.OpError as one:
                dropped.append((path, first_line(one)[:200]))
        if not dropped:
            return False
        if not keep:
            raise FastfoodError(f"none of the {len(dropped)} validation images can be decoded "
                                f"(first: {dropped[0][0]}: {dropped[0][1]})")
        for path, reason in dropped:
            self.log.say(f"validation skips {path}: cannot decode ({reason})")
        self.evals.replace_files([self.evals.files[i] for i in keep],
                                 [self.evals.labels[i] for i in keep])
        self.val_skipped.extend(dropped)
        return True

    def image_grid(self, batch: Any) -> None:
        """The first augmented training images, into TensorBoard, once per run."""
        images = batch[0]
        local = getattr(images, "values", None)  # a distributed batch: its first replica's
        first = (local[0] if local else images)[:16]
        self.log.metrics.images(0, "augmented_inputs", first.numpy())

    def summary(self, pos: Position, stopped: str, exit_code: int, short_epochs: int,
                started: float, ended: str = "") -> dict:
        """What summary.json says about the run; `stop` says why it ended where it did
        (completed, patience, time limit, or a signal: `stopped_by`)."""
        reason = "signal" if stopped else ended or "completed"
        detail = {"signal": f"stopped by {stopped}",
                  "patience": f"val top-1 did not improve for {self.patience.bad} validations "
                              f"(--patience {self.patience.limit})",
                  "time limit": f"--time-limit {self.config.train.time_limit} reached after "
                                f"{self.budget.elapsed():.0f} s of training",
                  "completed": "the schedule's last step"}[reason]
        return {
            "stop": {"reason": reason, "step": pos.step, "detail": detail},
            "time_fit": self.budget.fit,
            "step": pos.step, "total_steps": self.plan.total_steps, "epoch": pos.epoch,
            "steps_per_epoch": self.plan.steps_per_epoch, "best_top1": self.best_top1,
            "val": self.last_val, "train_img_per_s": self.log.img_per_s(),
            "wall_s": round(time.perf_counter() - started, 2), "stopped_by": stopped or None,
            "short_epochs": short_epochs,
            "decode_skipped": [{"file": f, "error": e} for f, e in self.skips.items()],
            "val_skipped": [{"file": f, "error": e} for f, e in self.val_skipped],
            "exit_code": exit_code,
        }


def _cluster_addresses() -> dict[tuple[str, int], str]:
    """(job, task) -> host:port from TF_CONFIG, to name a lost worker by its address."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    except ValueError:
        return {}
    return {(job, i): addr for job, addrs in cluster.items() for i, addr in enumerate(addrs)}
