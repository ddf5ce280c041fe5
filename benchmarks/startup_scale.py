"""Start-up at Food-101's scale: every step before the first training batch, timed.

Runs the steps `fastfood train` runs, through the same functions, in a fresh process
each time: listing the class folders, the duplicate grouping of the split (both hashes
of every file), the split itself, the preflight, the epoch order, the plan, the input
pipeline (`TrainFeed`, as the loop builds it) and its first batch. The model is not
built: it costs the same at 10 files or 100,000.

Two starts of the same run, one after the other, each its own process: the first with an
empty file-facts cache (FASTFOOD_FILE_CACHE in a fresh folder), the second with the cache
the first one left, which is what a second start of the same run dir finds. The files are
in the OS page cache for both (they were just written or read), so the first start here
is a lower bound for a cold disk; see BENCHMARKS.md for a network file system.

Memory: the retained Python allocations (tracemalloc) of the dataset spec (file lists and
labels of every split) and of one epoch's order, at three dataset sizes, per 100,000 files.

    python benchmarks/make_scale_dataset.py /work/data/shards-scale
    python benchmarks/startup_scale.py /work/data/shards-scale --loader tfdata \\
        --memory /work/data/shards-scale-25 /work/data/shards-scale-50 \\
        --json benchmarks/results/startup_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_start(data: str, loader: str, image_size: int, batch: int) -> dict:
    """Time each step of one start-up, in this process (called in a child)."""
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    cpu_mark = [time.process_time()]

    def step(name: str, started: float) -> float:
        """Wall seconds since `started`, and this process's CPU seconds (all threads)
        since the last step: the CPU figure is what a busy shared machine inflates least."""
        now, used = time.perf_counter(), time.process_time()
        times[name] = round(now - started, 3)
        cpu[name] = round(used - cpu_mark[0], 3)
        cpu_mark[0] = used
        return now

    t = time.perf_counter()
    from fastfood.data import folders, grouped
    from fastfood.data.safety import RootGuard

    root = Path(data)
    per_class = folders.class_images(root, RootGuard(root))
    t = step("listing", t)
    keys = grouped.cluster_keys(per_class)
    t = step("duplicate_grouping", t)
    classes = tuple(sorted(per_class))
    parts = {c: folders.split_class(c, per_class[c], 0.1, 0, 0.0, keys) for c in classes}
    train = folders._flatten(classes, {c: p.train for c, p in parts.items()})
    t = step("split", t)

    from fastfood import data as data_layer

    spec = data_layer.load(root, 0.1, 0, 0.0, group_duplicates=True)
    t = step("data_load_again_in_process", t)
    assert spec.train == train, "the benchmark's split differs from fastfood.data.load's"

    from fastfood.loaders import order

    from fastfood import loaders  # no TensorFlow: the package imports it lazily

    good, bad = loaders.preflight(spec.train.files)
    t = step("preflight", t)
    order.epoch_order(len(good), 0, 0)
    t = step("order", t)

    from fastfood.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf  # noqa: F401

    t = step("import_tensorflow", t)
    from fastfood.config import RunConfig
    from fastfood.loaders.request import LoaderRequest
    from fastfood.train import distribute, setup
    from fastfood.train.feeds import TrainFeed, decodes_on_gpu
    from fastfood.train.position import Position

    kind = loaders.resolve_kind(loader)
    config = RunConfig().but("loader", batch_size=batch, kind=kind)
    strategy = distribute.make_strategy()
    plan = setup.plan(len(good), config, strategy, on_device=decodes_on_gpu(kind),
                      validating=len(spec.val) > 0)
    request = LoaderRequest(kind=kind, image_size=image_size, seed=0, crop="inception")
    feed = TrainFeed(strategy, plan, spec.train.files, spec.train.labels, request)
    t = step("plan", t)
    iterator = feed.at(Position())
    t = step("pipeline_build", t)
    images, labels = next(iterator)
    t = step("first_batch", t)
    assert images.shape[0] == batch and len(bad) == 0
    before = sum(v for k, v in times.items() if k not in ("data_load_again_in_process",
                                                          "import_tensorflow"))
    skip = ("data_load_again_in_process", "import_tensorflow")
    return {"files": len(spec.train) + len(spec.val) + len(spec.test),
            "train_files": len(good), "steps_s": times, "steps_cpu_s": cpu,
            "before_first_batch_s": round(before, 3),
            "before_first_batch_cpu_s": round(sum(v for k, v in cpu.items() if k not in skip), 3),
            "load_average_1min": os.getloadavg()[0]}


def memory(data: str) -> dict:
    """Retained allocations of the spec and of one epoch's order (tracemalloc)."""
    import tracemalloc

    from fastfood import data as data_layer
    from fastfood.loaders import order

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    spec = data_layer.load(Path(data), 0.1, 0, 0.0, group_duplicates=False)  # same spec
    after_spec = tracemalloc.get_traced_memory()[0]
    run = order.run_indices(len(spec.train), seed=0, epoch=0, epochs=1, batch_size=64)
    names = [spec.train.files[i] for i in run]  # what the DALI loader hands its reader
    after_order = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    n = len(spec.train) + len(spec.val) + len(spec.test)
    return {"files": n, "spec_bytes": after_spec - base,
            "order_bytes_per_epoch": after_order - after_spec,
            "spec_bytes_per_100k": round((after_spec - base) / n * 1e5),
            "order_bytes_per_100k_per_epoch": round((after_order - after_spec) / n * 1e5),
            "_keep": len(names) > 0}


