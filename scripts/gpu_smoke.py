"""GPU smoke test: does fastfood's GPU path work on this machine, and how well is the GPU used?

Run it on a GPU machine with TensorFlow installed (scripts/setup.sh), from the repository:

    python scripts/gpu_smoke.py [--out FILE] [--steps 50] [--batch-size 64] [--width 1]
                                [--image-size 224] [--data DIR] [--cpu] [--cpu-devices N]
                                [--keep]

Checks, each reported as ok, warn, fail or skipped with a one-line detail:

- memory_growth: GPU memory growth is on (set before TensorFlow's import, as every
  fastfood command does; without it TensorFlow takes almost all GPU memory and DALI's
  decoder fails to allocate).
- tf_sees_gpu: TensorFlow lists a GPU.
- xla_tools: XLA finds ptxas and libdevice (the search `fastfood doctor` does).
- kernels: each GPU's compute capability is one this TensorFlow ships machine code for
  (warn: only PTX, JIT-compiled at start-up; fail: neither).
- dali_on_gpu: each DALI batch arrives on /GPU:N, N the GPU the dataset was built for.
- train_synthetic, train_dali: --steps training steps in mixed fp16 with loss scaling and
  XLA asked for through `train_and_evaluate`, on synthetic and on DALI input, each ending
  with one eval pass, both under the script's ONE tf.distribute strategy (a second one in
  the process would reuse the first one's collective instances); img/s, model FLOP
  utilisation (MFU) and what XLA compiled (the run's `xla_scope`: nothing for forward and
  backward when synchronised batch norm runs on replicas that are not all GPUs, a warn)
  are printed.
- eval: that eval pass covered every validation image.

Throughput is the steady rate: the first logged interval (tracing and XLA compilation) is
left out; the summary's own figure, which includes it, is in the JSON as well. MFU is
3 x forward FLOPs per image (counted from the model) x img/s over the dense fp16 peak of
the GPUs that trained (`fastfood.benchmark.flops`); unknown for cards not in its table.

--cpu runs everything that does not need a GPU on the CPU (GPUs hidden): the GPU-only
checks say "skipped" with the reason "no GPU", the training and eval runs are real.
--cpu-devices N splits the CPU into N logical devices and trains on all of them (a
MirroredStrategy), the multi-replica path of a multi-GPU machine. The test suite runs it
with --cpu --cpu-devices 2 at a tiny size. Without --data, a small synthetic JPEG set is
made with fastfood's sample maker (its training images linked as often as needed so that
--steps fit in one epoch). Writes one JSON (default runs/gpu-smoke-<time>.json); exit code
1 when a check failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NO_GPU = "no GPU"
PLACEMENT_BATCHES = 3


def check(name: str, status: str, detail: str) -> dict[str, str]:
    """One check's outcome: status is ok | warn | fail | skipped."""
    return {"name": name, "status": status, "detail": detail}


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", "") or err).strip()
    return f"{type(err).__name__}: {(text.splitlines() or [''])[0][:300]}"


# ---- data ---------------------------------------------------------------------------------

def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(src, dest)


def smoke_data(work: Path, steps: int, batch_size: int) -> Path:
    """The sample, or a class-folder tree that repeats its training images enough times
    that `steps` batches fit in one epoch (so the run ends with exactly one eval pass)."""
    from fastfood import data
    from fastfood.data.sample import write_sample

    sample = write_sample(work / "sample")
    spec = data.load(sample)
    copies = math.ceil(steps * batch_size / len(spec.train))
    if copies <= 1:
        return sample
    root = work / "data"
    for split, files, labels, reps in (("train", spec.train.files, spec.train.labels, copies),
                                       ("val", spec.val.files, spec.val.labels, 1)):
        for path, label in zip(files, labels):
            folder = root / split / spec.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(reps):
                _link(Path(path), folder / f"{Path(path).stem}-{k}{Path(path).suffix}")
    return root


# ---- checks -------------------------------------------------------------------------------

def check_memory_growth(problem: str, cpu: bool) -> dict:
    """Whether GPU memory growth is on (`fastfood.gpu_memory`; `problem` is why not)."""
    from fastfood import gpu_memory

    if cpu:
        return check("memory_growth", "skipped", f"{NO_GPU}: {gpu_memory.describe(problem)}")
    return check("memory_growth", "fail" if problem else "ok", gpu_memory.describe(problem))


