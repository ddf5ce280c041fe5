"""Which run to serve, and its model loaded as fast as a cold process can.

The model is rebuilt from the run (config.json + classes.json,
then the weights of best/, else final/, else the newest ckpt/, model variables only), with
differences that matter for a cold `predict`:

- it is built under the dtype policy of the precision asked for (`fastfood.inference.precision`:
  float32 unless told otherwise, whatever the run was trained with), and the global policy
  is restored afterwards. The variables are float32 under every policy, so the same float32
  checkpoint restores into any of them.
- large variables start uninitialised instead of random (`fastload`), since the restore
  overwrites them anyway; the restore asserts that it matched every model variable, and a
  checkpoint that does not fit the run's config is a one-line error.

`inference_model` is what predict, evaluate and serve run (and what an export can run): the
model under the chosen precision with its batch norm folded into the convolutions
(`fastfood.model.fold`), so a BN run costs what the plain net costs. `load_run` gives the
run's own layout, unfolded (for calibration, the audit and tests of the checkpoint).

Building and restoring are timed as separate phases (FASTFOOD_TIMING). The returned RunInfo
carries the run's softmax temperature (`fastfood.calibrate`) when it was fitted for the
weights restored, else 1.
`--model PATH` names one checkpoint (a prefix such as runs/x/ckpt/ckpt-300) instead of the
run's default; its run directory is the nearest parent folder holding config.json.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dataclasses import dataclass

from fastfood.inference.precision import COLD_MAX_IMAGES, FP32, Precision, dtype_policy
from fastfood.inference.precision import check as check_precision
from fastfood.inference.precision import resolve as resolve_precision
from fastfood.phases import PhaseTimer
from fastfood.errors import FastfoodError, first_line
from fastfood.paths import runs_dir
from fastfood.rundir import CONFIG, RunInfo, latest_run_dir, read_info


def resolve_run_dir(
    run_dir: str | Path | None = None, model_path: str | Path | None = None
) -> Path:
    """The run to use: `run_dir`, else the one holding `model_path`, else the newest in runs/.

    FastfoodError (exit 2) when the folder is no run or runs/ has none.
    """
    if run_dir is not None and model_path is not None:
        raise FastfoodError("give --run-dir or --model, not both")
    if model_path is not None:
        return run_of_checkpoint(model_path)
    if run_dir is not None:
        path = Path(run_dir).expanduser()
        read_info(path)  # raises with the reason when it is no run
        return path
    newest = latest_run_dir()
    if newest is None:
        raise FastfoodError(
            f"no run under {runs_dir()}/ (train one with `fastfood train`, or pass --run-dir)"
        )
    return newest


def run_of_checkpoint(model_path: str | Path) -> Path:
    """The run directory of a checkpoint prefix: its nearest parent with a config.json."""
    path = Path(model_path).expanduser().absolute()
    if not (path.parent / f"{path.name}.index").is_file():
        raise FastfoodError(
            f"--model {model_path}: no checkpoint there (expected {path.name}.index next to it; "
            "give a prefix such as runs/NAME/ckpt/ckpt-300)"
        )
    for parent in path.parents:
        if (parent / CONFIG).is_file():
            return parent
    raise FastfoodError(f"--model {model_path}: no run directory (config.json) above it")


def readahead_weights(run_dir: str | Path) -> threading.Thread | None:
    """Ask the kernel to start reading the run's weights into the page cache, now.

    Called before TensorFlow is imported: that import is seconds of single-threaded CPU
    during which the disk is idle, so after a reboot (or a long idle) the ~550 MB of a full
    VGG19 can arrive while Python is still importing, instead of after. A no-op cost when the
    file is cached already. Done from a daemon thread (posix_fadvise WILLNEED can block while
    it queues the reads); the candidates are all of best/, final/ and the newest ckpt/.
    """
    if not hasattr(os, "posix_fadvise"):
        return None
    from fastfood.rundir import BEST_DIR, CKPT_DIR, FINAL_DIR

    run_dir = Path(run_dir)
    files = [f for d in (BEST_DIR, FINAL_DIR) for f in (run_dir / d).glob("*.data-*")]
    ckpts = sorted((run_dir / CKPT_DIR).glob("*.data-*"), key=lambda f: f.stat().st_mtime)
    files += ckpts[-1:]

    def advise() -> None:
        for f in files:
            try:
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
                finally:
                    os.close(fd)
            except OSError:
                pass

    thread = threading.Thread(target=advise, name="fastfood-readahead", daemon=True)
    thread.start()
    return thread


@contextmanager
def float32_policy() -> Iterator[None]:
    """Build under the float32 dtype policy, then put the previous global policy back."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def load_run(
    run_dir: str | Path,
    model_path: str | Path | None = None,
    timer: PhaseTimer | None = None,
    precision: Precision = FP32,
) -> tuple[Any, RunInfo]:
    """(keras.Model with trained weights, RunInfo) of a run, as it trained (batch norm
    unfolded), under `precision` (default float32); see the module doc."""
    from fastfood.inference.fastload import import_tensorflow, restored_variables_only

    timer = timer or PhaseTimer(enabled=False)
    with timer.phase("import_tensorflow"):
        tf = import_tensorflow()
    with timer.phase("import_model_code"):
        from fastfood import model as models
        from fastfood import rundir  # noqa: F401  (timed here, used below)

    info = read_info(run_dir)
    cfg = dataclasses.replace(info.config.model, convention=info.convention)
    with timer.phase("build_model"), dtype_policy(precision), restored_variables_only():
        model = models.build(cfg, load_weights=False, num_classes=info.num_classes)
    with timer.phase("restore_weights"):
        which, path = restore(model, info.run_dir, model_path, tf)
    from fastfood.rundir import temperature_for

    return model, dataclasses.replace(info, checkpoint=which, checkpoint_path=path,
                                      temperature=temperature_for(info.run_dir, path))


