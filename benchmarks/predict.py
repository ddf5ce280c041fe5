"""Predict speed: the cold start of `fastfood predict one.jpg`, and batch predict throughput.

    python benchmarks/predict.py                      # full width at 224, 500 images (~15 min
                                                      # on 2 CPU cores: most of it the batch part)
    python benchmarks/predict.py --width 0.25         # batch part with a 1/16-FLOPs model
    python benchmarks/predict.py --skip-batch --entry group   # cold start without main()'s
                                                      # early TensorFlow import (a what-if)
    # -> benchmarks/results/predict.json (machine, versions, settings, every repeat)

1. Cold start. A run directory with a FULL-WIDTH VGG19 (random weights, 101 classes, ~550 MB
   checkpoint, written once through fastfood's own run-dir format; no training) and one
   photo-like 512x384 JPEG. The console script `fastfood predict one.jpg` is started
   `--cold-repeats` times as a fresh process (after one unrecorded run that warms the page
   cache, as a second run of a user's command would find it). Measured from here: spawn to
   the last line of the answer on stdout (`answer_s`, the target: <= 5 s) and to process
   exit (`exit_s`). One more run starts with the weights evicted from the page cache
   (posix_fadvise DONTNEED), as after a reboot: predict's readahead should hide the read
   behind the TensorFlow import. Measured inside (FASTFOOD_TIMING=1): the phases, wall and
   CPU seconds (python + click before predict's body, TensorFlow import, model code import,
   building the model, restoring the weights, decoding the image, the forward pass, printing).
2. Batch-1 precision. The eager batch-1 forward pass in float32 vs mixed_bfloat16 (warm),
   and the first (cold) call, to back the float32 choice with a number on this machine.
3. Batch throughput. In one process: the model's forward rate on a synthetic uint8 batch
   (the ceiling), then `Predictor.predict_files` over `--images` photo-like JPEGs
   (Food-101 sizes, benchmarks/make_dataset.py) through the real loader pipeline; target
   predict >= 0.9x the synthetic forward rate. The input pipeline alone is timed too (how
   much headroom decoding has). Passes alternate, `--repeats` rounds.

Timings on a machine shared with other work are not results: the JSON records the load
average before and after the run, and a warning is printed when it was high.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import make_dataset

from fastfood import machine
from fastfood.benchmark import report

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_COLD_S = 5.0
TARGET_BATCH_RATIO = 0.9
PHASES = ("before_main", "import_tensorflow", "import_model_code", "build_model",
          "restore_weights", "decode", "forward", "output", "other")


def make_run(work: Path, width: float, image_size: int, classes: int) -> Path:
    """The untrained run directory (made once, reused while its settings match)."""
    run = work / f"run-w{width:g}-s{image_size}-c{classes}"
    if not (run / "classes.json").is_file():
        from fastfood.benchmark.untrained import write_untrained_run

        if run.exists():
            shutil.rmtree(run)
        write_untrained_run(run, [f"class_{i:03d}" for i in range(classes)],
                            image_size=image_size, width=width)
    return run


def make_images(work: Path, n: int) -> tuple[Path, list[str]]:
    """One 512x384 photo-like JPEG, and `n` more in class folders (made once)."""
    one = work / "one.jpg"
    if not one.is_file():
        image = make_dataset.render(1234, 0, 0).convert("RGB").resize((512, 384))
        image.save(one, quality=90)
    folder = work / f"images-{n}"
    if len(list(folder.rglob("*.jpg"))) != n:
        if folder.exists():
            shutil.rmtree(folder)
        make_dataset.make_dataset(folder, n=n, seed=0)
    from fastfood.inference.files import collect_images

    return one, collect_images([folder])


def fastfood_command(entry: str = "console") -> list[str]:
    """How to start fastfood: 'console', the console script next to this Python as a user
    runs it (fastfood.cli:main); 'group', the click group called directly, i.e. without
    whatever main() does before the command (a what-if for changes to main()); 'plain-init',
    the console entry with Keras' own random init instead of fastload's uninitialised
    variables (what dropping that trick would cost)."""
    if entry == "group":
        return [sys.executable, "-c", "import sys; from fastfood.cli import cli; "
                "cli.main(args=sys.argv[1:], prog_name='fastfood', standalone_mode=False)"]
    if entry == "plain-init":
        return [sys.executable, "-c", "import contextlib, sys; "
                "import fastfood.inference.fastload as f; "
                "f.restored_variables_only = lambda: contextlib.nullcontext(f.Swapped()); "
                "from fastfood.cli import main; main()"]
    script = Path(sys.executable).with_name("fastfood")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from fastfood.cli import main; main()"]


def cold_once(run: Path, image: Path, extra_env: dict[str, str],
              entry: str = "console") -> dict[str, Any]:
    """Start `fastfood predict IMAGE` and time it from here; parse its timing line."""
    env = {**os.environ, "FASTFOOD_TIMING": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **extra_env}
    argv = fastfood_command(entry) + ["predict", str(image), "--run-dir", str(run),
                                      "--top-k", "5"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True, bufsize=1)
    assert proc.stdout is not None and proc.stderr is not None
    lines, answer_s = [], None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        answer_s = time.perf_counter() - start
    stderr = proc.stderr.read()
    code = proc.wait()
    exit_s = time.perf_counter() - start
    if code != 0 or len(lines) != 6:
        raise RuntimeError(f"fastfood predict failed ({code}): {stderr[-2000:]}")
    timing = {}
    for text in stderr.splitlines():
        if text.startswith("fastfood-timing "):
            timing = json.loads(text.split(" ", 1)[1])
    return {"answer_s": round(answer_s or exit_s, 4), "exit_s": round(exit_s, 4),
            "phases": timing, "answer": lines}


def evict_weights(run: Path) -> None:
    """Drop the run's checkpoint files from the page cache (as after a reboot); no root needed."""
    for f in run.rglob("*.data-*"):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def bench_cold_side_by_side(run: Path, image: Path, repeats: int,
                            entries: list[str]) -> dict[str, Any]:
    """Several entries, their repeats interleaved so that a change in load hits all alike."""
    cold_once(run, image, {}, entries[0])  # warm the page cache: not recorded
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in entries}
    for _ in range(repeats):
        for entry in entries:
            runs[entry].append(cold_once(run, image, {}, entry))
    return {entry: bench_cold(run, image, repeats, entry, runs[entry]) for entry in entries}


