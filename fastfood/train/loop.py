"""`train_and_evaluate(config)`: the training run, and the only place with side effects.

The loop calls a compiled step per batch and does nothing else per step but count and
check a signal flag: logs are fetched from the device every `log_every` steps (the only
host syncs), validation runs every --val-every steps and at each epoch end, checkpoints
are written every --save-every steps, every TrainConfig.save_every_s seconds, at each
epoch end and when SIGINT/SIGTERM asks the run to stop.

Exact resume: the checkpoint records the global step, the epoch and the batches done in
it. The loaders produce one epoch per dataset, in an order that is a function of
(seed, epoch) alone, so the resumed epoch is rebuilt with `epoch=e, skip_batches=k` and
continues with the very batch that would have come next; the optimizer's own step
counter (restored with it) keeps the LR schedule on the same curve.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.train import distribute, precision, rundir
from fastfood.train.checkpoints import Checkpoints, Position, has_checkpoint
from fastfood.train.metrics import MetricsLog
from fastfood.train.progress import Progress, val_line

GRID_IMAGES = 16


class StopFlag:
    """SIGINT/SIGTERM set a flag that the loop checks after each step.

    The step in flight finishes, a checkpoint is written and the run exits cleanly. A
    second signal of the same kind acts as usual (KeyboardInterrupt, termination), which
    is safe: checkpoints are committed atomically.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                      else signal.SIG_DFL)

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


def _check_run_dir(run_dir: Path) -> None:
    """--run-dir must be (or be creatable as) a folder: say so now, before the slow part."""
    for path in (run_dir, *run_dir.parents):
        if path.exists():
            if not path.is_dir():
                what = "--run-dir" if path == run_dir else "a parent of --run-dir"
                raise FastfoodError(f"{what} {path} is a file, not a folder")
            return


