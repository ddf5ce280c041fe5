"""DALI GPU check: parity of GPU decode with the CPU backend, odd files, and throughput.

Needs only DALI, numpy and Pillow (no TensorFlow), so it runs on a GPU box where TensorFlow
is not installed. The CPU backend is tested against TensorFlow in tests/test_parity.py; this
closes the chain GPU == CPU == tf.data. Prints one JSON object.

    python scripts/gpu_check.py --images DIR [--odd tests/data/odd-jpegs] [--n 256]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastfood.loaders.dali_pipeline import _files_from, benchmark, make_pipeline  # noqa: E402
from fastfood.loaders.validate import check_files  # noqa: E402


def run_eval(files, labels, device: str, batch_size: int, image_size: int) -> np.ndarray:
    """Every file once through the eval pipeline; returns uint8 [n, S, S, 3]."""
    pipe = make_pipeline(files, labels, training=False, batch_size=batch_size,
                         image_size=image_size, device=device, device_id=0)
    pipe.build()
    out = []
    for _ in range(-(-len(files) // batch_size)):
        images, _ = pipe.run()
        if device == "gpu":
            images = images.as_cpu()
        out.append(images.as_array())
    return np.concatenate(out)[: len(files)]


DUT = "gpu"  # the device under test; --dut cpu runs the same checks without a GPU


def parity(files, labels, image_size: int) -> dict:
    gpu = run_eval(files, labels, DUT, 32, image_size).astype(np.float32)
    cpu = run_eval(files, labels, "cpu", 32, image_size).astype(np.float32)
    per_image = np.abs(gpu - cpu).mean(axis=(1, 2, 3))
    return {"n": len(files), "mean_abs_diff": float(per_image.mean()),
            "worst_image": float(per_image.max()), "shape": list(gpu.shape[1:])}


def odd_files(folder: str, image_size: int) -> dict:
    """Each odd file alone through GPU eval and train: decoded, or the error DALI gives."""
    files = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".mpo", ".png"))
    good, bad = check_files(files)
    result = {"preflight_rejected": {Path(p).name: r for p, r in bad}}
    for mode in ("eval", "train"):
        outcome = {}
        for i in good:
            try:
                pipe = make_pipeline([files[i]], [0], training=mode == "train", batch_size=1,
                                     image_size=image_size, device=DUT, device_id=0)
                pipe.build()
                images, _ = pipe.run()
                arr = (images.as_cpu() if DUT == "gpu" else images).as_array()
                outcome[Path(files[i]).name] = f"ok {list(arr.shape)} {arr.dtype}"
            except Exception as err:  # noqa: BLE001 - report whatever DALI raised
                outcome[Path(files[i]).name] = "error: " + str(err).splitlines()[0][:160]
        result[mode] = outcome
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--odd")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--dut", choices=("gpu", "cpu"), default="gpu")
    ap.add_argument("--iters", type=int, default=40)
    args = ap.parse_args()
    global DUT
    DUT = args.dut
    files, labels = _files_from(args.images)
    files, labels = files[: args.n], labels[: args.n]
    report = {"parity_gpu_vs_cpu_eval": parity(files, labels, args.image_size)}
    if args.odd:
        report["odd_jpegs_gpu"] = odd_files(args.odd, args.image_size)
    speed = {}
    for device in dict.fromkeys((DUT, "cpu")):
        for mode in ("train", "eval"):
            t = time.perf_counter()
            speed[f"{device}/{mode}"] = benchmark(
                ["--files-from", args.images, "--device", device, "--mode", mode,
                 "--batch-size", "64", "--iters", str(args.iters), "--warmup", "5"])["img_per_s"]
            speed[f"{device}/{mode}_wall_s"] = round(time.perf_counter() - t, 1)
    report["img_per_s"] = speed
    report["cpu_count"] = os.cpu_count()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
