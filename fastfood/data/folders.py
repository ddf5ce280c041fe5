"""The class-folder layout: ROOT/<class>/*.jpg, or ROOT/train/<class> + ROOT/val/<class>.

Without train/ and val/ the validation split is drawn per class from a hash of
(seed, class, file name), so it is stratified, the same on every run and machine, and
unchanged for existing classes when a new class folder is added.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

from fastfood.data.safety import RootGuard
from fastfood.data.spec import DatasetSpec, Split
from fastfood.errors import FastfoodError

IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def is_presplit(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "val").is_dir()


def load_folders(root: Path, val_fraction: float, seed: int, *,
                 group_duplicates: bool = False) -> DatasetSpec:
    guard = RootGuard(root)
    if is_presplit(root):
        train_sets = class_images(root / "train", guard)
        val_sets = class_images(root / "val", guard)
        if set(train_sets) != set(val_sets):
            only_t = sorted(set(train_sets) - set(val_sets))
            only_v = sorted(set(val_sets) - set(train_sets))
            where = (f"{root / 'train'} has {only_t} not in {root / 'val'}" if only_t
                     else f"{root / 'val'} has {only_v} not in {root / 'train'}")
            raise FastfoodError(f"class folders differ: {where}")
        classes = tuple(sorted(train_sets))
        train = _flatten(classes, train_sets)
        val = _flatten(classes, val_sets)
    else:
        per_class = class_images(root, guard)
        classes = tuple(sorted(per_class))
        if group_duplicates:  # duplicate clusters stay on one side (fastfood.data.grouped)
            from fastfood.data.grouped import split_grouped

            halves = split_grouped(per_class, val_fraction, seed)
        else:
            halves = {name: split_class(name, per_class[name], val_fraction, seed)
                      for name in classes}
        train = _flatten(classes, {name: half[0] for name, half in halves.items()})
        val = _flatten(classes, {name: half[1] for name, half in halves.items()})
    return DatasetSpec(str(root), "folders", classes, classes, train, val)


def val_count(n: int, val_fraction: float) -> int:
    """round(n * fraction), but at least one (when n >= 2) and never the whole class."""
    if n < 2 or val_fraction <= 0:
        return 0
    return min(n - 1, max(1, math.floor(n * val_fraction + 0.5)))


def split_class(
    name: str, files: list[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """(train, val) for one class, both in input order; val = lowest hash ranks.

    Ranking by a hash of the file's own name keeps the split stable across Python
    versions and folder moves, and only nudges it when images are added.
    """
    k = val_count(len(files), val_fraction)
    chosen = set(sorted(files, key=lambda path: file_rank(seed, name, path))[:k])
    return [f for f in files if f not in chosen], [f for f in files if f in chosen]


def file_rank(seed: int, name: str, path: str) -> bytes:
    """Where a file of class `name` stands in the val draw (lowest first)."""
    key = f"{seed}\0{name}\0{os.path.basename(path)}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(key).digest()


def class_images(folder: Path, guard: RootGuard) -> dict[str, list[str]]:
    """{class name: sorted absolute image paths} for the sub-folders of `folder`."""
    result: dict[str, list[str]] = {}
    for entry in _listdir(str(folder)):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        why = guard.problem(entry.path, "dir")
        if why:
            raise FastfoodError(f"class folder {entry.path} {why}")
        files = []
        for item in (e.name for e in _listdir(entry.path)):
            if item.startswith(".") or not item.lower().endswith(IMAGE_EXTS):
                continue
            path = os.path.join(entry.path, item)
            why = guard.problem(path)
            if why:
                raise FastfoodError(f"image {path} {why}")
            files.append(path)
        if not files:
            raise FastfoodError(f"class folder {entry.path} has no images (.jpg, .jpeg, .png)")
        result[entry.name] = files
    if len(result) < 2:
        raise FastfoodError(
            f"{folder}: needs at least two class folders of images, found {len(result)}"
        )
    return result


def _listdir(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as err:
        raise FastfoodError(f"cannot list {folder}: {err.strerror}") from None


def _flatten(classes: tuple[str, ...], sets: dict[str, list[str]]) -> Split:
    files = [f for name in classes for f in sets[name]]
    labels = [i for i, name in enumerate(classes) for _ in sets[name]]
    return Split(tuple(files), tuple(labels))
