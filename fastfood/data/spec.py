"""What the data layer hands to everyone else: class names and file lists, no tensors.

Kept as plain frozen dataclasses of tuples so a spec can be compared, hashed, written to
the run directory and passed to any loader without dragging in TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    """One split: absolute image paths and their integer labels, index-aligned."""

    files: tuple[str, ...] = ()
    labels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.files) != len(self.labels):
            raise ValueError(f"Split has {len(self.files)} files but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class DatasetSpec:
    """A resolved dataset: where it is, how it was laid out, its classes and splits.

    `layout` is 'food101' or 'folders'. Labels index into `classes`; `display_names` is
    index-aligned with `classes` (meta/labels.txt when present, else the class names).
    `val` is what training validates on and picks its best checkpoint by; `test` is held
    out from both, for `fastfood evaluate --split test` (empty when the dataset has none).
    """

    root: str
    layout: str
    classes: tuple[str, ...]
    display_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split = Split()

    @property
    def num_classes(self) -> int:
        return len(self.classes)
