"""Small real image sets as class folders, for the from-scratch learning benchmark.

    python benchmarks/make_digits.py data/digits          # scikit-learn's handwritten digits
    python benchmarks/make_digits.py data/faces --set faces

`digits`: scikit-learn's `load_digits` (1,797 real handwritten scans, 8x8, 17 grey levels, 10
classes). `faces`: scikit-image's `lfw_subset` (200 real 25x25 grey photos: 100 faces from
Labeled Faces in the Wild, 100 non-face crops). Both ship inside the packages, so nothing is
downloaded. Each image is scaled to 0-255, resized to `--size` px (bicubic), written as an RGB
JPEG under ROOT/train/<class>/ or ROOT/val/<class>/: the split is stratified and a pure
function of `--seed` (the last `--val-fraction` of each class after a seeded shuffle), so every
run of a benchmark sees the same validation images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def load_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images [n, 8, 8] in 0..1, labels [n], class names)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return d.images / 16.0, d.target.astype(int), [str(i) for i in range(10)]


def load_faces() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images [200, 25, 25] in 0..1, labels [200], class names): faces first in the file."""
    from skimage.data import lfw_subset

    images = lfw_subset().astype(np.float64)
    labels = np.array([0] * 100 + [1] * 100)
    return images, labels, ["face", "not_face"]


SETS = {"digits": load_digits, "faces": load_faces}


def split(labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of validation rows: the last val_fraction of each class, shuffled."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(rows) * val_fraction))
        val[rows[len(rows) - n_val:]] = True
    return val


def write_class_folders(images: np.ndarray, labels: np.ndarray, names: list[str], root: Path,
                        size: int, val_fraction: float, seed: int) -> dict[str, int]:
    """Write root/{train,val}/<class>/<i>.jpg; returns the image count per split."""
    val = split(labels, val_fraction, seed)
    counts = {"train": 0, "val": 0}
    for i, (image, label) in enumerate(zip(images, labels)):
        part = "val" if val[i] else "train"
        folder = root / part / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray(np.uint8(np.clip(image, 0.0, 1.0) * 255 + 0.5), mode="L")
        grey.resize((size, size), Image.BICUBIC).convert("RGB").save(
            folder / f"{i:05d}.jpg", quality=95)
        counts[part] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="output folder (created)")
    parser.add_argument("--set", choices=sorted(SETS), default="digits")
    parser.add_argument("--size", type=int, default=32, help="side in px (default 32)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.root.exists() and any(args.root.iterdir()):
        parser.error(f"{args.root} exists and is not empty")
    images, labels, names = SETS[args.set]()
    counts = write_class_folders(images, labels, names, args.root, args.size,
                                 args.val_fraction, args.seed)
    print(f"{args.root}: {len(names)} classes, {counts['train']} train / {counts['val']} val")


if __name__ == "__main__":
    main()
