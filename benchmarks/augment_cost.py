"""What --augment and --random-erasing cost the input pipeline: training img/s of each
loader under each setting, side by side in one process, on a folder of JPEGs.

    python benchmarks/augment_cost.py DIR [--image-size 64] [--images 1024] [--batch 64]

Each setting builds a fresh training dataset over the same first --images files (sorted),
skips two batches as warm-up, and times the rest; the settings are measured in --rounds
rounds, one after another, since the first datasets of a process also pay for tf.data's
and the page cache's warm-up (compare the last round). JSON on stdout, one record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

SETTINGS = (("basic", 0.0), ("randaugment", 0.0), ("trivial", 0.0), ("basic", 0.25))


def measure(kind: str, files: list[str], augment: str, erasing: float, size: int,
            batch: int) -> float:
    import fastfood.loaders as loaders

    ds = loaders.build(kind, files, [0] * len(files), training=True, batch_size=batch,
                       image_size=size, augment=augment, random_erasing=erasing, crop="square")
    it = iter(ds)
    for _ in range(2):
        next(it)
    start, n = time.perf_counter(), 0
    for x, _ in it:
        n += int(x.shape[0])
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    files = sorted(str(p) for p in Path(args.folder).rglob("*.jpg"))[:args.images]
    rows = []
    for round_ in range(args.rounds):
        for kind in ("dali", "tfdata"):
            for augment, erasing in SETTINGS:
                rate = measure(kind, files, augment, erasing, args.image_size, args.batch)
                rows.append({"round": round_, "loader": kind, "augment": augment,
                             "random_erasing": erasing, "img_per_s": round(rate, 1)})
    print(json.dumps({"images": len(files), "image_size": args.image_size,
                      "batch": args.batch, "cpu_count": os.cpu_count(),
                      "machine": platform.processor() or platform.machine(), "rows": rows},
                     indent=1))


if __name__ == "__main__":
    main()
