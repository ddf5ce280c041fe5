"""Checkpoints: the last few in ckpt/, the best by validation top-1 in best/.

A checkpoint holds the model, the optimizer (momentum, its step counter that drives the
LR schedule, the loss scale) and where the loop was: global step, epoch and batches done
in that epoch, so a resumed run continues exactly where the saved one stopped.

Why a SIGKILL cannot leave a half-written checkpoint that gets picked up: TensorFlow
writes the data and index files first and only then rewrites the small `checkpoint`
state file (atomically, by rename) to name the new one; restore goes through that state
file. Files of an interrupted save are never listed. As a second guard, restore falls
back to the previous listed checkpoint if the newest cannot be read.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from fastfood.rundir import BEST_DIR, CKPT_DIR, FINAL_DIR
from fastfood.train.position import Position


def has_checkpoint(run_dir: str | Path) -> bool:
    """True when ckpt/ names at least one complete checkpoint (or, when its state file is
    damaged, holds ckpt-N files that restore() will try)."""
    import tensorflow as tf

    folder = Path(run_dir) / CKPT_DIR
    try:
        if tf.train.latest_checkpoint(str(folder)) is not None:
            return True
    except ValueError:  # an empty or unparsable state file
        pass
    return bool(_prefixes_on_disk(folder))


def _prefixes_on_disk(folder: Path) -> list[str]:
    """ckpt-N prefixes that have an index file, oldest first: the fallback when the state
    file cannot be read (fastfood never writes a bad one; a disk or a person can)."""
    found = []
    for index in folder.glob("ckpt-*.index"):
        number = index.name[len("ckpt-"):-len(".index")]
        if number.isdigit():
            found.append((int(number), str(index.with_suffix(""))))
    return [prefix for _, prefix in sorted(found)]


def _set_aside_bad_state(folder: Path) -> None:
    """Move an unreadable `checkpoint` state file out of CheckpointManager's way (kept)."""
    import tensorflow as tf

    state = folder / "checkpoint"
    if not state.is_file():
        return
    try:
        ok = tf.train.get_checkpoint_state(str(folder)) is not None
    except ValueError:
        ok = False
    if not ok:
        state.replace(state.with_name("checkpoint.unreadable"))
        print(f"fastfood: {state} is unreadable (moved to checkpoint.unreadable); "
              "looking for checkpoints by file name", file=sys.stderr)


def write_folder(run_dir: str | Path, chief: bool, task: tuple[str, int]) -> Path:
    """Where this process writes its checkpoints: the run dir for the chief (or one
    process); for another worker of a cluster, a private temporary folder on this
    machine's disk (TMPDIR). Every worker must take part in each save (a collective), but
    only the chief's copy is the run's: the others write theirs and delete it at once, so
    it must not cost the shared run dir's bandwidth and space (1.15 GB a save for a full
    VGG19 with its momentum)."""
    if chief:
        return Path(run_dir)
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"fastfood-{task[0]}{task[1]}-ckpt-"))


