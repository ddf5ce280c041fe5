"""The data layer: turns a dataset folder into class names and file lists.

No tensors and no TensorFlow here, so the CLI can check a dataset instantly and every
loader (DALI, tf.data) consumes the same lists. Two layouts are understood:

- Food-101: meta/classes.txt, meta/train.txt, meta/test.txt (val), images/<class>/<id>.jpg
- class folders: <class>/*.jpg|jpeg|png (split here), or train/<class> + val/<class>
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fastfood.data.folders import is_presplit, load_folders
from fastfood.data.food101 import is_food101, load_food101
from fastfood.data.safety import check_root, check_val_fraction
from fastfood.data.spec import DatasetSpec, Split
from fastfood.errors import FastfoodError

if TYPE_CHECKING:
    from fastfood.config import DataConfig

__all__ = ["DatasetSpec", "Split", "check_root", "detect_layout", "load", "load_config",
           "root_of"]


def detect_layout(root: str | os.PathLike[str]) -> str:
    """'food101', 'presplit' or 'folders' (the loader-facing layout of both of the
    latter is 'folders'). A meta/ folder with split files but no classes.txt is
    reported rather than mistaken for a class called 'meta'."""
    path = check_root(root)
    if is_food101(path):
        return "food101"
    meta = path / "meta"
    if (meta / "train.txt").exists() or (meta / "test.txt").exists():
        raise FastfoodError(f"missing {meta / 'classes.txt'} (needed with {meta / 'train.txt'})")
    return "presplit" if is_presplit(path) else "folders"


def load(root: str | os.PathLike[str], val_fraction: float = 0.1, seed: int = 0,
         group_duplicates: bool = False) -> DatasetSpec:
    """Read and check a dataset; the same inputs give the same spec on every run.

    `val_fraction`, `seed` and `group_duplicates` (keep duplicate images on one side,
    `fastfood.data.grouped`) matter only for class folders without train/ and val/.
    Any problem raises FastfoodError with a one-line message naming the file (and line).
    """
    fraction = check_val_fraction(val_fraction)
    path: Path = check_root(root)
    layout = detect_layout(path)
    if layout == "food101":
        return load_food101(path)
    return load_folders(path, fraction, int(seed), group_duplicates=bool(group_duplicates))


def root_of(root: str | os.PathLike[str]) -> Path:
    """The dataset a config's root names: the built-in sample (made on first use) when empty."""
    if not str(root):
        from fastfood.data.sample import default_sample

        return default_sample()
    return Path(root)


def load_config(cfg: "DataConfig") -> DatasetSpec:
    """The dataset a DataConfig describes (see `load`)."""
    return load(root_of(cfg.root), cfg.val_fraction, cfg.split_seed, cfg.group_duplicates)