def check_gpu(tf: Any, cpu: bool) -> tuple[dict, list[dict]]:
    """TensorFlow's GPUs with name and compute capability."""
    gpus = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        cap = details.get("compute_capability")
        gpus.append({"name": str(details.get("device_name", dev.name)),
                     "capability": tuple(cap) if cap else None})
    if cpu:
        return check("tf_sees_gpu", "skipped", f"{NO_GPU} (--cpu hides GPUs)"), gpus
    if not gpus:
        return check("tf_sees_gpu", "fail", "TensorFlow lists no GPU; run `fastfood doctor` "
                     "for why, or use --cpu"), gpus
    return check("tf_sees_gpu", "ok", "; ".join(g["name"] for g in gpus)), gpus


def check_xla_tools(build: dict, cpu: bool) -> dict:
    from fastfood.doctor import nvcc_wheel, xla_tools_here

    tools = xla_tools_here(str(build.get("cuda_version", "")))
    found = (f"ptxas {tools.ptxas or 'not found'}"
             + (f" ({tools.ptxas_version})" if tools.ptxas_version else "")
             + f"; libdevice {tools.libdevice or 'not found'}")
    if cpu:
        return check("xla_tools", "skipped", f"{NO_GPU}: XLA on the CPU needs neither ({found})")
    if tools.ptxas and tools.libdevice:
        return check("xla_tools", "ok", found)
    wheel = nvcc_wheel(str(build.get("cuda_version", "")))
    fix = (f"export XLA_FLAGS=--xla_gpu_cuda_data_dir={tools.under_cuda_home}"
           if tools.under_cuda_home else f"pip install {wheel}")
    return check("xla_tools", "fail", f"{found}. Fix: {fix}")


def check_kernels(gpus: list[dict], build: dict, cpu: bool) -> dict:
    from fastfood.doctor import kernel_support

    shipped = tuple(build.get("cuda_compute_capabilities", ()))
    if cpu or not gpus:
        return check("kernels", "skipped", f"{NO_GPU} (this TensorFlow ships {', '.join(shipped)})")
    status, notes = "ok", []
    for g in gpus:
        cap = g["capability"]
        support = kernel_support(cap, shipped) if cap else "unknown"
        notes.append(f"{g['name']} {f'{cap[0]}.{cap[1]}' if cap else '?'}: {support}")
        if support == "ptx" and status == "ok":
            status = "warn"
        elif support in ("none", "unknown"):
            status = "fail"
    detail = "; ".join(notes) + f" (ships {', '.join(shipped)})"
    if status == "warn":
        detail += "; PTX is JIT-compiled at start-up: export CUDA_CACHE_MAXSIZE=4294967296"
    return check("kernels", status, detail)


def check_dali_placement(tf: Any, spec: Any, args: argparse.Namespace, gpus: list[dict]) -> dict:
    """Build the DALI training dataset for each GPU under its device scope and see where
    the batches land."""
    from fastfood import loaders

    if not loaders.dali_available():
        status = "skipped" if args.cpu else "fail"
        return check("dali_on_gpu", status, "DALI's TensorFlow plugin does not import "
                     "(`fastfood doctor` says why)")
    devices = [f"/GPU:{i}" for i in range(len(gpus))] or ["/CPU:0"]
    seen: dict[str, list[str]] = {}
    try:
        for device in devices:
            with tf.device(device):
                # endless: handed over bare, as the training loop takes it (it counts steps)
                ds = loaders.build("dali", spec.train.files, spec.train.labels, training=True,
                                   batch_size=args.batch_size, image_size=args.image_size,
                                   seed=0, endless=True)
                iterator = iter(ds)
                seen[device] = [next(iterator)[0].device for _ in range(PLACEMENT_BATCHES)]
    except Exception as err:  # noqa: BLE001 - report what DALI or TensorFlow raised
        return check("dali_on_gpu", "fail", _first_line(err))
    summary = "; ".join(f"{d}: {sorted(set(v))}" for d, v in seen.items())
    if not gpus:
        return check("dali_on_gpu", "skipped", f"{NO_GPU}: batches arrived on {summary}")
    wrong = [d for d, v in seen.items() if not all(x.upper().endswith(d.split("/")[-1]) for x in v)]
    return check("dali_on_gpu", "fail" if wrong else "ok", summary)


# ---- training -----------------------------------------------------------------------------

def steady_img_per_s(records: list[dict], batch_size: int) -> float | None:
    """Images over seconds of the logged training intervals after the first (which holds
    tracing and compilation); None with fewer than two intervals."""
    train = sorted((r for r in records if r.get("kind") == "train" and r.get("img/s")),
                   key=lambda r: r["step"])
    images = seconds = 0.0
    for before, rec in zip(train, train[1:]):
        n = (rec["step"] - before["step"]) * batch_size
        images += n
        seconds += n / rec["img/s"]
    return images / seconds if seconds > 0 else None


