"""Duplicate clusters for the class-folder split (DataConfig.group_duplicates).

An image copied into a class twice (or resized, or re-encoded) and split by file name
alone can land in train and val at once, and then val measures memory, not generalisation.
Each cluster of duplicates within a class (`fastfood.data.duplicates`: same bytes, or pHash
within 6 bits) becomes one unit of the draw in `folders.split_class`: units are ranked by
their best-ranked file (the same `file_rank` as the plain split) and a unit that would
overshoot a share goes on to the next. So:

- a dataset without duplicates gets exactly the plain split (same ranks, same counts);
- with duplicates the held-out counts are the same where the units allow it, else a
  little lower (a class that is one big cluster holds nothing out);
- duplicates in two different classes (one image, two labels) are left where they are:
  no split can fix a label conflict; `fastfood audit` reports them.

Hashing costs a decode at 1/4-1/8 scale per image, about 1-3 ms of one core.
"""

from __future__ import annotations

from fastfood.data.duplicates import group_keys


def cluster_keys(per_class: dict[str, list[str]]) -> dict[str, str]:
    """file -> its duplicate cluster's key, for the files that have duplicates."""
    return group_keys([f for files in per_class.values() for f in files])