def _resolve(config: RunConfig, resume: bool, spec: Any) -> tuple[RunConfig, Any, Path, bool]:
    """Read the data, pick the run dir, and decide: fresh run, continue, or refuse."""
    from fastfood import data

    root = config.data.root
    if not root:
        from fastfood.data.sample import default_sample

        root = str(default_sample())
    if spec is None:
        spec = data.load(root, config.data.val_fraction, config.data.split_seed)
    if len(spec.train) == 0:
        raise FastfoodError(f"--data {spec.root}: the training split has no images")
    if config.train.run_dir:
        run_dir = Path(config.train.run_dir)
    elif resume:
        found = rundir.latest_run_dir()
        if found is None:
            raise FastfoodError("--resume: no run under runs/ to resume; pass --run-dir")
        run_dir = found
    else:
        run_dir = rundir.new_run_dir()
    _check_run_dir(run_dir)
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, root=str(spec.root)),
        model=dataclasses.replace(config.model, num_classes=len(spec.classes)),
        train=dataclasses.replace(config.train, run_dir=str(run_dir)),
    )
    old = rundir.read_config(run_dir)
    if old is None:
        if resume and not run_dir.exists():
            raise FastfoodError(f"--resume: run directory {run_dir} does not exist")
        return config, spec, run_dir, False
    old_classes = rundir.read_classes(run_dir)
    diffs = rundir.differences(old, config)
    if diffs and not resume:
        shown = ", ".join(f"{s}.{k} {a!r} -> {b!r}" for s, k, a, b in diffs[:3])
        more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
        raise FastfoodError(
            f"{run_dir} holds a run with other settings ({shown}{more}); pass --resume to "
            "continue it with these settings, or choose another --run-dir"
        )
    rundir.check_resumable(run_dir, old, config, old_classes["classes"] if old_classes else None,
                           spec.classes)
    if old.model.convention and not config.model.convention:
        config = dataclasses.replace(
            config, model=dataclasses.replace(config.model, convention=old.model.convention))
    return config, spec, run_dir, has_checkpoint(run_dir)


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

    def say(text: str) -> None:
        print(f"fastfood: {text}", file=stream, flush=True)

    config, spec, run_dir, continuing = _resolve(config, resume, spec)

    import keras

    from fastfood import loaders
    from fastfood.loaders import validate
    from fastfood.model import convention_of, head_variables, vgg19
    from fastfood.train.schedule import polynomial_decay
    from fastfood.train.step import evaluate, make_eval_step, make_optimizer, make_train_step

    tcfg, lcfg, mcfg = config.train, config.loader, config.model
    strategy = strategy or distribute.make_strategy()
    hw = precision.detect()
    prec = precision.choose_precision(tcfg.precision, hw)
    xla, xla_reason = precision.choose_xla(tcfg.xla, hw)
    kind = loaders.resolve_kind(lcfg.kind)
    lay = distribute.layout(strategy)
    chief, task = distribute.worker_id(strategy)
    per_replica = lay.per_replica_batch(lcfg.batch_size)

    good, bad = validate.check_files(spec.train.files)
    if not good:
        path, reason = bad[0]
        raise FastfoodError(
            f"none of the {len(bad)} training images can be read (first: {path}: {reason})")
    spe = loaders.steps_per_epoch(len(good), per_replica, (0, lay.num_pipelines)) \
        // lay.replicas_per_pipeline
    if spe == 0:
        raise FastfoodError(
            f"--batch-size {lcfg.batch_size} is larger than the {len(good)} usable training "
            f"images (per input pipeline: {lay.num_pipelines})"
        )
    total = tcfg.max_steps or tcfg.epochs * spe
    num_epochs = math.ceil(total / spe)

    previous_policy = keras.mixed_precision.global_policy().name
    precision.apply(prec)
    keras.utils.set_random_seed(tcfg.seed)
    ckpt_dir = run_dir if chief else run_dir / f".worker{task}"
    try:
        with strategy.scope():
            if continuing:
                model = vgg19(mcfg.num_classes, image_size=mcfg.image_size, width=mcfg.width,
                              dropout=mcfg.dropout, weights=None,
                              convention=mcfg.convention or None)
            else:
                weights = None if mcfg.weights in ("", "none") else mcfg.weights
                model = vgg19(mcfg.num_classes, image_size=mcfg.image_size, width=mcfg.width,
                              dropout=mcfg.dropout, weights=weights)
            optimizer = make_optimizer(polynomial_decay(tcfg.lr, total, tcfg.end_lr_factor),
                                       tcfg.momentum, loss_scale=prec.loss_scale)
            optimizer.build(model.trainable_variables)
            ckpts = Checkpoints(ckpt_dir, model, optimizer, keep=tcfg.keep_checkpoints)
            pos = ckpts.restore() if continuing else None
        config = dataclasses.replace(
            config, model=dataclasses.replace(mcfg, convention=convention_of(model)))
        if chief:
            rundir.write_start(run_dir, config, spec.classes, spec.display_names)

        say(f"run dir {run_dir} ("
            + (f"resuming at step {pos.step}, epoch {pos.epoch + 1}, batch {pos.batch_in_epoch})"
               if pos else "new run)"))
        say(f"data {spec.root}: {len(spec.classes)} classes, {len(good)} train / "
            f"{len(spec.val)} val images" + (f" ({len(bad)} unreadable train files skipped)"
                                            if bad else ""))
        say(f"precision {prec.short} ({prec.policy}): {prec.reason}; "
            f"XLA {'on' if xla else 'off'}: {xla_reason}")
        say(f"{distribute.describe(strategy)}; loader {kind}; global batch {lcfg.batch_size} "
            f"({per_replica} per replica); {spe} steps/epoch, {total} steps in {num_epochs} "
            f"epochs" + (f"; only fc8 trains for {tcfg.freeze_epochs} epochs"
                         if tcfg.freeze_epochs else ""))

        runner = _Runner(
            config=config, spec=spec, strategy=strategy, model=model, optimizer=optimizer,
            ckpts=ckpts, kind=kind, lay=lay, spe=spe, total=total, num_epochs=num_epochs,
            # Each replica's DALI pipeline should sit on its own GPU (on_device=True), but
            # the DALI loader pins /gpu:0 (one process per GPU); until it takes a device,
            # several replicas share GPU 0's decoder and TensorFlow copies the batches.
            chief=chief, on_device=False,
            log_every=log_every or max(1, min(50, spe // 10)),
            metrics=MetricsLog(run_dir, resume_step=pos.step if pos else None, enabled=chief),
            progress=Progress(total_epochs=num_epochs, stream=stream, fancy=fancy) if chief
            else None,
            say=say if chief else (lambda text: None),
            steps={
                "full": make_train_step(model, optimizer, strategy,
                                        global_batch=lcfg.batch_size,
                                        weight_decay=tcfg.weight_decay, jit_compile=xla),
                "head": make_train_step(model, optimizer, strategy,
                                        global_batch=lcfg.batch_size,
                                        weight_decay=tcfg.weight_decay, jit_compile=xla,
                                        variables=head_variables(model))
                if tcfg.freeze_epochs else None,
                "eval": make_eval_step(model, strategy, num_classes=mcfg.num_classes),
            },
            evaluate=evaluate,
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


@dataclasses.dataclass
class _Runner:
    """The state of one run between steps; `run()` is the epoch/step loop."""

    config: RunConfig
    spec: Any
    strategy: Any
    model: Any
    optimizer: Any
    ckpts: Checkpoints
    kind: str
    lay: distribute.Layout
    spe: int
    total: int
    num_epochs: int
    chief: bool
    on_device: bool
    log_every: int
    metrics: MetricsLog
    progress: Progress | None
    say: Any
    steps: dict
    evaluate: Any

    # ---- datasets ------------------------------------------------------------------

    def _train_batches(self, epoch: int, skip: int) -> Any:
        from fastfood import loaders

        lcfg, k = self.config.loader, self.lay.replicas_per_pipeline
        steps = self.spe - skip

        def fn(shard: tuple[int, int], batch: int) -> Any:
            return loaders.build(
                self.kind, self.spec.train.files, self.spec.train.labels, training=True,
                batch_size=batch, image_size=lcfg.image_size, seed=self.config.train.seed,
                shard=shard, epoch=epoch, skip_batches=skip * k, crop=lcfg.train_crop,
                num_threads=lcfg.num_threads,
            ).take(steps * k)

        return distribute.distribute(self.strategy, fn, lcfg.batch_size, on_device=self.on_device)

    def _val_batches(self) -> Any:
        from fastfood import loaders

        lcfg = self.config.loader

        def fn(shard: tuple[int, int], batch: int) -> Any:
            return loaders.build(
                self.kind, self.spec.val.files, self.spec.val.labels, training=False,
                batch_size=batch, image_size=lcfg.image_size, shard=shard,
                num_threads=lcfg.num_threads,
            )

        return distribute.distribute(self.strategy, fn, lcfg.batch_size, on_device=self.on_device)

    def _drop_undecodable_val_files(self, err: Exception) -> bool:
        """Find the validation files that fail to decode, name them, and leave them out.

        The preflight catches most bad files cheaply; this backstop decodes each file once,
        only after a validation pass failed, as `fastfood evaluate` skips and names them.
        """
        import tensorflow as tf

        from fastfood.loaders.preprocess import eval_image

        size = self.config.loader.image_size
        keep, dropped = [], []
        for i, path in enumerate(self.spec.val.files):
            try:
                eval_image(tf.io.read_file(path), size)
                keep.append(i)
            except tf.errors.OpError as one:
                first = str(getattr(one, "message", one)).strip().splitlines()[0][:200]
                dropped.append((path, first))
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
        self.val_skipped.extend(dropped)
        return bool(keep)

    def _image_grid(self) -> None:
        """The first augmented training images, into TensorBoard, once per run."""
        from fastfood import loaders

        lcfg = self.config.loader
        n = min(GRID_IMAGES, len(self.spec.train))
        ds = loaders.build(self.kind, self.spec.train.files, self.spec.train.labels,
                           training=True, batch_size=n, image_size=lcfg.image_size,
                           seed=self.config.train.seed, crop=lcfg.train_crop,
                           num_threads=lcfg.num_threads)
        import tensorflow as tf

        try:
            for images, _ in ds.take(1):
                self.metrics.images(0, "augmented_inputs", images.numpy())
        except tf.errors.OpError:
            pass  # a file that fails to decode: training reports it by name

    # ---- the loop --------------------------------------------------------------------

    def validate(self, step: int, epoch: int) -> dict | None:
        if len(self.spec.val) == 0:
            return None
        import tensorflow as tf

        try:
            result = self.evaluate(self.steps["eval"], self._val_batches())
        except tf.errors.OpError as err:
            if not self._drop_undecodable_val_files(err):
                raise
            result = self.evaluate(self.steps["eval"], self._val_batches())
        self.metrics.log("val", step, epoch + 1, result)
        if self.progress:
            self.progress.message(val_line(step, epoch, result))
        if result["top1"] > self.best_top1:
            self.best_top1 = result["top1"]
            self.ckpts.save_best(step, result["top1"])
        self.last_val = {**result, "step": step}
        return result

    def _pipeline_failed(self, err: Exception, step: int, epoch: int, done: int) -> None:
        """An input pipeline error mid-epoch: save where we are, then one line naming the file."""
        path = self.save(step, epoch, done)
        message = str(getattr(err, "message", err))
        culprit = next((f for f in self.spec.train.files if f in message), None)
        first = next((line.strip() for line in message.splitlines() if line.strip()), "")
        what = f"cannot decode {culprit}" if culprit else first[:300]
        raise FastfoodError(
            f"the input pipeline failed at step {step} (epoch {epoch + 1}): {what}; "
            f"checkpoint {path} saved. Fix or remove the file, then: fastfood train --resume "
            f"--run-dir {self.ckpts.run_dir}"
        ) from None

    def _check_finite(self, step: int, loss: float) -> None:
        """Stop a diverged run before it checkpoints NaN weights over good ones."""
        if not math.isfinite(loss):
            raise FastfoodError(
                f"training diverged: loss is {loss} at step {step}; lower --lr (it is "
                f"{self.config.train.lr:g}). The last good checkpoint is in "
                f"{self.ckpts.run_dir / 'ckpt'}"
            )

    def save(self, step: int, epoch: int, batch_in_epoch: int) -> str:
        if batch_in_epoch >= self.spe:
            epoch, batch_in_epoch = epoch + 1, 0
        path = self.ckpts.save(Position(step, epoch, batch_in_epoch, self.best_top1))
        self.last_save = time.monotonic()
        return path

    def run(self, pos: Position, stop: StopFlag) -> dict:
        tcfg = self.config.train
        batch = self.config.loader.batch_size
        import tensorflow as tf

        self.best_top1 = pos.best_top1
        self.short_epochs = 0
        self.val_skipped: list[tuple[str, str]] = []
        self.last_val: dict | None = None
        self.last_save = time.monotonic()
        step, epoch, done = pos.step, pos.epoch, pos.batch_in_epoch
        if done >= self.spe:
            epoch, done = epoch + 1, 0
        if step >= self.total:
            self.say(f"already trained {step} of {self.total} steps; nothing to do")
        if step == 0 and self.chief:
            self._image_grid()
        trained = 0
        started = time.perf_counter()
        train_time = 0.0
        stopped = None
        try:
            while step < self.total and stopped is None:
                steps_here = min(self.spe, done + self.total - step)
                step_fn = self.steps["head"] if epoch < tcfg.freeze_epochs else self.steps["full"]
                iterator = iter(self._train_batches(epoch, done))
                if self.progress:
                    self.progress.start_epoch(epoch, steps_here, done)
                t_mark, since, first_done = time.perf_counter(), 0, done
                while done < steps_here:
                    try:
                        logs = step_fn(iterator)
                    except tf.errors.OutOfRangeError:
                        if done == first_done:
                            raise FastfoodError(
                                f"epoch {epoch + 1} produced no batches: the training images "
                                "fail to decode") from None
                        # Files that pass the preflight but fail to decode are dropped by
                        # the tf.data loader, so the epoch can come up a batch or so short.
                        self.say(f"epoch {epoch + 1} ended after {done} of {steps_here} "
                                 "batches (images that failed to decode were skipped)")
                        self.short_epochs += 1
                        steps_here = done
                        break
                    except tf.errors.OpError as err:
                        self._pipeline_failed(err, step, epoch, done)
                    step, done, since = step + 1, done + 1, since + 1
                    if since >= self.log_every or done == steps_here:
                        values = {k: float(v) for k, v in logs.items()}  # the host sync
                        self._check_finite(step, values["loss"])
                        now = time.perf_counter()
                        values["img/s"] = since * batch / max(now - t_mark, 1e-9)
                        train_time += now - t_mark
                        trained += since
                        self.metrics.log("train", step, epoch + 1, values)
                        if self.progress:
                            self.progress.update(step, done, values)
                        t_mark, since = now, 0
                    if stop.signum:
                        self._check_finite(step, float(logs["loss"]))
                        stopped = stop.name
                        break
                    if done < steps_here:
                        paused = False
                        if tcfg.val_every and step % tcfg.val_every == 0:
                            self.validate(step, epoch)
                            paused = True
                        if (tcfg.save_every and step % tcfg.save_every == 0) or \
                                time.monotonic() - self.last_save >= tcfg.save_every_s:
                            self._check_finite(step, float(logs["loss"]))
                            self.save(step, epoch, done)
                            paused = True
                        if paused:
                            now = time.perf_counter()
                            train_time += now - t_mark
                            trained += since
                            t_mark, since = now, 0
                if self.progress:
                    self.progress.end_epoch()
                if stopped:
                    break
                if done == steps_here and steps_here < self.spe and step < self.total:
                    done = self.spe  # a short epoch (see above) is a finished one
                if done == self.spe or step >= self.total:
                    self.validate(step, epoch)
                    self.save(step, epoch, done)
                    if done == self.spe:
                        epoch, done = epoch + 1, 0
        finally:
            if self.progress:
                self.progress.end_epoch()
        if stopped:
            path = self.save(step, epoch, done)
            exit_code = 128 + int(stop.signum or 0)
            self.say(
                f"stopped by {stopped} at step {step} of {self.total}; checkpoint {path}. "
                f"Resume with: fastfood train --resume --run-dir {self.ckpts.run_dir}"
            )
        else:
            exit_code = 0
            if self.last_val is None or self.last_val["step"] != step:
                self.validate(step, epoch)
            self.save(step, epoch, done)
            if self.chief:
                self.ckpts.save_final()
        self.metrics.close()
        return {
            "step": step,
            "total_steps": self.total,
            "epoch": epoch,
            "steps_per_epoch": self.spe,
            "best_top1": self.best_top1,
            "val": self.last_val,
            "train_img_per_s": trained * batch / train_time if train_time > 0 else None,
            "wall_s": round(time.perf_counter() - started, 2),
            "stopped_by": stopped,
            "short_epochs": self.short_epochs,
            "val_skipped": [{"file": f, "error": e} for f, e in self.val_skipped],
            "exit_code": exit_code,
        }
