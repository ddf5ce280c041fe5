"""The run directory: the format a training run leaves behind, read by everyone else.

    runs/<name>/
      config.json     the resolved RunConfig (data root, classes count, convention filled in)
      classes.json    {"classes": [...], "display_names": [...], "convention": "slim"}
      metrics.jsonl   one JSON object per line: kind (train|val), step, epoch, time, values
      tb/train, tb/val  TensorBoard summaries
      ckpt/           the last few full checkpoints (model, optimizer, loop position)
      best/           the weights with the best validation top-1 so far
      final/          the weights at the end of training
      summary.json    written when training finishes
      calibration.json  the fitted softmax temperature and its checkpoint (fastfood.calibrate)
      eval_<split>.json, predictions_<split>.csv, report_<split>.html  what evaluate found

A neutral module: training writes this format, and inference, the server, evaluate and the
benchmarks read it, so none of them imports another's package to find a file. Whether a
run dir may be continued is a training decision (`fastfood.train.resume`).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.paths import runs_dir

CONFIG = "config.json"
CLASSES = "classes.json"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
TB = "tb"
CKPT_DIR = "ckpt"
BEST_DIR = "best"
FINAL_DIR = "final"
CALIBRATION = "calibration.json"

@dataclass(frozen=True)
class RunInfo:
    """A trained run as its consumers see it."""

    run_dir: Path
    config: RunConfig
    classes: tuple[str, ...]
    display_names: tuple[str, ...]
    convention: str
    checkpoint: str = ""  # which weights load_run restored: best | final | latest
    checkpoint_path: str = ""
    temperature: float = 1.0  # softmax(logits / T): calibration.json's, when it fits the weights

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return self.config.model.image_size

    @property
    def exif(self) -> bool:
        """Whether the run reads JPEGs upright by their EXIF tag (as it was trained)."""
        return self.config.loader.exif == "on"

def new_run_dir(parent: str | Path | None = None) -> Path:
    """runs/<YYYYmmdd-HHMMSS>, with a -2, -3, ... suffix if that exists already."""
    base = Path(parent) if parent is not None else runs_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = base / stamp, 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    return path

def latest_run_dir(parent: str | Path | None = None) -> Path | None:
    """The most recently modified run under `parent` (runs/) that has a config.json."""
    base = Path(parent) if parent is not None else runs_dir()
    if not base.is_dir():
        return None
    runs = [p for p in base.iterdir() if (p / CONFIG).is_file()]
    return max(runs, key=lambda p: (p / CONFIG).stat().st_mtime) if runs else None

def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename): a kill never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)

def read_config(run_dir: str | Path) -> RunConfig | None:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return None
    try:
        return RunConfig.load(path)
    except (ValueError, TypeError, FastfoodError) as err:  # FastfoodError: a value out of range
        raise FastfoodError(f"{path}: not a fastfood run config ({err})") from None

def read_classes(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / CLASSES
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return {"classes": list(data["classes"]),
                "display_names": list(data.get("display_names") or data["classes"]),
                "convention": str(data.get("convention", ""))}
    except (ValueError, KeyError, TypeError) as err:
        raise FastfoodError(f"{path}: not a fastfood classes file ({err})") from None

def write_start(run_dir: Path, config: RunConfig, classes: tuple[str, ...],
                display_names: tuple[str, ...]) -> None:
    """config.json and classes.json, written when the run starts or resumes."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG, config.to_dict())
    write_json(run_dir / CLASSES, {"classes": list(classes),
                                   "display_names": list(display_names),
                                   "convention": config.model.convention})

def read_info(run_dir: str | Path) -> RunInfo:
    """config.json + classes.json of a run, checked; FastfoodError when it is no run."""
    path = Path(run_dir)
    if not path.is_dir():
        raise FastfoodError(f"run directory {path} does not exist")
    config = read_config(path)
    classes = read_classes(path)
    if config is None or classes is None:
        missing = CONFIG if config is None else CLASSES
        raise FastfoodError(f"{path} is not a fastfood run directory (no {missing})")
    convention = classes["convention"] or config.model.convention or "slim"
    return RunInfo(path, config, tuple(classes["classes"]), tuple(classes["display_names"]),
                   convention)