@dataclass(frozen=True)
class InferenceModel:
    """What predict, evaluate and serve run: the model, its run, its precision, and whether
    its batch norm was folded into the convolutions."""

    model: Any
    info: RunInfo
    precision: Precision
    folded: bool = False

    def to_json(self) -> dict[str, Any]:
        """The precision record JSON outputs carry."""
        from fastfood.inference.precision import record

        return record(self.precision, self.folded)


def inference_model(
    run_dir: str | Path,
    precision: str | Precision = "fp32",
    *,
    model_path: str | Path | None = None,
    timer: PhaseTimer | None = None,
    images: int | None = None,
    fold: bool | None = None,
) -> InferenceModel:
    """A run's model for inference: built under `precision` ('auto', 'fp32', 'bf16', 'fp16'
    or a chosen Precision; auto decided for `images` images when known), float32 weights
    restored, batch norm folded. An export can call `inference_model(run, "bf16").model`.

    `fold` None: fold unless only a handful of images (<= COLD_MAX_IMAGES) will be
    classified. Measured on a cold `predict one.jpg` (full width, 2 cores): folding costs
    0.44-0.59 s of CPU (a second build, the folded kernels, copying fc6's 400 MB), about
    what the whole batch-1 forward pass costs, while the BN it removes is a few per cent of
    that pass; over batches the fold is paid once and saves on every image."""
    from fastfood.inference.fastload import import_tensorflow, restored_variables_only

    timer = timer or PhaseTimer(enabled=False)
    if isinstance(precision, str):
        check_precision(precision)  # a bad value fails before TensorFlow is imported
    with timer.phase("import_tensorflow"):
        import_tensorflow()
    chosen = resolve_precision(precision, images)
    model, info = load_run(run_dir, model_path, timer, chosen)
    from fastfood import model as models

    if fold is None:
        fold = images is None or images > COLD_MAX_IMAGES
    if not fold or models.norm_of(model) != "batch":
        return InferenceModel(model, info, chosen)
    from fastfood.model.fold import fold_into

    cfg = dataclasses.replace(info.config.model, convention=info.convention, norm="none")
    with timer.phase("fold_batch_norm"):
        with dtype_policy(chosen), restored_variables_only():
            plain = models.build(cfg, load_weights=False, num_classes=info.num_classes)
        fold_into(model, plain)
    return InferenceModel(plain, info, chosen, folded=True)


def restore(model: Any, run_dir: Path, model_path: str | Path | None, tf: Any) -> tuple[str, str]:
    """Restore the model's variables (only those: no optimizer slots), all of them or an error.

    A run's weights come from `restore_weights` (best/, else final/, else the newest ckpt/,
    each read with `Checkpoint.read()` and checked to have matched every model variable);
    `--model PATH` is read the same way.
    """
    from fastfood.rundir import read_weights, restore_weights

    if model_path is None:
        return restore_weights(model, run_dir)
    path = str(Path(model_path).expanduser())
    try:
        read_weights(model, path)
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as err:
        # IndexError: TF's reader on a truncated data file ('Read less bytes than requested')
        first = first_line(err)
        raise FastfoodError(
            f"{path}: this checkpoint does not fit the run's model (config.json) "
            f"({type(err).__name__}: {first[:200]})"
        ) from None
    return "model", path
