"""What naming decode failures costs the tf.data training loader, side by side.

`fastfood.loaders.tfdata` (in-order decode map, ignore_errors, gaps found per batch and named)
against the pipeline it replaced, rebuilt here: a decode map that lets fast images overtake
slow ones, ``ignore_errors`` alone, ``batch(drop_remainder=True)``. Same files, same crops,
one process, the two alternating round by round (first one, then the other) so that load
from other processes hits both alike. Each pass is one epoch after its first batch (start-up
excluded); per pass: wall img/s and the process's CPU milliseconds per image, the figure that
other processes disturb least.

    .venv/bin/python benchmarks/make_dataset.py /tmp/bench384 --n 384
    .venv/bin/python benchmarks/tfdata_naming.py /tmp/bench384 --bad 2 --rounds 11

Prints one JSON object (machine, load average, settings, per-variant medians, the median of
the per-round throughput ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def previous_loader(files, labels, *, batch_size, image_size, seed, epoch):
    """The tf.data training pipeline before failures were named (for comparison only)."""
    import numpy as np
    import tensorflow as tf

    from fastfood.loaders import order, preprocess, tfdata

    indices, positions = order.epoch_indices(len(files), seed=seed, epoch=epoch,
                                             batch_size=batch_size)
    base_key = tf.constant([seed, epoch], dtype=tf.int64)

    def load(path, label, position):
        key = tf.random.experimental.stateless_fold_in(base_key, position)
        return preprocess.train_image(tf.io.read_file(path), key, image_size), label

    names = np.asarray(files, dtype=object)[indices].astype(str)
    ds = tf.data.Dataset.from_tensor_slices((names, np.asarray(labels, np.int32)[indices],
                                             positions))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(tfdata._options(True, 0, deterministic=False))


def current_loader(files, labels, *, batch_size, image_size, seed, epoch):
    from fastfood.loaders import tfdata
    from fastfood.loaders.request import LoaderRequest
    from fastfood.loaders.skips import SkipLog

    request = LoaderRequest(kind="tfdata", training=True, batch_size=batch_size,
                            image_size=image_size, seed=seed, epoch=epoch, skips=SkipLog())
    return tfdata.build(files, labels, request)


def one_pass(make, files, labels, epoch, args) -> tuple[float, float]:
    """(img/s, CPU ms per image) over one epoch after its first batch."""
    batches = iter(make(files, labels, batch_size=args.batch_size,
                        image_size=args.image_size, seed=0, epoch=epoch))
    next(batches)
    wall, cpu, n = time.perf_counter(), time.process_time(), 0
    for images, _ in batches:
        n += int(images.shape[0])
    return n / (time.perf_counter() - wall), 1e3 * (time.process_time() - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="class folders of JPEGs (make_dataset.py)")
    parser.add_argument("--bad", type=int, default=2,
                        help="files added that pass the preflight but fail to decode")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()

    from fastfood.machine import load_average, machine_info

    files = sorted(str(p) for p in args.data.glob("*/*.jpg"))
    bad_dir = Path(tempfile.mkdtemp(prefix="tfdata_naming_"))
    for i in range(args.bad):  # a JPEG whose first Huffman table is impossible
        data = bytearray(Path(files[i]).read_bytes())
        dht = data.find(b"\xff\xc4")
        data[dht + 5:dht + 21] = b"\xff" * 16
        (bad_dir / f"bad{i}.jpg").write_bytes(bytes(data))
        files.append(str(bad_dir / f"bad{i}.jpg"))
    labels = [0] * len(files)
    variants = {"previous": previous_loader, "named": current_loader}
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    load_before = load_average()
    for r in range(args.rounds):
        names = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in names:
            rows[name].append(one_pass(variants[name], files, labels, r, args))
    summary = {
        name: {"img_s_median": round(statistics.median(x for x, _ in got), 1),
               "img_s_min": round(min(x for x, _ in got), 1),
               "img_s_max": round(max(x for x, _ in got), 1),
               "cpu_ms_per_img_median": round(statistics.median(y for _, y in got), 3)}
        for name, got in rows.items()
    }
    ratios = [n[0] / p[0] for p, n in zip(rows["previous"], rows["named"])]
    print(json.dumps({
        "machine": machine_info(with_gpus=False), "load_before": load_before,
        "load_after": load_average(),
        "settings": {"files": len(files), "bad": args.bad, "rounds": args.rounds,
                     "batch_size": args.batch_size, "image_size": args.image_size},
        "variants": summary,
        "named_vs_previous_img_s_median_of_round_ratios": round(statistics.median(ratios), 3),
        "named_vs_previous_cpu_ms": round(summary["named"]["cpu_ms_per_img_median"]
                                          / summary["previous"]["cpu_ms_per_img_median"], 3),
    }))


if __name__ == "__main__":
    main()