def ema_targets(model: Any) -> list:
    """The weights an EMA averages (fastfood.train.ema), in the order a checkpoint's
    `ema/shadow` holds them: every float weight of the model."""
    return [w for w in model.weights if "float" in str(w.dtype)]


def read_weights(model: Any, path: str) -> None:
    """Read a checkpoint's model weights into `model` (asserting every one matched); where
    the checkpoint also holds an EMA of them (a full ckpt/ save of a run trained with
    --ema), the average is what is read, as best/ and final/ of such a run hold it."""
    import tensorflow as tf

    tf.train.Checkpoint(model=model).read(path).expect_partial() \
        .assert_existing_objects_matched()
    held = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    if "ema" in held:
        tf.train.Checkpoint(ema=tf.train.Checkpoint(shadow=ema_targets(model))) \
            .read(path).expect_partial().assert_existing_objects_matched()


def restore_weights(model: Any, run_dir: str | Path) -> tuple[str, str]:
    """Load trained weights into `model`: best/, else final/, else the latest ckpt/.

    Returns (which, path). Only the model is read; optimizer state is skipped.
    """
    import tensorflow as tf

    run_dir = Path(run_dir)
    candidates = [
        ("best", tf.train.latest_checkpoint(str(run_dir / BEST_DIR))),
        ("final", str(run_dir / FINAL_DIR / "final")
         if (run_dir / FINAL_DIR / "final.index").exists() else None),
        ("latest", tf.train.latest_checkpoint(str(run_dir / CKPT_DIR))),
    ]
    problems = []
    for which, path in candidates:
        if not path:
            continue
        try:  # read(): final/ is a model-only write() without the save_counter restore() wants
            read_weights(model, path)
        except (tf.errors.OpError, AssertionError, ValueError, IndexError) as err:
            problems.append(f"{path} ({type(err).__name__})")
            continue
        return which, path
    if problems:
        raise FastfoodError(f"{run_dir}: no checkpoint can be loaded: {'; '.join(problems)}")
    raise FastfoodError(f"{run_dir} has no checkpoint (looked in best/, final/ and ckpt/)")


def relative_checkpoint(run_dir: str | os.PathLike[str], checkpoint_path: str) -> str:
    """A checkpoint prefix as the run dir sees it (best/best-3), whatever the spelling."""
    try:
        return Path(os.path.relpath(os.path.abspath(checkpoint_path),
                                    os.path.abspath(run_dir))).as_posix()
    except ValueError:  # another drive (Windows)
        return str(checkpoint_path)


def read_calibration(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """calibration.json of a run (`fastfood.calibrate` writes it), or None when it has
    none (or it cannot be read)."""

    path = Path(run_dir) / CALIBRATION
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        t = float(data["temperature"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (math.isfinite(t) and t > 0):
        return None
    return data


def temperature_for(run_dir: str | os.PathLike[str], checkpoint_path: str, *,
                    warn: bool = True) -> float:
    """The run's fitted temperature when it was fitted for `checkpoint_path`, else 1.0
    (see the module doc); says why on stderr when a calibration exists but does not fit."""
    data = read_calibration(run_dir)
    if data is None:
        return 1.0
    here = relative_checkpoint(run_dir, checkpoint_path)
    if data.get("checkpoint") != here:
        if warn:
            print(f"fastfood: {Path(run_dir) / CALIBRATION} was fitted for "
                  f"{data.get('checkpoint')!r}, not {here!r}: probabilities are uncalibrated "
                  "(T = 1); run `fastfood calibrate` to fit these weights", file=sys.stderr)
        return 1.0
    return float(data["temperature"])
