"""The class-folder layout: ROOT/<class>/*.jpg, or ROOT/train/<class> beside ROOT/val/<class>
and/or ROOT/test/<class>.

Without those folders the held-out splits are drawn per class from a hash of
(seed, class, file name), so they are stratified, the same on every run and machine, and
unchanged for existing classes when a new class folder is added. The test share takes the
lowest ranks and val the next ones, so the test files depend only on the seed and
test_fraction: runs that differ in val_fraction are scored on the same test images.
With ROOT/train and ROOT/test but no ROOT/val, val is drawn out of ROOT/train the same
way (as Food-101's val is drawn out of meta/train.txt).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import NamedTuple

from fastfood.data.safety import RootGuard
from fastfood.data.spec import DatasetSpec, Split
from fastfood.errors import FastfoodError

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
SPLIT_FOLDERS = ("train", "val", "test")


class Parts(NamedTuple):
    """One class's files by split, each in input order."""

    train: list[str]
    val: list[str]
    test: list[str]


def is_presplit(root: Path) -> bool:
    """ROOT/train beside ROOT/val or ROOT/test (train alone could be a class named 'train')."""
    return (root / "train").is_dir() and ((root / "val").is_dir() or (root / "test").is_dir())


def load_folders(root: Path, val_fraction: float, seed: int, test_fraction: float = 0.0, *,
                 group_duplicates: bool = False) -> DatasetSpec:
    guard = RootGuard(root)
    if is_presplit(root):
        sets = {name: class_images(root / name, guard) for name in SPLIT_FOLDERS
                if (root / name).is_dir()}
        for name in sets:
            _check_same_classes(root, sets["train"], name, sets[name])
        classes = tuple(sorted(sets["train"]))
        if "val" in sets:
            parts = {c: Parts(sets["train"][c], sets["val"][c], sets.get("test", {}).get(c, []))
                     for c in classes}
        else:  # train/ and test/: val is drawn out of train/
            parts = {c: split_class(c, sets["train"][c], val_fraction, seed)._replace(
                test=sets["test"][c]) for c in classes}
    else:
        per_class = class_images(root, guard)
        classes = tuple(sorted(per_class))
        keys: dict[str, str] = {}
        if group_duplicates:  # duplicate clusters stay on one side (fastfood.data.grouped)
            from fastfood.data.grouped import cluster_keys

            keys = cluster_keys(per_class)
        parts = {c: split_class(c, per_class[c], val_fraction, seed, test_fraction, keys)
                 for c in classes}
    train, val, test = (_flatten(classes, {c: p[i] for c, p in parts.items()}) for i in range(3))
    return DatasetSpec(str(root), "folders", classes, classes, train, val, test)


def _check_same_classes(root: Path, train: dict[str, list[str]], name: str,
                        other: dict[str, list[str]]) -> None:
    only_t = sorted(set(train) - set(other))
    only_o = sorted(set(other) - set(train))
    if only_t or only_o:
        where = (f"{root / 'train'} has {only_t} not in {root / name}" if only_t
                 else f"{root / name} has {only_o} not in {root / 'train'}")
        raise FastfoodError(f"class folders differ: {where}")


def val_count(n: int, val_fraction: float) -> int:
    """round(n * fraction), but at least one (when n >= 2) and never the whole class."""
    if n < 2 or val_fraction <= 0:
        return 0
    return min(n - 1, max(1, math.floor(n * val_fraction + 0.5)))


def split_class(name: str, files: list[str], val_fraction: float, seed: int,
                test_fraction: float = 0.0, keys: dict[str, str] | None = None) -> Parts:
    """(train, val, test) for one class, each in input order: test = the lowest hash
    ranks, val = the next ones, and at least one file is left to train on. `keys` maps a
    file to its duplicate cluster: a cluster goes to one side whole (a share it would
    overshoot skips it), so without duplicates the split is the plain one.

    Ranking by a hash of the file's own name keeps the split stable across Python
    versions and folder moves, and only nudges it when images are added.
    """
    n_test = val_count(len(files), test_fraction)
    n_val = min(val_count(len(files), val_fraction), max(0, len(files) - n_test - 1))
    units: dict[str, list[str]] = {}
    for f in files:  # a cluster of duplicates is one unit; alone, a file is its own
        units.setdefault((keys or {}).get(f, f), []).append(f)
    ranked = sorted(units.values(), key=lambda unit: min(file_rank(seed, name, f) for f in unit))
    test: set[str] = set()
    val: set[str] = set()
    for unit in ranked:  # units that would overshoot a share go on to the next one, or train
        if len(test) + len(unit) <= n_test:
            test.update(unit)
        elif len(val) + len(unit) <= n_val:
            val.update(unit)
        if len(test) == n_test and len(val) == n_val:
            break
    return Parts([f for f in files if f not in test and f not in val],
                 [f for f in files if f in val], [f for f in files if f in test])


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
        for item in _listdir(entry.path):
            if item.name.startswith(".") or not item.name.lower().endswith(IMAGE_EXTS):
                continue
            path = item.path
            # A plain regular file in a folder already checked is inside the root: the
            # directory entry says so without a syscall (100,000 lstat calls saved on
            # Food-101's count); a link or anything else gets the full check.
            if item.is_symlink() or not item.is_file(follow_symlinks=False):
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
