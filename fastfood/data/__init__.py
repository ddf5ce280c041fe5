"""The data layer: turns a dataset folder into class names and file lists.

No tensors and no TensorFlow here, so the CLI can check a dataset instantly and every
loader (DALI, tf.data) consumes the same lists. Two layouts are understood:

- Food-101: meta/classes.txt, meta/train.txt (train, val carved out of it), meta/test.txt
  (test), images/<class>/<id>.jpg
- class folders: <class>/*.jpg|jpeg|png (split here), or train/<class> beside val/<class>
  and/or test/<class>
- packed shards (`fastfood pack`, `shards.py`): TFRecord files and a manifest; the splits
  were fixed when they were packed, and the records are named `<shard>#<number>`

Every spec has train, val and test splits; test may be empty (class folders with no
test_fraction), and training never reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fastfood.data.folders import is_presplit, load_folders
from fastfood.data.food101 import is_food101, load_food101
from fastfood.data.safety import check_held_out, check_root, check_val_fraction
from fastfood.data.shards import is_shards, load_shards
from fastfood.data.spec import DatasetSpec, Split
from fastfood.errors import FastfoodError

if TYPE_CHECKING:
    from fastfood.config import DataConfig

__all__ = ["DatasetSpec", "Split", "check_root", "detect_layout", "load", "load_config",
           "root_of"]


def detect_layout(root: str | os.PathLike[str]) -> str:
    """'food101', 'shards', 'presplit' or 'folders' (the loader-facing layout of both of
    the latter is 'folders'). A meta/ folder with split files but no classes.txt is
    reported rather than mistaken for a class called 'meta'."""
    path = check_root(root)
    if is_shards(path):
        return "shards"
    if is_food101(path):
        return "food101"
    meta = path / "meta"
    if (meta / "train.txt").exists() or (meta / "test.txt").exists():
        raise FastfoodError(f"missing {meta / 'classes.txt'} (needed with {meta / 'train.txt'})")
    return "presplit" if is_presplit(path) else "folders"


def load(root: str | os.PathLike[str], val_fraction: float = 0.1, seed: int = 0,
         test_fraction: float = 0.0, val_from: str = "train",
         group_duplicates: bool = False) -> DatasetSpec:
    """Read and check a dataset; the same inputs give the same spec on every run.

    `val_fraction` and `seed` draw val out of Food-101's train.txt and out of class
    folders without val/; `test_fraction` only matters for class folders without train/.
    `val_from` is Food-101's: 'train' (carved, the default) or 'test' (test.txt, as runs
    saved before the test split read it). `group_duplicates` keeps duplicate images on one
    side of a class-folder split (`fastfood.data.grouped`). Any problem raises
    FastfoodError with a one-line message naming the file (and line).
    """
    fraction = check_val_fraction(val_fraction)
    test_share = check_val_fraction(test_fraction, "test_fraction")
    check_held_out(fraction, test_share)
    path: Path = check_root(root)
    layout = detect_layout(path)
    if layout == "shards":  # split when packed: the fractions and seed were fixed then
        return load_shards(path)
    if layout == "food101":
        return load_food101(path, fraction, int(seed), val_from)
    return load_folders(path, fraction, int(seed), test_share,
                        group_duplicates=bool(group_duplicates))


def root_of(root: str | os.PathLike[str]) -> Path:
    """The dataset a config's root names: the built-in sample (made on first use) when empty."""
    if not str(root):
        from fastfood.data.sample import default_sample

        return default_sample()
    return Path(root)


def load_config(cfg: "DataConfig", root: str | os.PathLike[str] | None = None) -> DatasetSpec:
    """The dataset a DataConfig describes (see `load`), at `root` instead of cfg.root when
    given (evaluate --data)."""
    return load(root_of(cfg.root if root is None else root), cfg.val_fraction, cfg.split_seed,
                cfg.test_fraction, cfg.val_from, cfg.group_duplicates)
