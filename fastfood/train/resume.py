"""Where a training run goes, and whether a run dir that holds one may be continued.

`resolve` reads the data, picks the run dir and decides between a fresh run, a resume and
a refusal: settings that shape the weights or the meaning of the saved position
(`STRUCTURAL`) may not change, other settings may change only with --resume.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.rundir import latest_run_dir, new_run_dir, read_classes, read_config

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
    if spec is None:
        spec = data.load_config(config.data)
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
