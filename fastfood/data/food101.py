"""The Food-101 layout: meta/classes.txt, meta/train.txt, meta/test.txt (+ labels.txt).

Lines of train.txt/test.txt are `class/image_id`; the image is images/class/image_id.jpg.
test.txt is the test split, as in the Food-101 paper, so results compare with published
ones; validation is carved out of train.txt per class (`split_class`, the hash the class
folders use), so picking the best checkpoint never looks at the test images.

`val_from="test"` is the older reading, where test.txt was also the validation split and
all of train.txt was trained on. Runs saved before the test split existed read back with
it (fastfood.config.RunConfig.from_dict), so resuming or evaluating them on 'val' means
what it meant when they were trained.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastfood.config import VAL_FROM
from fastfood.data.folders import split_class
from fastfood.data.safety import RootGuard, bad_class_name, bad_relpath, read_lines
from fastfood.data.spec import DatasetSpec, Split
from fastfood.errors import FastfoodError

IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def is_food101(root: Path) -> bool:
    return (root / "meta" / "classes.txt").is_file()


def load_food101(root: Path, val_fraction: float = 0.1, seed: int = 0,
                 val_from: str = "train") -> DatasetSpec:
    """Parse and check the meta files; every listed image must exist inside root."""
    if val_from not in VAL_FROM:
        raise ValueError(f"val_from must be one of {VAL_FROM}, got {val_from!r}")
    meta = root / "meta"
    classes = _read_classes(meta / "classes.txt")
    display = _read_display_names(meta / "labels.txt", len(classes))
    guard = RootGuard(root)
    index = {name: i for i, name in enumerate(classes)}
    train = _read_split(meta / "train.txt", root, index, guard)
    test = _read_split(meta / "test.txt", root, index, guard)
    present = set(train.labels)
    missing = [c for c, i in index.items() if i not in present]
    if missing:
        raise FastfoodError(
            f"{meta / 'train.txt'}: class {missing[0]!r} has no images"
            + (f" (and {len(missing) - 1} more classes)" if len(missing) > 1 else "")
        )
    if val_from == "test":
        return DatasetSpec(str(root), "food101", classes, display or classes, train, test, test)
    train, val = _carve_val(train, classes, val_fraction, seed)
    return DatasetSpec(str(root), "food101", classes, display or classes, train, val, test)


def _carve_val(train: Split, classes: tuple[str, ...], val_fraction: float,
               seed: int) -> tuple[Split, Split]:
    """(train, val) out of train.txt's split, both in train.txt's order."""
    per_class: dict[int, list[str]] = {}
    for file, label in zip(train.files, train.labels):
        per_class.setdefault(label, []).append(file)
    held = set()
    for label, files in per_class.items():
        held.update(split_class(classes[label], files, val_fraction, seed).val)
    keep = [i for i, f in enumerate(train.files) if f not in held]
    out = [i for i, f in enumerate(train.files) if f in held]
    return (Split(tuple(train.files[i] for i in keep), tuple(train.labels[i] for i in keep)),
            Split(tuple(train.files[i] for i in out), tuple(train.labels[i] for i in out)))


def _read_classes(path: Path) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    for n, name in read_lines(path):
        why = bad_class_name(name)
        if why:
            raise FastfoodError(f"{path}:{n}: {why}")
        if name in seen:
            raise FastfoodError(f"{path}:{n}: class {name!r} repeats line {seen[name]}")
        seen[name] = n
    if len(seen) < 2:
        raise FastfoodError(f"{path}: needs at least two classes, found {len(seen)}")
    return tuple(seen)


def _read_display_names(path: Path, num_classes: int) -> tuple[str, ...] | None:
    if not path.exists():
        return None
    names = tuple(text for _, text in read_lines(path))
    if len(names) != num_classes:
        raise FastfoodError(
            f"{path}: has {len(names)} names but classes.txt has {num_classes} classes"
        )
    return names


def _read_split(path: Path, root: Path, index: dict[str, int], guard: RootGuard) -> Split:
    images = os.path.join(str(root), "images")
    files: list[str] = []
    labels: list[int] = []
    for n, rel in read_lines(path):
        cls, sep, image_id = rel.partition("/")
        if not sep or not image_id or not cls:
            raise FastfoodError(f"{path}:{n}: expected 'class/image_id', got {rel!r}")
        why = bad_relpath(rel)
        if why:
            raise FastfoodError(f"{path}:{n}: {rel!r}: {why}")
        if cls not in index:
            raise FastfoodError(f"{path}:{n}: unknown class {cls!r} (not in classes.txt)")
        file = os.path.join(images, rel + ".jpg")
        if rel.lower().endswith(IMAGE_EXTS) and guard.problem(file) == "not found":
            file = os.path.join(images, rel)  # tolerate ids written with their extension
        why = guard.problem(file)
        if why:
            raise FastfoodError(f"{path}:{n}: image {file} {why}")
        files.append(file)
        labels.append(index[cls])
    return Split(tuple(files), tuple(labels))