def bench_cold(run: Path, image: Path, repeats: int, entry: str,
               runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if runs is None:
        cold_once(run, image, {}, entry)  # warm the page cache: not recorded
        runs = [cold_once(run, image, {}, entry) for _ in range(repeats)]
    evict_weights(run)
    evicted = cold_once(run, image, {}, entry)
    median_phases = {
        p: round(statistics.median(r["phases"].get(p, 0.0) for r in runs), 4) for p in PHASES
    }
    median_cpu = {
        p: round(statistics.median(r["phases"].get("cpu", {}).get(p, 0.0) for r in runs), 4)
        for p in PHASES if p not in ("before_main", "other")
    }
    answer = statistics.median(r["answer_s"] for r in runs)
    return {
        "entry": entry,
        "answer_s_median": round(answer, 4),
        "answer_s_min": round(min(r["answer_s"] for r in runs), 4),
        "exit_s_median": round(statistics.median(r["exit_s"] for r in runs), 4),
        "phases_median": median_phases,
        "cpu_median": median_cpu,
        "target_s": TARGET_COLD_S,
        "meets_target": answer <= TARGET_COLD_S,
        "runs": runs,
        "weights_not_cached": {"answer_s": evicted["answer_s"], "exit_s": evicted["exit_s"],
                               "phases": evicted["phases"]},
    }


def _forward_ms(fn: Any, x: Any, repeats: int = 5) -> tuple[float, float]:
    """(first call ms, median warm call ms) of fn(x)."""
    import numpy as np

    start = time.perf_counter()
    np.asarray(fn(x))
    first = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(x))
        warm.append(time.perf_counter() - start)
    return round(first * 1000, 2), round(statistics.median(warm) * 1000, 2)


