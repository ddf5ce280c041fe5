"""The class-folder split that keeps duplicate images together (DataConfig.group_duplicates).

An image copied into a class twice (or resized, or re-encoded) and split by file name
alone can land in train and val at once, and then val measures memory, not generalisation.
Here each cluster of duplicates within a class (`fastfood.data.duplicates`: same bytes,
or pHash within 6 bits) is one unit of the draw: units are ranked by their best-ranked
file (the same `file_rank` as the plain split) and taken into val, lowest rank first, while
they fit in the class's val count; a unit that would overshoot it goes to train and the
draw goes on with the next. So:

- a dataset without duplicates gets exactly the plain split (same ranks, same count);
- with duplicates the val count is the same where the units allow it, else a little
  lower (a class that is one big cluster has no val images);
- duplicates in two different classes (one image, two labels) are left where they are:
  no split can fix a label conflict; `fastfood audit` reports them.

Hashing costs a decode at 1/4-1/8 scale per image, about 1-3 ms of one core.
"""

from __future__ import annotations

from fastfood.data.duplicates import group_keys
from fastfood.data.folders import file_rank, val_count


def split_grouped(per_class: dict[str, list[str]], val_fraction: float,
                  seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """{class: (train, val)}, each in input order, duplicate clusters on one side."""
    keys = group_keys([f for files in per_class.values() for f in files])
    return {name: split_class_grouped(name, files, keys, val_fraction, seed)
            for name, files in per_class.items()}


def split_class_grouped(name: str, files: list[str], keys: dict[str, str],
                        val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, val) for one class; `keys` maps a file to its cluster (absent: alone)."""
    k = val_count(len(files), val_fraction)
    units: dict[str, list[str]] = {}
    for f in files:
        units.setdefault(keys.get(f, f), []).append(f)
    ranked = sorted(units.values(), key=lambda unit: min(file_rank(seed, name, f) for f in unit))
    chosen: set[str] = set()
    for unit in ranked:
        if len(chosen) + len(unit) <= k:
            chosen.update(unit)
        if len(chosen) == k:
            break
    return [f for f in files if f not in chosen], [f for f in files if f in chosen]