def _child(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"child {args} failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--loader", default="tfdata")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--memory", nargs="*", default=[],
                    help="Smaller datasets to measure memory on beside DATA.")
    ap.add_argument("--json", default="")
    ap.add_argument("--child", choices=("start", "memory"), default=None)
    a = ap.parse_args(argv)
    if a.child == "start":
        print(json.dumps(one_start(a.data, a.loader, a.image_size, a.batch_size)))
        return 0
    if a.child == "memory":
        print(json.dumps(memory(a.data)))
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory(prefix="fastfood-scale-") as cache:
        env["FASTFOOD_FILE_CACHE"] = cache
        common = [a.data, "--loader", a.loader, "--image-size", str(a.image_size),
                  "--batch-size", str(a.batch_size), "--child", "start"]
        first = _child(common, env)
        print(f"first start:  {first}", file=sys.stderr)
        second = _child(common, env)
        print(f"second start: {second}", file=sys.stderr)
        env["FASTFOOD_FILE_CACHE"] = "off"
        mem = [_child([d, "--child", "memory"], env) for d in [*a.memory, a.data]]
    for m in mem:
        m.pop("_keep", None)
        print(f"memory: {m}", file=sys.stderr)
    fit = {}
    if len(mem) > 1:  # the growth per file: a line through the sizes (imports are the rest)
        import numpy as np

        n = [m["files"] for m in mem]
        for key in ("spec_bytes", "order_bytes_per_epoch"):
            slope, intercept = np.polyfit(n, [m[key] for m in mem], 1)
            fit[key] = {"per_100k_files_mb": round(slope * 1e5 / 2**20, 2),
                        "fixed_mb": round(intercept / 2**20, 2)}
        print(f"memory growth: {fit}", file=sys.stderr)
    record = {
        "benchmark": "startup_scale", "data": a.data, "loader": a.loader,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "first_start": first, "second_start": second, "memory": mem, "memory_fit": fit,
        "targets": {"first_before_first_batch_s": 30, "second_before_first_batch_s": 5},
        "met": {"first": first["before_first_batch_s"] <= 30,
                "second": second["before_first_batch_s"] <= 5},
    }
    if a.json:
        Path(a.json).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["met"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