def _run_config(kind: str, root: Path, run_dir: Path, args: argparse.Namespace) -> Any:
    from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig

    loader = {"kind": kind, "batch_size": args.batch_size, "image_size": args.image_size}
    # Only the fields LoaderConfig has (image_size is moving to ModelConfig alone).
    loader = {k: v for k, v in loader.items()
              if k in {f.name for f in dataclasses.fields(LoaderConfig)}}
    return RunConfig(
        data=DataConfig(root=str(root)),
        loader=LoaderConfig(**loader),
        model=ModelConfig(image_size=args.image_size, width=args.width, weights="none"),
        train=TrainConfig(max_steps=args.steps, precision="fp16", xla="on", save_every=0,
                          save_every_s=1e9, run_dir=str(run_dir)),
    )


def train_once(kind: str, root: Path, work: Path, args: argparse.Namespace,
               flops_per_image: float, peak: float | None, strategy: Any) -> tuple[dict, dict]:
    """`--steps` steps in fp16 + loss scaling + XLA asked for, then the final eval pass,
    under `strategy` (the script's one). `peak`: one GPU's FLOP/s (None: unknown)."""
    from fastfood.benchmark.flops import utilisation
    from fastfood.train import metrics
    from fastfood.train import step as train_step
    from fastfood.train.loop import train_and_evaluate

    name = f"train_{kind}"
    run_dir = work / f"run-{kind}"
    try:
        summary = train_and_evaluate(_run_config(kind, root, run_dir, args),
                                     strategy=strategy, log_every=max(1, args.steps // 10),
                                     stream=sys.stderr, fancy=False)
    except Exception as err:  # noqa: BLE001 - a smoke test reports, it does not stop
        return check(name, "fail", _first_line(err)), {"error": _first_line(err)}
    records = metrics.read(run_dir)
    steady = steady_img_per_s(records, args.batch_size)
    scales = [r["loss_scale"] for r in records if r.get("kind") == "train" and "loss_scale" in r]
    # Several GPUs train one global batch together: their peaks add up.
    mfu = utilisation(steady, flops_per_image, peak * summary["replicas"] if peak else None)
    result = {
        "steps": summary["step"], "img_per_s": steady,
        "img_per_s_with_compile": summary["train_img_per_s"], "mfu": mfu,
        "precision": summary["precision"], "xla": summary["xla"],
        "xla_scope": summary["xla_scope"], "loader": summary["loader"],
        "replicas": summary["replicas"],
        "loss_scale_last": scales[-1] if scales else None, "val": summary["val"],
        "wall_s": summary["wall_s"],
    }
    problems = []
    if summary["step"] != args.steps:
        problems.append(f"ran {summary['step']} of {args.steps} steps")
    if summary["precision"] != "mixed_float16":
        problems.append(f"ran as {summary['precision']}")
    # XLA asked for and nothing compiled: expected only for sync BN off GPUs (a warn).
    expected_off = summary["xla_scope"] == train_step.SCOPE_SYNC_BN
    if not summary["xla"] and not expected_off:
        problems.append(f"XLA compiled nothing ({summary['xla_scope']})")
    if not scales:
        problems.append("no loss scale in the logs")
    shown = f"{steady:.1f}" if steady else "?"
    detail = (f"{summary['step']} steps on {summary['replicas']} replica"
              f"{'s' * (summary['replicas'] != 1)}, {shown} img/s, MFU "
              + (f"{100 * mfu:.1f}%" if mfu is not None else "unknown")
              + f", loss scale {scales[-1] if scales else '-'}; XLA "
              + (f"on for {summary['xla_scope']}" if summary["xla"] else summary["xla_scope"]))
    status = "fail" if problems else "warn" if expected_off else "ok"
    return check(name, status, "; ".join(problems) if problems else detail), result


def check_eval(runs: dict[str, dict], num_val: int) -> dict:
    counted = {k: (r.get("val") or {}).get("count") for k, r in runs.items() if "error" not in r}
    if not counted:
        return check("eval", "fail", "no training run finished")
    bad = {k: c for k, c in counted.items() if c != num_val}
    detail = ", ".join(f"{k}: {c} images" for k, c in counted.items())
    return check("eval", "fail" if bad else "ok", f"{detail} (of {num_val})")


# ---- main ---------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON file to write (default runs/gpu-smoke-<time>.json)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=float, default=1.0, help="VGG19 width multiplier")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--data", type=Path, default=None,
                    help="dataset folder (default: a generated synthetic JPEG set)")
    ap.add_argument("--cpu", action="store_true",
                    help="hide GPUs and run every check that needs none on the CPU")
    ap.add_argument("--cpu-devices", type=int, default=1,
                    help="split the CPU into this many logical devices and train on all of "
                         "them (the multi-replica path; with --cpu)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (run dirs, data)")
    args = ap.parse_args(argv)
    for flag in ("steps", "batch_size", "image_size", "cpu_devices"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.width <= 0:
        ap.error("--width must be > 0")
    if args.cpu_devices > 1 and not args.cpu:
        ap.error("--cpu-devices needs --cpu")
    if args.data is not None and not args.data.is_dir():
        ap.error(f"--data {args.data}: not a folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before TensorFlow or DALI look
    from fastfood.quiet import import_tensorflow_quietly

    try:
        import_tensorflow_quietly()
    except ImportError as err:
        print(f"gpu_smoke: error: TensorFlow does not import ({err}); run scripts/setup.sh, "
              "then `fastfood doctor`", file=sys.stderr)
        return 2
    import tensorflow as tf

    from fastfood import gpu_memory

    growth = gpu_memory.allow_growth()  # the import asked already: before any check runs
    if args.cpu_devices > 1:  # before anything initialises TensorFlow's devices
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)

    from fastfood import data
    from fastfood.benchmark.flops import TRAIN_FORWARD_RATIO, forward_flops, peak_flops
    from fastfood.machine import machine_info
    from fastfood.loaders import dali_available
    from fastfood.model import vgg19
    from fastfood.paths import runs_dir
    from fastfood.train import distribute

    work = Path(tempfile.mkdtemp(prefix="fastfood-smoke-"))
    try:
        root = args.data.resolve() if args.data else smoke_data(work, args.steps, args.batch_size)
        spec = data.load(root)
        build = dict(tf.sysconfig.get_build_info())
        first, gpus = check_gpu(tf, args.cpu)
        checks = [check_memory_growth(growth, args.cpu), first,
                  check_xla_tools(build, args.cpu), check_kernels(gpus, build, args.cpu),
                  check_dali_placement(tf, spec, args, gpus)]
        # ONE strategy for both training runs (and it is made after the checks above, so
        # their GPU ops do not come first: memory growth is set already either way).
        strategy = distribute.make_strategy(
            [f"/cpu:{i}" for i in range(args.cpu_devices)] if args.cpu_devices > 1 else None)

        with tf.device("/CPU:0"):  # counted on the host: no GPU memory for a throwaway model
            fwd = forward_flops(vgg19(len(spec.classes), image_size=args.image_size,
                                      width=args.width, weights=None))
        device = gpus[0]["name"] if gpus else "CPU"
        peak = peak_flops(device) if gpus else None
        runs = {}
        for kind in ("synthetic", "dali"):
            if kind == "dali" and args.cpu and not dali_available():
                checks.append(check("train_dali", "skipped",
                                    "DALI's TensorFlow plugin does not import"))
                continue
            outcome, runs[kind] = train_once(kind, root, work, args, fwd, peak, strategy)
            checks.append(outcome)
        checks.append(check_eval(runs, len(spec.val)))

        report = {
            "ok": not any(c["status"] == "fail" for c in checks),
            "mode": "cpu" if args.cpu else "gpu",
            "checks": checks,
            "train": runs,
            "flops": {"forward_per_image": fwd, "train_per_image": TRAIN_FORWARD_RATIO * fwd,
                      "device": device, "peak_fp16_per_gpu": peak},
            "settings": {"steps": args.steps, "batch_size": args.batch_size, "width": args.width,
                         "image_size": args.image_size, "data": str(root),
                         "train_images": len(spec.train), "val_images": len(spec.val),
                         "precision": "fp16", "xla": "asked for (what ran: train.*.xla_scope)",
                         "cpu_devices": args.cpu_devices,
                         "strategy": distribute.describe(strategy)},
            "machine": machine_info(),
            "wall_s": round(time.perf_counter() - started, 1),
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = args.out or runs_dir() / f"gpu-smoke-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    for c in checks:
        print(f"{c['status']:>7}  {c['name']}: {c['detail']}")
    print(f"forward {fwd / 1e9:.3g} GFLOP/image; peak {device}: "
          + (f"{peak / 1e12:.0f} TFLOP/s fp16" if peak else "unknown"))
    print(f"wrote {out} ({report['wall_s']} s)" + (f"; work folder {work}" if args.keep else ""))
    return 0 if report["ok"] else 1



if __name__ == "__main__":
    sys.exit(main())
