"""The dataset as the audit sees it: every (file, class, split) entry, and facts per file.

Facts come from the file's header (Pillow opens an image without decoding it) and the
loaders' own preflight (`fastfood.loaders.validate.check_file`), so looking at a hundred
thousand files costs seconds, not a decode each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from fastfood.data.spec import DatasetSpec

#: Shorter side under this is "tiny": training and evaluation enlarge it several times.
TINY_SIDE = 64
#: More pixels than this is "huge": decoding it costs about 60 times a 512 x 512 photo.
HUGE_PIXELS = 16_000_000
#: Longer side over this many times the shorter is "odd shape": the centre crop keeps
#: under a third of it.
ODD_ASPECT = 3.0

_FORMAT_OF_EXT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


@dataclass(frozen=True)
class Entry:
    """One file of one split; the same path can be listed in two splits (two entries)."""

    file: str
    label: int
    split: str


def entries(spec: DatasetSpec) -> list[Entry]:
    """train, val, then test when the dataset has one, each in the spec's order."""
    out = []
    splits = [("train", spec.train), ("val", spec.val)]
    test = getattr(spec, "test", None)  # the data layer may or may not define a test split
    if test is not None and len(test):
        splits.append(("test", test))
    for name, split in splits:
        out += [Entry(f, int(label), name) for f, label in zip(split.files, split.labels)]
    return out


@dataclass(frozen=True)
class Facts:
    """What a file's header says, and what is odd about it (empty: nothing)."""

    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    problems: tuple[str, ...] = ()
    unusable: bool = False  # the loaders skip it (preflight failure or no decodable header)


def facts(path: str, pixel_cap: int, tiny_side: int = TINY_SIDE) -> Facts:
    from PIL import Image

    from fastfood.loaders.validate import check_file

    reason = check_file(path, pixel_cap)
    if reason is not None:
        return Facts(problems=(f"unusable: {reason}",), unusable=True)
    try:
        with Image.open(path) as image:
            width, height = image.size
            mode, kind = image.mode, image.format or ""
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        return Facts(problems=(f"unusable: Pillow cannot read its header ({err})",),
                     unusable=True)
    problems = []
    short, long = min(width, height), max(width, height)
    if short < tiny_side:
        problems.append(f"tiny: {width}x{height} (shorter side under {tiny_side} px)")
    if width * height > HUGE_PIXELS:
        problems.append(f"huge: {width}x{height} = {width * height / 1e6:.0f} MP")
    if short and long / short > ODD_ASPECT:
        problems.append(f"odd shape: {width}x{height} ({long / short:.1f}:1)")
    if mode not in ("RGB", "L"):
        problems.append(f"colour mode {mode} (converted to RGB when read)")
    elif mode == "L":
        problems.append("greyscale")
    expected = _FORMAT_OF_EXT.get(os.path.splitext(path)[1].lower())
    if expected and kind and kind != expected:
        problems.append(f"a {kind} file named {os.path.basename(path)}")
    return Facts(width, height, mode, kind, tuple(problems))
