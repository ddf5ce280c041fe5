"""DALI GPU check: parity of GPU decode with the CPU backend, odd files, throughput, the
long-lived pipelines (repeated padded eval passes, per-epoch start-up saved) and their memory.

Needs only DALI, numpy and Pillow (pynvml for GPU memory; no TensorFlow), so it runs on a
GPU box where TensorFlow is not installed. The CPU backend is tested against TensorFlow in
tests/test_parity.py; this closes the chain GPU == CPU == tf.data. Prints one JSON object.

    python scripts/gpu_check.py --images DIR [--odd tests/data/odd-jpegs] [--n 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastfood.benchmark.dali_alone import files_from  # noqa: E402
from fastfood.loaders.dali_pipeline import make_pipeline  # noqa: E402
from fastfood.loaders.request import LoaderRequest  # noqa: E402
from fastfood.loaders.validate import check_files  # noqa: E402


def run_eval(files, labels, device: str, batch_size: int, image_size: int,
             passes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every file once through one eval pipeline, `passes` times over (the loop keeps one
    pipeline for every validation); returns uint8 [passes, n, S, S, 3] and the labels."""
    request = LoaderRequest(kind="dali", training=False, batch_size=batch_size,
                            image_size=image_size)
    pipe = make_pipeline(files, labels, request, device=device, device_id=0)
    pipe.build()
    images_out, labels_out = [], []
    for _ in range(passes):
        got, lab = [], []
        for _ in range(-(-len(files) // batch_size)):
            images, y = pipe.run()
            if device == "gpu":
                images, y = images.as_cpu(), y.as_cpu()
            got.append(images.as_array())
            lab.append(y.as_array())
        images_out.append(np.concatenate(got))
        labels_out.append(np.concatenate(lab))
    return np.stack(images_out), np.stack(labels_out)


DUT = "gpu"  # the device under test; --dut cpu runs the same checks without a GPU


def parity(files, labels, image_size: int) -> dict:
    """GPU vs CPU eval pixels; and one GPU eval pipeline read twice gives the same pass,
    its padding slots labelled -1 (the loop reuses one pipeline for every validation)."""
    gpu, gpu_labels = run_eval(files, labels, DUT, 48, image_size, passes=2)
    cpu, _ = run_eval(files, labels, "cpu", 48, image_size)
    n = len(files)
    per_image = np.abs(gpu[0, :n].astype(np.float32) - cpu[0, :n].astype(np.float32)).mean(
        axis=(1, 2, 3))
    return {"n": n, "mean_abs_diff": float(per_image.mean()),
            "worst_image": float(per_image.max()), "shape": list(gpu.shape[2:]),
            "second_pass_identical": bool(np.array_equal(gpu[0], gpu[1])
                                          and np.array_equal(gpu_labels[0], gpu_labels[1])),
            "labels_in_order": bool(gpu_labels[0, :n].tolist() == list(labels)),
            "padding_labels": sorted(set(gpu_labels[0, n:].tolist()))}


def odd_files(folder: str, image_size: int) -> dict:
    """Each odd file alone through GPU eval and train: decoded, or the error DALI gives."""
    files = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".mpo", ".png"))
    good, bad = check_files(files)
    result = {"preflight_rejected": {Path(p).name: r for p, r in bad}}
    for mode in ("eval", "train"):
        outcome = {}
        for i in good:
            try:
                request = LoaderRequest(kind="dali", training=mode == "train", batch_size=1,
                                        image_size=image_size)
                pipe = make_pipeline([files[i]], [0], request, device=DUT, device_id=0)
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
    files, labels = files_from(args.images)
    files, labels = files[: args.n], labels[: args.n]
    report = {"parity_gpu_vs_cpu_eval": parity(files, labels, args.image_size)}
    if args.odd:
        report["odd_jpegs_gpu"] = odd_files(args.odd, args.image_size)
    runs = {}
    for device in dict.fromkeys((DUT, "cpu")):
        for mode in ("train", "eval"):
            runs[f"{device}/{mode}"] = ["throughput", "--mode", mode, "--device", device,
                                        "--iters", str(args.iters), "--warmup", "5"]
        runs[f"{device}/lifetime"] = ["lifetime", "--device", device, "--epochs", "3"]
    for budget in ("nvidia", "fastfood"):
        runs[f"{DUT}/memory/{budget}"] = ["memory", "--device", DUT, "--budget", budget,
                                          "--iters", "30"]
    runs[f"{DUT}/memory/fastfood-8-pipelines"] = ["memory", "--device", DUT, "--iters", "30",
                                                  "--pipelines", "8"]
    for name, argv in runs.items():
        report[name] = _alone(argv + ["--files-from", args.images])
    report["cpu_count"] = os.cpu_count()
    print(json.dumps(report, indent=1))


def _alone(argv: list[str]) -> dict:
    """One `fastfood.benchmark.dali_alone` run in a fresh process (its memory is its own)."""
    proc = subprocess.run([sys.executable, "-m", "fastfood.benchmark.dali_alone", *argv],
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


if __name__ == "__main__":
    main()