def bench_batch1_precision(predictor: Any) -> dict[str, Any]:
    """Eager batch-1 forward, float32 (what predict runs) vs mixed_bfloat16."""
    import keras
    import numpy as np

    from fastfood.model import vgg19

    size = predictor.image_size
    x = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    out: dict[str, Any] = {}
    first, warm = _forward_ms(lambda a: predictor.model(a, training=False), x)
    out["float32"] = {"first_call_ms": first, "warm_ms": warm}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = vgg19(len(predictor.classes), image_size=size,
                      width=_width_of(predictor.model), weights=None)
    finally:
        keras.config.set_dtype_policy(previous)
    model.set_weights(predictor.model.get_weights())
    first, warm = _forward_ms(lambda a: model(a, training=False), x)
    out["mixed_bfloat16"] = {"first_call_ms": first, "warm_ms": warm}
    out["faster"] = min(("float32", "mixed_bfloat16"), key=lambda k: out[k]["warm_ms"])
    return out


def _width_of(model: Any) -> float:
    return model.get_layer("conv1_1").filters / 64


def bench_batch(predictor: Any, files: list[str], batch_size: int, loader: str,
                repeats: int) -> dict[str, Any]:
    """Synthetic forward rate vs predict_files over real files, in this process.

    The three passes alternate within each repeat (synthetic, input only, predict), so a
    drift in the machine's speed hits all three alike; the ratio is taken per repeat.
    """
    import numpy as np
    import tensorflow as tf

    from fastfood.inference.batches import Batch, decode_batches

    size = predictor.image_size
    n_batches = math.ceil(len(files) / batch_size)
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (batch_size, size, size, 3),
                                                      dtype=np.uint8))
    forward = predictor.forward

    def synthetic() -> float:
        start = time.perf_counter()
        for _ in range(n_batches):
            forward(x, traced=True)
        return n_batches * batch_size / (time.perf_counter() - start)

    def decode_only() -> float:
        start = time.perf_counter()
        count = sum(len(item.indices) for item in decode_batches(
            files, image_size=size, batch_size=batch_size, kind=loader)
            if isinstance(item, Batch))
        return count / (time.perf_counter() - start)

    def predict() -> float:
        start = time.perf_counter()
        answers = list(predictor.predict_files(files, top_k=5, batch_size=batch_size,
                                               loader=loader))
        elapsed = time.perf_counter() - start
        if any(a.error for a in answers):
            raise RuntimeError("a benchmark image failed to decode")
        return len(answers) / elapsed

    forward(x, traced=True)  # trace + warm-up
    list(predictor.predict_files(files[: 2 * batch_size + 1], batch_size=batch_size,
                                 loader=loader))  # warm-up: pipeline, threads
    rates: dict[str, list[float]] = {"synthetic": [], "decode": [], "predict": []}
    for _ in range(repeats):
        rates["synthetic"].append(synthetic())
        rates["decode"].append(decode_only())
        rates["predict"].append(predict())
    ratios = [p / s for p, s in zip(rates["predict"], rates["synthetic"])]
    ratio = statistics.median(ratios)
    return {
        "images": len(files), "batch_size": batch_size, "loader": loader,
        "synthetic_forward_img_s": [round(r, 2) for r in rates["synthetic"]],
        "decode_only_img_s": [round(r, 2) for r in rates["decode"]],
        "predict_img_s": [round(r, 2) for r in rates["predict"]],
        "ratios": [round(r, 3) for r in ratios],
        "predict_vs_forward": round(ratio, 3),
        "target_ratio": TARGET_BATCH_RATIO,
        "meets_target": ratio >= TARGET_BATCH_RATIO,
    }