class Checkpoints:
    """The run's checkpoint managers and the loop-position variables they save.

    Create it inside the strategy's scope, after the optimizer is built, so restoring
    fills existing variables instead of deferring.
    """

    def __init__(self, run_dir: str | Path, model: Any, optimizer: Any, *, keep: int = 3,
                 source: str | Path | None = None, save_every_s: float = 0.0,
                 ema: Any = None):
        """`run_dir`: where this process writes. `source`: the run's own folder, where
        restores read from; a worker of a cluster that is not the chief writes into a
        scratch folder of its own (every worker must take part in a save) that is
        removed after each save, and restores from the chief's checkpoints in `source`.
        `save_every_s`: `timer_due()` says a save is due this long after the last (0: never).
        `ema`: the run's fastfood.train.ema.Ema, saved with the rest as `ema`."""
        import tensorflow as tf

        self.run_dir = Path(run_dir)
        self.source = Path(source) if source is not None else self.run_dir
        self.scratch = self.source.resolve() != self.run_dir.resolve()
        self._vars = {
            "step": tf.Variable(0, dtype=tf.int64, trainable=False, name="step"),
            "epoch": tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch"),
            "batch_in_epoch": tf.Variable(0, dtype=tf.int64, trainable=False,
                                          name="batch_in_epoch"),
            "best_top1": tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_top1"),
        }
        # What stopping early counts (fastfood.train.budget), kept apart: a checkpoint of an
        # earlier version has none of them and restores with their defaults.
        self._state = {
            "bad_validations": tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="bad_validations"),
            "train_seconds": tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                         name="train_seconds"),
            "fitted_steps": tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name="fitted_steps"),
        }
        self._objects = {"model": model, "optimizer": optimizer, **self._vars, **self._state}
        self._ema = ema
        if ema is not None:
            self._objects["ema"] = ema.trackable
        self.checkpoint = tf.train.Checkpoint(**self._objects)
        _set_aside_bad_state(self.run_dir / CKPT_DIR)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.run_dir / CKPT_DIR), max_to_keep=max(1, keep),
            checkpoint_name="ckpt",
        )
        self._best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")
        self._best_top1 = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="top1")
        self.best = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model, step=self._best_step, top1=self._best_top1),
            str(self.run_dir / BEST_DIR), max_to_keep=1, checkpoint_name="best",
        )
        self._model = model
        self.last_saved_step = -1
        self.restored_best_top1 = -1.0
        self.restored_state: dict[str, float] = {k: 0 for k in self._state}
        self.save_every_s = save_every_s
        self._saved_at = time.monotonic()

    def timer_due(self) -> bool:
        """Whether the wall-clock interval since the last save (or the start) has passed."""
        return time.monotonic() - self._saved_at >= self.save_every_s > 0

    def save(self, pos: Position, best_top1: float = -1.0,
             state: dict[str, float] | None = None) -> str:
        """Write a checkpoint for this position (once per step number), with the best
        validation top-1 so far and the early-stop `state` (bad_validations, train_seconds,
        fitted_steps)."""
        import tensorflow as tf

        if pos.step == self.last_saved_step:
            return self.manager.latest_checkpoint or ""
        for key, value in (("step", pos.step), ("epoch", pos.epoch),
                           ("batch_in_epoch", pos.batch_in_epoch),
                           ("best_top1", best_top1)):
            self._vars[key].assign(value)
        for key, value in (state or {}).items():
            self._state[key].assign(value)
        try:
            path = self.manager.save(checkpoint_number=pos.step)
        except (tf.errors.OpError, OSError) as err:
            raise _write_error(self.run_dir / CKPT_DIR / f"ckpt-{pos.step}", err,
                               self.manager.latest_checkpoint, self.run_dir) from None
        self.last_saved_step = pos.step
        self._saved_at = time.monotonic()
        self.clean_scratch()
        return path

    def latest(self) -> str:
        """The run's newest listed checkpoint ('' when there is none yet)."""
        import tensorflow as tf

        try:
            return tf.train.latest_checkpoint(str(self.source / CKPT_DIR)) or ""
        except ValueError:
            return ""

    def clean_scratch(self) -> None:
        """Remove this worker's scratch folder (a no-op for the chief or one process)."""
        if self.scratch:
            import shutil

            shutil.rmtree(self.run_dir, ignore_errors=True)

    def save_best(self, step: int, top1: float) -> str:
        """Replace best/ with the current weights (model only: what predict needs)."""
        self._best_step.assign(step)
        self._best_top1.assign(top1)
        path = self.best.save(checkpoint_number=step)
        self.clean_scratch()
        return path

    def save_final(self) -> str:
        """The weights at the end of training, model only, in final/."""
        import tensorflow as tf

        path = tf.train.Checkpoint(model=self._model).write(
            str(self.run_dir / FINAL_DIR / "final"))
        self.clean_scratch()
        return path

    def restore(self) -> Position | None:
        """Restore the newest readable checkpoint of the run; None when there is none.
        The best validation top-1 it recorded is then `restored_best_top1`."""
        if self.scratch:
            import tensorflow as tf

            state = tf.train.get_checkpoint_state(str(self.source / CKPT_DIR))
            listed = list(state.all_model_checkpoint_paths) if state else []
        else:
            listed = list(self.manager.checkpoints)
        paths = list(reversed(listed or _prefixes_on_disk(self.source / CKPT_DIR)))
        for i, path in enumerate(paths):
            try:
                self._restore_from(path)
            except Exception as err:  # noqa: BLE001 - a broken file must not end the run
                older = "; trying an older one" if i + 1 < len(paths) else ""
                print(f"fastfood: checkpoint {path} is unreadable ({type(err).__name__}){older}",
                      file=sys.stderr)
                continue
            self.last_saved_step = int(self._vars["step"].numpy())
            self.restored_best_top1 = float(self._vars["best_top1"].numpy())
            self.restored_state = {k: v.numpy().item() for k, v in self._state.items()}
            return Position(
                step=int(self._vars["step"].numpy()),
                epoch=int(self._vars["epoch"].numpy()),
                batch_in_epoch=int(self._vars["batch_in_epoch"].numpy()),
            )
        if paths:
            from fastfood.errors import FastfoodError

            raise FastfoodError(f"no readable checkpoint in {self.source / CKPT_DIR}")
        return None


    def _restore_from(self, path: str) -> None:
        """Restore every object the checkpoint holds; those it has none of (saved by an
        earlier version, or before a setting added them) keep their starting values."""
        import tensorflow as tf

        held = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
        required = ("model", "optimizer", *self._vars)
        objects = {k: v for k, v in self._objects.items() if k in required or k in held}
        tf.train.Checkpoint(**objects).restore(path).assert_existing_objects_matched()
        if self._ema is not None and "ema" not in held:  # --ema added on resume
            self._ema.reset()


def _write_error(prefix: Path, err: BaseException, previous: str | None, run_dir: Path):
    """A failed checkpoint write (disk full, quota, permissions) as one line for the user."""
    from fastfood.errors import FastfoodError

    text = str(getattr(err, "message", err)).strip()
    cause = text.splitlines()[0].rsplit("; ", 1)[-1].replace(" [Op:SaveV2]", "") if text else ""
    return FastfoodError(
        f"cannot write checkpoint {prefix}: {cause or type(err).__name__}; "
        + (f"{previous} is intact. " if previous else "")
        + f"Free space, then: fastfood train --resume --run-dir {run_dir}")
