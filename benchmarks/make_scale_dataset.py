"""Write a class-folder dataset with Food-101's file count: 101 classes x 1,000 small JPEGs.

Start-up cost at scale is per file (a stat, an open, a header read, a hash), not per pixel,
so the images are tiny (48 x 48). Each is a random 6 x 6 grid of colours blown up with a
smooth resize: every file has its own bytes and its own perceptual hash (random grids
give pHashes that are far apart), so the duplicate grouping of the split sees no
duplicates and does its full work, as on a real dataset. A pure function of (class, index).

    python benchmarks/make_scale_dataset.py /work/data/shards-scale --classes 101 --per-class 1000
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image

SIDE = 48


def jpeg_bytes(label: int, index: int) -> bytes:
    rng = np.random.default_rng([label, index])
    grid = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(grid).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def write_class(args: tuple[str, int, int]) -> int:
    root, label, count = args
    folder = os.path.join(root, f"class_{label:03d}")
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        path = os.path.join(folder, f"{i:05d}.jpg")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(jpeg_bytes(label, i))
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=101)
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    started = time.perf_counter()
    with Pool(a.workers) as pool:
        total = sum(pool.imap_unordered(write_class, [(a.out, c, a.per_class)
                                                      for c in range(a.classes)]))
    print(f"{total} files in {a.out} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
