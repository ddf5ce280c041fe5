"""The DALI pipeline measured alone: no TensorFlow, so it runs where only DALI is installed.

    python -m fastfood.benchmark.dali_alone throughput --files-from DIR --device gpu
    python -m fastfood.benchmark.dali_alone lifetime --files-from DIR --device cpu --epochs 3
    python -m fastfood.benchmark.dali_alone memory --files-from DIR --device gpu --budget nvidia

Each prints one JSON line. `throughput`: images per second after warm-up. `lifetime`: the
same epochs read by one pipeline per epoch (what the loop did before) and by one pipeline
for the whole run (what it does now), the difference being the per-epoch start-up.
`memory`: GPU memory (NVML) and resident host memory taken by one training pipeline with
fastfood's thread and padding budget or with NVIDIA's example values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def files_from(source: str) -> tuple[list[str], list[int]]:
    """A directory (class folders, or loose images: label 0) or a list file of 'path [label]'."""
    root = Path(source)
    if root.is_dir():
        paths = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        classes = sorted({p.parent.relative_to(root).as_posix() for p in paths})
        index = {c: i for i, c in enumerate(classes)}
        return [str(p) for p in paths], [index[p.parent.relative_to(root).as_posix()] for p in paths]
    files, labels = [], []
    for line in root.read_text().splitlines():
        parts = line.strip().rsplit(None, 1)
        if not parts:
            continue
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            path, label = parts[0], int(parts[1])
        else:
            path, label = line.strip(), 0
        p = Path(path)
        files.append(str(p if p.is_absolute() else root.parent / p))
        labels.append(label)
    return files, labels


def _usable(source: str) -> tuple[list[str], list[int], int]:
    """The preflighted files of `source` (the loader's own check), and how many were bad."""
    from fastfood.loaders.validate import check_files

    files, labels = files_from(source)
    good, bad = check_files(files)
    if not good:
        raise SystemExit(f"no usable images in {source}")
    return [files[i] for i in good], [labels[i] for i in good], len(bad)


def _share(args: argparse.Namespace):
    from fastfood.loaders.budget import Budget, budget
    from fastfood.loaders.dali_pipeline import DEVICE_MEMORY_PADDING, HOST_MEMORY_PADDING

    if getattr(args, "budget", "fastfood") == "nvidia":  # NVIDIA's examples: every core, ImageNet paddings
        threads = args.num_threads or os.cpu_count() or 1
        return Budget(threads, DEVICE_MEMORY_PADDING, HOST_MEMORY_PADDING)
    return budget(pipelines=args.pipelines, requested_threads=args.num_threads)


def _pipeline(files, labels, args, *, epoch: int, epochs: int, share):
    """One training (or eval) pipeline as the DALI loader builds it, over `epochs` epochs."""
    from fastfood.loaders import order
    from fastfood.loaders.dali_pipeline import make_pipeline
    from fastfood.loaders.request import LoaderRequest

    training = args.mode == "train"
    request = LoaderRequest(kind="dali", training=training, batch_size=args.batch_size,
                            image_size=args.image_size, crop=args.crop, seed=args.seed,
                            epoch=epoch, epochs=epochs)
    if training:
        idx = order.run_indices(len(files), seed=args.seed, epoch=epoch, epochs=epochs,
                                batch_size=args.batch_size)
        files, labels = [files[i] for i in idx], [labels[i] for i in idx]
    pipe = make_pipeline(files, labels, request, device=args.device, device_id=args.device_id,
                         share=share)
    pipe.build()
    return pipe


def _wait(out, device: str) -> None:
    if device == "gpu":
        out[0].as_cpu()  # the batch's GPU work is done


def throughput(args: argparse.Namespace) -> dict:
    files, labels, bad = _usable(args.files_from)
    share = _share(args)
    pipe = _pipeline(files, labels, args, epoch=0, epochs=max(1, args.epochs), share=share)
    for _ in range(args.warmup):
        pipe.run()
    start = time.perf_counter()
    for _ in range(args.iters):
        out = pipe.run()
    _wait(out, args.device)
    seconds = time.perf_counter() - start
    return {"img_per_s": round(args.iters * args.batch_size / seconds, 1),
            "seconds": round(seconds, 3), "iters": args.iters, "files": len(files),
            "skipped_files": bad, "num_threads": share.num_threads}


def lifetime(args: argparse.Namespace) -> dict:
    """Seconds to read `epochs` epochs: a pipeline per epoch vs one for the whole run."""
    from fastfood.loaders.order import steps_per_epoch

    files, labels, _ = _usable(args.files_from)
    share = _share(args)
    spe = steps_per_epoch(len(files), args.batch_size)
    per_epoch, starts = 0.0, []
    for rounds in range(2):  # the first round warms the page cache and DALI's libraries
        per_epoch, starts = 0.0, []
        for epoch in range(args.epochs):
            t0 = time.perf_counter()
            pipe = _pipeline(files, labels, args, epoch=epoch, epochs=1, share=share)
            out = pipe.run()
            _wait(out, args.device)
            starts.append(time.perf_counter() - t0)
            for _ in range(spe - 1):
                out = pipe.run()
            _wait(out, args.device)
            per_epoch += time.perf_counter() - t0
            del pipe
    t0 = time.perf_counter()
    pipe = _pipeline(files, labels, args, epoch=0, epochs=args.epochs, share=share)
    for _ in range(spe * args.epochs):
        out = pipe.run()
    _wait(out, args.device)
    whole = time.perf_counter() - t0
    return {"epochs": args.epochs, "steps_per_epoch": spe,
            "pipeline_per_epoch_s": round(per_epoch, 3), "one_pipeline_s": round(whole, 3),
            "saved_per_epoch_s": round((per_epoch - whole) / args.epochs, 3),
            "start_to_first_batch_s": [round(s, 3) for s in starts],
            "num_threads": share.num_threads}


def memory(args: argparse.Namespace) -> dict:
    """GPU memory (NVML, this device) and host RSS that one training pipeline adds."""
    import resource

    files, labels, _ = _usable(args.files_from)
    share = _share(args)
    used = _gpu_used(args.device_id) if args.device == "gpu" else None
    rss0 = _rss()
    pipe = _pipeline(files, labels, args, epoch=0, epochs=max(1, args.epochs), share=share)
    start = time.perf_counter()
    for _ in range(args.iters):
        out = pipe.run()
    _wait(out, args.device)
    seconds = time.perf_counter() - start
    after = _gpu_used(args.device_id) if args.device == "gpu" else None
    return {"budget": args.budget, "num_threads": share.num_threads,
            "device_memory_padding": share.device_memory_padding,
            "host_memory_padding": share.host_memory_padding,
            "gpu_mib": None if used is None else round((after - used) / 2**20, 1),
            "rss_mib": round((_rss() - rss0) / 2**20, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "img_per_s": round(args.iters * args.batch_size / seconds, 1)}


def _gpu_used(index: int) -> int:
    import pynvml

    pynvml.nvmlInit()
    return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fastfood.benchmark.dali_alone",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("throughput", "lifetime", "memory"))
    ap.add_argument("--files-from", required=True,
                    help="image folder, or text file of 'path [label]' lines")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    ap.add_argument("--mode", choices=("train", "eval"), default="train")
    ap.add_argument("--crop", choices=("inception", "square"), default="inception")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--num-threads", type=int, default=0, help="0: fastfood's budget")
    ap.add_argument("--pipelines", type=int, default=1, help="pipelines sharing this host")
    ap.add_argument("--budget", choices=("fastfood", "nvidia"), default="fastfood")
    ap.add_argument("--device-id", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    result = {"throughput": throughput, "lifetime": lifetime, "memory": memory}[args.what](args)
    import nvidia.dali

    result.update(what=args.what, device=args.device, mode=args.mode,
                  batch_size=args.batch_size, image_size=args.image_size,
                  dali_version=nvidia.dali.__version__, cpu_count=os.cpu_count())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
