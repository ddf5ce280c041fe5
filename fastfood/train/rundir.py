"""The run directory: what a training run leaves behind, and how others read it back.

    runs/<name>/
      config.json     the resolved RunConfig (data root, classes count, convention filled in)
      classes.json    {"classes": [...], "display_names": [...], "convention": "slim"}
      metrics.jsonl   one JSON object per line: kind (train|val), step, epoch, time, values
      tb/train, tb/val  TensorBoard summaries
      ckpt/           the last few full checkpoints (model, optimizer, loop position)
      best/           the weights with the best validation top-1 so far
      final/          the weights at the end of training
      summary.json    written when training finishes

predict, evaluate, export and serve load a run with `fastfood.serve.runs.load_run`; the
trainer calls `resolve(...)`, which decides between a fresh run, a resume, and a refusal.
"""

from __future__ import annotations

import dataclasses
import json
import os
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

#: Settings a resumed run must share with the run it continues: they shape the weights
#: or the meaning of the saved position in the epoch.
STRUCTURAL = (
    ("model", "num_classes", "classes"),
    ("model", "width", "--width"),
    ("model", "image_size", "--image-size"),
    ("model", "convention", "weights convention"),
    ("model", "weights", "--weights"),
    ("loader", "batch_size", "--batch-size"),
)

#: Fields that never make two runs different (where the run is, bookkeeping of resume).
IGNORED = {("train", "run_dir")}


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

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return self.config.model.image_size


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


def differences(old: RunConfig, new: RunConfig) -> list[tuple[str, str, Any, Any]]:
    """(section, field, old, new) for every setting that differs, ignoring bookkeeping.

    A field left empty in `new` (the convention before the model is built, the class
    count before the data is read) is not a difference.
    """
    out = []
    a, b = old.to_dict(), new.to_dict()
    for section in a:
        for key, old_value in a[section].items():
            new_value = b.get(section, {}).get(key)
            if (section, key) in IGNORED:
                continue
            if key in ("convention", "num_classes") and new_value in ("", 0, None):
                continue
            if old_value != new_value:
                out.append((section, key, old_value, new_value))
    return out


def _describe(diffs: list[tuple[str, str, Any, Any]]) -> str:
    return ", ".join(f"{section}.{key} {old!r} -> {new!r}" for section, key, old, new in diffs[:4]) \
        + (f" and {len(diffs) - 4} more" if len(diffs) > 4 else "")


def check_resumable(run_dir: Path, old: RunConfig, new: RunConfig,
                    old_classes: list[str] | None, new_classes: tuple[str, ...]) -> None:
    """Refuse to continue a run whose weights or position mean something else now."""
    if old_classes is not None and list(old_classes) != list(new_classes):
        gone = [c for c in old_classes if c not in new_classes][:3]
        added = [c for c in new_classes if c not in old_classes][:3]
        detail = f"missing {gone}" if gone else ""
        detail += ("; " if detail and added else "") + (f"new {added}" if added else "")
        detail = detail or "same names in another order"
        raise FastfoodError(
            f"cannot resume {run_dir}: the dataset's classes differ from the run's "
            f"({len(old_classes)} vs {len(new_classes)} classes: {detail})"
        )
    a, b = old.to_dict(), new.to_dict()
    for section, key, flag in STRUCTURAL:
        was, now = a[section][key], b[section][key]
        if now in ("", 0, None) and key in ("convention", "num_classes"):
            continue
        if was != now:
            raise FastfoodError(
                f"cannot resume {run_dir}: {flag} was {was!r} there, now {now!r} "
                "(start a new run with another --run-dir)"
            )


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


def _check_writable_place(run_dir: Path) -> None:
    """--run-dir must be (or be creatable as) a folder: say so now, before the slow part."""
    for path in (run_dir, *run_dir.parents):
        if path.exists():
            if not path.is_dir():
                what = "--run-dir" if path == run_dir else "a parent of --run-dir"
                raise FastfoodError(f"{what} {path} is a file, not a folder")
            return


def resolve(config: RunConfig, resume: bool, spec: Any) -> tuple[RunConfig, Any, Path, bool]:
    """Read the data, pick the run dir, and decide: fresh run, continue, or refuse.

    Returns (config with data root, class count and run dir filled in, the DatasetSpec,
    the run dir, whether a checkpoint is there to continue from). In a multi-worker
    cluster (TF_CONFIG set) --run-dir is required: every worker must name the same
    folder, which a timestamped default cannot guarantee.
    """
    from fastfood import data
    from fastfood.train import recipe
    from fastfood.train.checkpoints import has_checkpoint

    config = recipe.resolve(config)  # no 'auto' or None left: what config.json keeps
    root = config.data.root
    if not root:
        from fastfood.data.sample import default_sample

        root = str(default_sample())
    if spec is None:
        spec = data.from_config(config.data, root)
    if len(spec.train) == 0:
        raise FastfoodError(f"--data {spec.root}: the training split has no images")
    if config.train.run_dir:
        run_dir = Path(config.train.run_dir)
    elif os.environ.get("TF_CONFIG"):
        raise FastfoodError("--run-dir is required when TF_CONFIG is set: every worker of "
                            "the cluster must name the same (shared) folder")
    elif resume:
        found = latest_run_dir()
        if found is None:
            raise FastfoodError("--resume: no run under runs/ to resume; pass --run-dir")
        run_dir = found
    else:
        run_dir = new_run_dir()
    _check_writable_place(run_dir)
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, root=str(spec.root)),
        model=dataclasses.replace(config.model, num_classes=len(spec.classes)),
        train=dataclasses.replace(config.train, run_dir=str(run_dir)),
    )
    old = read_config(run_dir)
    if old is None:
        if resume and not run_dir.exists():
            raise FastfoodError(f"--resume: run directory {run_dir} does not exist")
        return config, spec, run_dir, False
    old_classes = read_classes(run_dir)
    diffs = [d for d in differences(old, config)  # val_from means something for Food-101 only
             if d[:2] != ("data", "val_from") or spec.layout == "food101"]
    if diffs and not resume:
        shown = ", ".join(f"{s}.{k} {a!r} -> {b!r}" for s, k, a, b in diffs[:3])
        more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
        raise FastfoodError(
            f"{run_dir} holds a run with other settings ({shown}{more}); pass --resume to "
            "continue it with these settings, or choose another --run-dir"
        )
    check_resumable(run_dir, old, config, old_classes["classes"] if old_classes else None,
                    spec.classes)
    if old.model.convention and not config.model.convention:
        config = dataclasses.replace(
            config, model=dataclasses.replace(config.model, convention=old.model.convention))
    return config, spec, run_dir, has_checkpoint(run_dir)