def print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=110)
    cold = result.get("cold")
    if cold:
        table = Table(title=f"cold `fastfood predict one.jpg` ({cold['entry']}, width "
                            f"{result['settings']['cold_width']:g}, "
                            f"{result['settings']['image_size']} px): answer "
                            f"{cold['answer_s_median']:.2f} s median "
                            f"(target <= {TARGET_COLD_S} s), "
                            f"exit {cold['exit_s_median']:.2f} s")
        table.add_column("phase")
        table.add_column("wall s", justify="right")
        table.add_column("cpu s", justify="right")
        for phase in PHASES:
            table.add_row(phase, f"{cold['phases_median'][phase]:.3f}",
                          f"{cold['cpu_median'].get(phase, float('nan')):.3f}")
        console.print(table)
        uncached = cold["weights_not_cached"]
        console.print(f"with the weights evicted from the page cache first: answer "
                      f"{uncached['answer_s']:.2f} s, restore "
                      f"{uncached['phases'].get('restore_weights', 0):.2f} s")
    b1 = result.get("batch1_precision")
    if b1:
        console.print(f"batch-1 eager forward: float32 {b1['float32']['warm_ms']:.0f} ms "
                      f"(first call {b1['float32']['first_call_ms']:.0f} ms), mixed_bfloat16 "
                      f"{b1['mixed_bfloat16']['warm_ms']:.0f} ms: {b1['faster']} is faster")
    batch = result.get("batch")
    if batch:
        med = statistics.median
        console.print(
            f"batch predict (width {result['settings']['width']:g}, {batch['images']} images, "
            f"batch {batch['batch_size']}, loader {batch['loader']}): "
            f"{med(batch['predict_img_s']):.1f} img/s vs synthetic forward "
            f"{med(batch['synthetic_forward_img_s']):.1f} img/s = "
            f"{batch['predict_vs_forward']:.2f}x "
            f"(target >= {TARGET_BATCH_RATIO}); input pipeline alone "
            f"{med(batch['decode_only_img_s']):.1f} img/s")
    warning = machine.busy_warning(result["machine"])
    if warning:
        console.print(f"[yellow]warning: {warning}[/yellow]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) /
                        "fastfood-bench-predict", help="run dirs and images are kept here")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--cold-width", type=float, default=1.0,
                        help="model width for the cold start (1.0: the real 550 MB VGG19)")
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--entry", choices=("console", "group", "plain-init"),
                        default="console",
                        help="console: the `fastfood` script (what users run); group: the "
                             "click group without main()'s early TensorFlow import; "
                             "plain-init: console without the uninitialised-variable build")
    parser.add_argument("--compare", choices=("group", "plain-init"), default=None,
                        help="also time this entry, interleaved with --entry, in one run")
    parser.add_argument("--width", type=float, default=1.0,
                        help="model width for the batch throughput and precision checks")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--loader", default="auto", choices=("auto", "tfdata", "dali"))
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed rounds of (synthetic, input only, predict) passes")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "predict.json")
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    info = machine.machine_info(with_gpus=False)  # no TensorFlow in this process yet
    result: dict[str, Any] = {"benchmark": "predict", "machine": info,
                              "settings": {k: str(v) if isinstance(v, Path) else v
                                           for k, v in vars(args).items()}}
    warning = machine.busy_warning(info)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    one, files = make_images(args.work, args.images)

    if not args.skip_cold:
        cold_run = _in_subprocess_make_run(args.work, args.cold_width, args.image_size,
                                           args.classes)
        if args.compare:
            both = bench_cold_side_by_side(cold_run, one, args.cold_repeats,
                                           [args.entry, args.compare])
            result["cold"], result["cold_compare"] = both[args.entry], both[args.compare]
        else:
            result["cold"] = bench_cold(cold_run, one, args.cold_repeats, args.entry)
        for key in ("cold", "cold_compare"):
            if key in result:
                c = result[key]
                print(f"{key} ({c['entry']}): answer {c['answer_s_median']:.2f} s "
                      f"(exit {c['exit_s_median']:.2f} s)", file=sys.stderr)

    if not args.skip_batch:
        from fastfood.predict import Predictor

        run = make_run(args.work, args.width, args.image_size, args.classes)
        predictor = Predictor.load(run)
        result["batch1_precision"] = bench_batch1_precision(predictor)
        result["batch"] = bench_batch(predictor, files, args.batch_size, args.loader,
                                      args.repeats)
        result["machine"]["gpus"] = machine.gpus()
    result["machine"]["load_average_after"] = machine.load_average()
    report.write_json(result, args.out)
    print_summary(result)
    print(f"wrote {args.out}", file=sys.stderr)


def _in_subprocess_make_run(work: Path, width: float, image_size: int, classes: int) -> Path:
    """Make the cold-start run dir in a child process, so this one has not imported TF yet
    (it would otherwise hold ~1 GB and threads while the cold runs are timed)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import predict as p; from pathlib "
            "import Path; print(p.make_run(Path(sys.argv[2]), float(sys.argv[3]), "
            "int(sys.argv[4]), int(sys.argv[5])))")
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).resolve().parent), str(work),
         str(width), str(image_size), str(classes)],
        check=True, capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return Path(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
