"""A made dataset for the audit: distinct photo-like images, and the same with planted
problems (duplicates across and within splits, a label conflict, odd files)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from support.images import photo_array

CLASSES = ("apple", "bread", "curry")


def clean_dataset(root: Path, train: int = 8, val: int = 3, seed: int = 0) -> Path:
    """root/train/<class>/imgN.jpg and root/val/<class>/imgN.jpg, all different images."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(photo_array(96, 128, rng)).save(folder / f"img{i}.jpg",
                                                                quality=90)
    return root


def planted_dataset(root: Path) -> tuple[Path, dict[str, list]]:
    """The clean dataset plus planted problems; returns (root, what was planted)."""
    clean_dataset(root)
    t, v = root / "train", root / "val"
    rng = np.random.default_rng(99)

    shutil.copyfile(t / "apple/img0.jpg", v / "apple/dup_exact.jpg")  # exact, across splits
    with Image.open(t / "bread/img1.jpg") as im:  # resized + re-encoded, across splits
        im.resize((100, 75), Image.Resampling.BILINEAR).save(v / "bread/near_resized.jpg",
                                                              quality=60)
    with Image.open(t / "curry/img2.jpg") as im:  # the same pixels as a PNG, across splits
        im.save(v / "curry/near_png.png")
    shutil.copyfile(t / "apple/img3.jpg", t / "apple/copy.jpg")  # within train, one class
    shutil.copyfile(t / "bread/img4.jpg", t / "curry/conflict.jpg")  # one image, two labels

    Image.fromarray(photo_array(20, 20, rng)).save(t / "apple/tiny.jpg")
    png = io.BytesIO()
    Image.fromarray(photo_array(80, 90, rng)).save(png, format="PNG")
    (t / "bread/really_png.jpg").write_bytes(png.getvalue())
    Image.fromarray(photo_array(100, 400, rng)).save(t / "curry/strip.jpg")

    s = str
    planted = {
        "leaks": [{s(t / "apple/img0.jpg"), s(v / "apple/dup_exact.jpg")},
                  {s(t / "bread/img1.jpg"), s(v / "bread/near_resized.jpg")},
                  {s(t / "curry/img2.jpg"), s(v / "curry/near_png.png")}],
        "conflicts": [{s(t / "bread/img4.jpg"), s(t / "curry/conflict.jpg")}],
        "duplicates": [{s(t / "apple/img3.jpg"), s(t / "apple/copy.jpg")}],
        "odd": {s(t / "apple/tiny.jpg"): "tiny", s(t / "bread/really_png.jpg"): "a PNG file",
                s(t / "curry/strip.jpg"): "odd shape"},
    }
    return root, planted
