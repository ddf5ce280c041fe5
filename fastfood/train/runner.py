"""The step loop of one run: step, then maybe log, validate, save or stop.

`Runner.run` is the whole loop; each "maybe" is a small method. The decisions that must be
the same on every worker of a cluster (stop on a signal, save on a timer) go through
`lockstep`; the ones that follow from the step number (validate and save every N steps,
epoch ends) are the same everywhere by construction.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.loaders.request import LoaderRequest
from fastfood.loaders.skips import SkipLog
from fastfood.train import failures
from fastfood.train.checkpoints import Checkpoints, Position
from fastfood.train.feeds import EvalFeed, TrainFeed
from fastfood.train.lockstep import Lockstep, StopFlag
from fastfood.train.metrics import MetricsLog
from fastfood.train.progress import Progress, val_line
from fastfood.train.setup import Parts, Plan

GRID_IMAGES = 16


@dataclasses.dataclass
class Runner:
    """The state of one run between steps."""

    config: RunConfig
    spec: Any
    strategy: Any
    parts: Parts
    ckpts: Checkpoints
    plan: Plan
    kind: str
    on_device: bool
    chief: bool
    log_every: int
    lockstep: Lockstep
    metrics: MetricsLog
    progress: Progress | None
    say: Any
    shout: Any = None  # says a line on every worker, not only the chief
    task: int = 0

    def __post_init__(self) -> None:
        lcfg, mcfg = self.config.loader, self.config.model
        self.skips = SkipLog()
        request = LoaderRequest(
            kind=self.kind, batch_size=lcfg.batch_size, image_size=mcfg.image_size,
            seed=self.config.train.seed, crop=lcfg.train_crop, num_threads=lcfg.num_threads,
            skips=self.skips)
        batch = lcfg.batch_size
        self.train_feed = TrainFeed(self.strategy, self.spec.train.files,
                                    self.spec.train.labels, request, global_batch=batch,
                                    num_epochs=self.plan.num_epochs, on_device=self.on_device)
        self.eval_feed = EvalFeed(self.strategy, self.spec.val.files, self.spec.val.labels,
                                  request, global_batch=batch, on_device=self.on_device)
        self.best_top1, self.last_val, self.stopped = -1.0, None, ""
        self.val_skipped: list[tuple[str, str]] = []
        self.short_epochs, self.trained, self.train_time = 0, 0, 0.0
        self._since, self._mark, self._stop_signal = 0, time.perf_counter(), 0

    # ---- the loop --------------------------------------------------------------------

    def run(self, pos: Position, stop: StopFlag) -> dict:
        self.best_top1, self.started = pos.best_top1, time.perf_counter()
        self.last_save = time.monotonic()
        step, epoch, done = pos.step, pos.epoch, pos.batch_in_epoch
        if done >= self.plan.steps_per_epoch:
            epoch, done = epoch + 1, 0
        if step >= self.plan.total_steps:
            self.say(f"already trained {step} of {self.plan.total_steps} steps; nothing to do")
        elif step == 0 and self.chief:
            self._image_grid()
        while step < self.plan.total_steps and not self.stopped:
            steps_here = min(self.plan.steps_per_epoch, done + self.plan.total_steps - step)
            iterator = self.train_feed.at(epoch, done)
            self._start_epoch(epoch, steps_here, done)
            first = done
            while done < steps_here and not self.stopped:
                logs = self._step(iterator, step, epoch, done, first)
                if logs is None:  # the epoch ran out early (files skipped at decode time)
                    self.short_epochs, done = self.short_epochs + 1, self.plan.steps_per_epoch
                    break
                step, done = step + 1, done + 1
                self._guarded((step, epoch, done), self._after_step, logs, step, epoch, done,
                              steps_here, stop)
            if self.progress:
                self.progress.end_epoch()
            if not self.stopped and (done >= self.plan.steps_per_epoch
                                     or step >= self.plan.total_steps):
                self._guarded((step, epoch, done), self.validate, step, epoch)
                self._guarded((step, epoch, done), self.save, step, epoch, done)
                if done >= self.plan.steps_per_epoch:
                    epoch, done = epoch + 1, 0
        return self._finish(step, epoch, done, stop)

    # ---- one step and what may follow it ----------------------------------------------

    def _step(self, iterator: Any, step: int, epoch: int, done: int, first: int) -> dict | None:
        import tensorflow as tf

        step_fn = (self.parts.head_step if epoch < self.config.train.freeze_epochs
                   else self.parts.train_step)
        if self._since == 0:
            self._mark = time.perf_counter()
        try:
            return step_fn(iterator)
        except tf.errors.OutOfRangeError:
            if done == first:
                raise FastfoodError(f"epoch {epoch + 1} produced no batches: the training "
                                    "images fail to decode") from None
            self.say(f"epoch {epoch + 1} ended after {done} of {self.plan.steps_per_epoch} "
                     "batches (images that failed to decode were skipped)")
            return None
        except (tf.errors.OpError, RuntimeError) as err:
            self._fail(err, step, epoch, done)

    def _after_step(self, logs: dict, step: int, epoch: int, done: int, steps_here: int,
                    stop: StopFlag) -> None:
        self._since += 1
        if self._since >= self.log_every or done == steps_here:
            self._log(logs, step, epoch, done)
        self._report_skips(step, epoch, done)
        if self.lockstep.due(step) or done == steps_here:
            due = time.monotonic() - self.last_save >= self.config.train.save_every_s
            want_stop, want_save = self.lockstep.agree(bool(stop.signum), due)
            if want_stop:
                self._check_finite(step, float(logs["loss"]))
                self.stopped = stop.name or "a peer worker's signal"
                self._stop_signal = stop.signum or 15
                return
        else:
            want_save = False
        if done < steps_here:
            tcfg = self.config.train
            paused = False
            if tcfg.val_every and step % tcfg.val_every == 0:
                self.validate(step, epoch)
                paused = True
            if want_save or (tcfg.save_every and step % tcfg.save_every == 0):
                self._check_finite(step, float(logs["loss"]))
                self.save(step, epoch, done)
                paused = True
            if paused:
                self._tick()

    def _guarded(self, where: tuple[int, int, int], fn: Any, *args: Any) -> Any:
        """Run a part of the loop that touches the device at `where` (step, epoch, batch);
        a TensorFlow error there (the host sync that surfaces an earlier step's failure, a
        collective whose peer is gone) is named like a failed step."""
        import tensorflow as tf

        try:
            return fn(*args)
        except tf.errors.OpError as err:
            self._fail(err, *where)

    def _log(self, logs: dict, step: int, epoch: int, done: int) -> None:
        values = {k: float(v) for k, v in logs.items()}  # the host sync
        self._check_finite(step, values["loss"])
        now = time.perf_counter()
        values["img/s"] = self._since * self.config.loader.batch_size / max(now - self._mark, 1e-9)
        self._tick(now)
        self.metrics.log("train", step, epoch + 1, values)
        if self.progress:
            self.progress.update(step, done, values)

    def _tick(self, now: float | None = None) -> None:
        """Close the current timing window (steps since the last tick)."""
        now = now or time.perf_counter()
        if self._since:
            self.train_time += now - self._mark
            self.trained += self._since
        self._mark, self._since = now, 0

    def _report_skips(self, step: int, epoch: int, done: int) -> None:
        """Name the files the loader could not decode; under --strict, stop on the first."""
        for path, reason in self.skips.drain():
            self.say(f"skipped {path}: cannot decode ({reason})")
            if getattr(self.config.train, "strict", False):
                failure = failures.Failure("input", f"{path} ({reason})", failures.EXIT_INPUT,
                                           can_save=True)
                self._raise(failure, step, epoch, done, save=True)

    def _start_epoch(self, epoch: int, steps_here: int, done: int) -> None:
        if self.progress:
            self.progress.start_epoch(epoch, steps_here, done)
        self._since, self._mark = 0, time.perf_counter()

    # ---- validation, saving, failures ------------------------------------------------

    def validate(self, step: int, epoch: int) -> dict | None:
        from fastfood.train.step import evaluate

        if len(self.spec.val) == 0:
            return None
        import tensorflow as tf

        try:
            result = evaluate(self.parts.eval_step, *self.eval_feed.batches())
        except tf.errors.OpError:
            if not self._drop_undecodable_val_files():
                raise
            result = evaluate(self.parts.eval_step, *self.eval_feed.batches())
        self.metrics.log("val", step, epoch + 1, result)
        if self.progress:
            self.progress.message(val_line(step, epoch, result))
        if result["top1"] > self.best_top1:
            self.best_top1 = result["top1"]
            self.ckpts.save_best(step, result["top1"])
        self.last_val = {**result, "step": step}
        return result

    def _drop_undecodable_val_files(self) -> bool:
        """Find the validation files that fail to decode, name them, and leave them out.

        The preflight catches most bad files cheaply; this backstop decodes each file once,
        only after a validation pass failed, as `fastfood evaluate` skips and names them.
        """
        import tensorflow as tf

        from fastfood.loaders.preprocess import eval_image

        size = self.config.model.image_size
        keep, dropped = [], []
        for i, path in enumerate(self.spec.val.files):
            try:
                eval_image(tf.io.read_file(path), size)
                keep.append(i)
            except tf.errors.OpError as one:
                dropped.append((path, failures.first_line(one)[:200]))
        if not dropped:
            return False
        if not keep:
            raise FastfoodError(f"none of the {len(dropped)} validation images can be decoded "
                                f"(first: {dropped[0][0]}: {dropped[0][1]})")
        for path, reason in dropped:
            self.say(f"validation skips {path}: cannot decode ({reason})")
        val = type(self.spec.val)(tuple(self.spec.val.files[i] for i in keep),
                                  tuple(self.spec.val.labels[i] for i in keep))
        self.spec = dataclasses.replace(self.spec, val=val)
        self.eval_feed.replace_files(val.files, val.labels)
        self.val_skipped.extend(dropped)
        return True

    def save(self, step: int, epoch: int, batch_in_epoch: int) -> str:
        if batch_in_epoch >= self.plan.steps_per_epoch:
            epoch, batch_in_epoch = epoch + 1, 0
        path = self.ckpts.save(Position(step, epoch, batch_in_epoch, self.best_top1))
        self.last_save = time.monotonic()
        return path

    def _check_finite(self, step: int, loss: float) -> None:
        """Stop a diverged run before it checkpoints NaN weights over good ones."""
        if not math.isfinite(loss):
            raise FastfoodError(
                f"training diverged: loss is {loss} at step {step}; lower --lr (it is "
                f"{self.config.train.lr:g}). The last good checkpoint is in "
                f"{self.ckpts.run_dir / 'ckpt'}"
            )

    def _fail(self, err: BaseException, step: int, epoch: int, done: int) -> None:
        """A step raised: name what failed, save if this worker still can, exit with its code."""
        failure = failures.classify(
            err, files=tuple(self.spec.train.files),
            multi_worker=self.lockstep.multi_worker, self_task=("worker", self.task)
            if self.lockstep.multi_worker else None, addresses=_cluster_addresses())
        if failure.kind == "input":
            self.skips.add(failure.detail, failures.first_line(err)[:200])
        self._raise(failure, step, epoch, done,
                    save=failure.can_save and not self.lockstep.multi_worker)

    def _raise(self, failure: failures.Failure, step: int, epoch: int, done: int, *,
               save: bool) -> None:
        path = ""
        if save:
            try:
                path = self.save(step, epoch, done)
            except Exception:  # noqa: BLE001 - the original failure is the one to report
                path = ""
        raise failures.TrainingFailed(
            failures.explain(failure, step=step, epoch=epoch, checkpoint=path,
                             run_dir=str(self.ckpts.source), previous=self.ckpts.latest()),
            failure.exit_code) from None

    def _image_grid(self) -> None:
        """The first augmented training images, into TensorBoard, once per run."""
        from fastfood import loaders

        import tensorflow as tf

        lcfg = self.config.loader
        n = min(GRID_IMAGES, len(self.spec.train))
        try:
            ds = loaders.build(self.kind, self.spec.train.files, self.spec.train.labels,
                               training=True, batch_size=n, image_size=self.config.model.image_size,
                               seed=self.config.train.seed, crop=lcfg.train_crop,
                               num_threads=lcfg.num_threads, device="cpu", skips=self.skips)
            for images, _ in ds.take(1):
                self.metrics.images(0, "augmented_inputs", images.numpy())
        except (tf.errors.OpError, FastfoodError):
            pass  # a file that fails to decode: training reports it by name

    def _finish(self, step: int, epoch: int, done: int, stop: StopFlag) -> dict:
        self._tick()
        if self.stopped:
            path = self.save(step, epoch, done)
            if self.ckpts.scratch:  # this worker's copy is gone; the chief's is the run's
                path = str(self.ckpts.source / "ckpt" / f"ckpt-{step}")
            exit_code = 128 + int(self._stop_signal or 15)
            (self.shout or self.say)(
                f"stopped by {self.stopped} at step {step} of {self.plan.total_steps}; "
                f"checkpoint {path}. Resume with: fastfood train --resume --run-dir "
                f"{self.ckpts.source}")
        else:
            exit_code = 0
            if self.last_val is None or self.last_val["step"] != step:
                self.validate(step, epoch)
            self.save(step, epoch, done)
            self.ckpts.save_final()
        self.ckpts.clean_scratch()
        self.metrics.close()
        batch = self.config.loader.batch_size
        return {
            "step": step,
            "total_steps": self.plan.total_steps,
            "epoch": epoch,
            "steps_per_epoch": self.plan.steps_per_epoch,
            "best_top1": self.best_top1,
            "val": self.last_val,
            "train_img_per_s": self.trained * batch / self.train_time if self.train_time > 0
            else None,
            "wall_s": round(time.perf_counter() - self.started, 2),
            "stopped_by": self.stopped or None,
            "short_epochs": self.short_epochs,
            "decode_skipped": [{"file": f, "error": e} for f, e in self.skips.items()],
            "val_skipped": [{"file": f, "error": e} for f, e in self.val_skipped],
            "exit_code": exit_code,
        }


def _cluster_addresses() -> dict[tuple[str, int], str]:
    """(job, task) -> host:port from TF_CONFIG, to name a lost worker by its address."""
    import json
    import os

    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    except ValueError:
        return {}
    return {(job, i): addr for job, addrs in cluster.items() for i, addr in enumerate(addrs)}
