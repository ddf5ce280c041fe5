"""The photo-like image sets (support/images.py) really have the variety the loader tests
rely on: several formats and modes, extreme aspect ratios, sizes on both sides of 32 px,
and detail at both large and fine scales."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from support.images import SIZES, write_photo_set


def test_photo_set_has_the_variety_the_loader_tests_need(tmp_path: Path) -> None:
    paths = write_photo_set(tmp_path)
    modes, sizes = {}, []
    for p in paths:
        with Image.open(p) as im:
            modes[im.format + "/" + im.mode] = modes.get(im.format + "/" + im.mode, 0) + 1
            sizes.append(im.size)
    assert {"JPEG/L", "JPEG/CMYK", "PNG/RGB"} <= set(modes)
    assert modes["JPEG/RGB"] == len(SIZES)
    ratios = [w / h for w, h in sizes]
    assert min(ratios) < 0.5 and max(ratios) > 2.0
    assert min(min(s) for s in sizes) < 32 < max(max(s) for s in sizes)
    # Photo-like: not flat, with fine detail (noise) as well as large structure.
    arr = np.asarray(Image.open(paths[5]).convert("RGB"), dtype=np.float32)
    assert arr.std() > 30
    assert np.abs(np.diff(arr, axis=1)).mean() > 3
