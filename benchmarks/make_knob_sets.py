"""The sets BENCHMARKS.md ("Learning": class weights, the LR finder, EMA, time limit) was
measured on, made from folders of class subfolders.

    python benchmarks/make_knob_sets.py photos /work/data/food-real /work/data/knobs
    python benchmarks/make_knob_sets.py digits data/digits /work/data/knobs-digits

photos: every JPEG resized to 80 px on its shorter side (decoding 512-px photos would cost
more than the 64-px network), then two presplit sets: b3/ (300 train / 100 val a class)
and imb/ (400 / 80 / 20 train for the first three classes in sorted order: 20:1; 100 val
each). digits: a `make_digits.py` tree made 20:1: class i keeps round(160 * 20^(-i/9))
train images (160 ... 8), val as it is. Files are hard links or copies, never symlinks
(a dataset's files must lie inside its root).
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        dst.hardlink_to(src)
    except OSError:
        shutil.copyfile(src, dst)


def photos(source: Path, out: Path) -> None:
    from PIL import Image

    small = out / "small"
    classes = sorted(p.name for p in source.iterdir() if p.is_dir())
    for c in classes:
        for f in sorted((source / c).glob("*.jpg")):
            target = small / c / f.name
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            im = Image.open(f).convert("RGB")
            scale = 80 / min(im.size)
            im.resize((max(80, round(im.size[0] * scale)), max(80, round(im.size[1] * scale))),
                      Image.BILINEAR).save(target, quality=90)
    rng = random.Random(0)
    imb = dict(zip(classes[:3], (400, 80, 20)))
    for c in classes:
        files = sorted((small / c).glob("*.jpg"))
        rng.shuffle(files)
        # imb: the first n of the shuffled order to train, 100 of files 800.. to validate;
        # b3: the first 300 by name of the shuffled first 800, and 100 of files 800-999.
        by_name = lambda fs: sorted(fs, key=lambda f: f.name)  # noqa: E731
        for name, train, val in (("imb", files[:imb.get(c, 0)], files[800:900]),
                                 ("b3", by_name(files[:800])[:300],
                                  by_name(files[800:1000])[:100])):
            for split, part in (("train", train), ("val", val)):
                for f in part:
                    _place(f, out / name / split / c / f.name)


def digits(source: Path, out: Path) -> None:
    for i, folder in enumerate(sorted((source / "train").iterdir())):
        keep = round(160 * 20 ** (-i / 9))
        for f in sorted(folder.iterdir())[:keep]:
            _place(f, out / "imb" / "train" / folder.name / f.name)
        for f in sorted((source / "val" / folder.name).iterdir()):
            _place(f, out / "imb" / "val" / folder.name / f.name)


if __name__ == "__main__":
    kind, src, dst = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    {"photos": photos, "digits": digits}[kind](src, dst)
    print(f"{dst}: done")
