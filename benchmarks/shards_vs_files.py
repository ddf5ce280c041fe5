"""Files against packed shards, with both loaders, side by side in one run.

Each measurement is a fresh process (so no loader inherits another's warm state): it
reads the dataset (class folders split as `fastfood pack` split them, or the shards'
manifest), runs the preflight (files only: the pack did it for the shards; the file-facts
cache is off, so this is a first start's preflight), builds the training pipeline, takes
the first batch (start-up), then times `--batches` more (steady img/s). TensorFlow is
imported before the clock starts: it costs the same either way. The sources and loaders
alternate within each repeat, so a busy machine slows them alike.

Both read from the OS page cache here (the files were just written or read): what this
shows is the per-file overhead of a local file system, not a network one (BENCHMARKS.md).

    python benchmarks/shards_vs_files.py /work/data/food-real \\
        --packed /work/data/shards-food-real-packed --json benchmarks/results/shards_vs_files.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(source: str, kind: str, batch: int, image_size: int, batches: int) -> dict:
    from fastfood.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf  # noqa: F401

    from fastfood import data, loaders

    started = time.perf_counter()
    spec = data.load(Path(source), 0.1, 0, 0.0, group_duplicates=False)
    loaded = time.perf_counter()
    good, _ = loaders.preflight(spec.train.files)
    checked = time.perf_counter()
    files = [spec.train.files[i] for i in good]
    labels = [spec.train.labels[i] for i in good]
    ds = loaders.build(kind, files, labels, training=True, batch_size=batch,
                       image_size=image_size, seed=0, crop="inception", endless=True)
    it = iter(ds)
    built = time.perf_counter()
    next(it)
    first = time.perf_counter()
    for _ in range(batches):
        images, _ = next(it)
    _ = images.numpy()
    done = time.perf_counter()
    return {"source": "shards" if spec.layout == "shards" else "files", "loader": kind,
            "images": len(files), "load_s": round(loaded - started, 3),
            "preflight_s": round(checked - loaded, 3), "build_s": round(built - checked, 3),
            "first_batch_s": round(first - built, 3),
            "startup_s": round(first - started, 3),
            "img_per_s": round(batches * batch / (done - first), 1)}


def _child(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "FASTFOOD_FILE_CACHE": "off", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"child {args} failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--packed", required=True, help="The shards (packed here when absent).")
    ap.add_argument("--shard-mb", type=float, default=16,
                    help="Shard size when packing: 16 MB gives the 2,700 train photos of "
                         "food-real 9 shards, so the shard-then-record order is exercised.")
    ap.add_argument("--loaders", default="tfdata,dali")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default="")
    ap.add_argument("--child", nargs=2, metavar=("SOURCE", "KIND"))
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(measure(a.child[0], a.child[1], a.batch_size, a.image_size,
                                 a.batches)))
        return 0
    if not Path(a.packed).exists():
        subprocess.run([sys.executable, "-c", "from fastfood.cli import main; main()", "pack",
                        "--data", a.data, "--out", a.packed, "--no-group-duplicates",
                        "--shard-mb", str(a.shard_mb)],
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    common = ["--batch-size", str(a.batch_size), "--image-size", str(a.image_size),
              "--batches", str(a.batches)]
    rows = []
    for r in range(a.repeats):
        for kind in a.loaders.split(","):
            for source in (a.data, a.packed) if r % 2 == 0 else (a.packed, a.data):
                row = _child([a.data, "--packed", a.packed, *common, "--child", source, kind])
                row["repeat"] = r
                rows.append(row)
                print(row, file=sys.stderr)
    summary = {}
    for kind in a.loaders.split(","):
        for source in ("files", "shards"):
            mine = [x for x in rows if x["loader"] == kind and x["source"] == source]
            summary[f"{kind}/{source}"] = {
                "startup_s": statistics.median(x["startup_s"] for x in mine),
                "img_per_s": statistics.median(x["img_per_s"] for x in mine)}
        f, s = summary[f"{kind}/files"], summary[f"{kind}/shards"]
        summary[f"{kind}/shards_over_files"] = {
            "startup": round(s["startup_s"] / f["startup_s"], 3),
            "img_per_s": round(s["img_per_s"] / f["img_per_s"], 3)}
    record = {"benchmark": "shards_vs_files", "data": a.data, "packed": a.packed,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
              "load_average_1min": os.getloadavg()[0], "settings": vars(a) | {"child": None},
              "rows": rows, "median": summary}
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
