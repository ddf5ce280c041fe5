"""bf16 (or fp16) against float32 at inference, side by side: `fastfood bench --what precision`.

Every figure pairs the two precisions in one process, measured in turn round by round so a
drifting machine load hits both alike (on a shared machine only these ratios mean much):

1. conv3x3 peak: one 3x3 SAME convolution, 56x56x256 -> 256, batch 16, the bulk of VGG19's
   work, in each precision: the GFLOP/s of its fastest call, the best this machine reaches,
   which bounds every ratio below.
2. Raw forward: the model on one synthetic uint8 batch, traced (no decoding).
3. Batch predict: `Predictor.predict_files` over the dataset's files (decoding included),
   against the raw bf16 forward rate.
4. Evaluate: `fastfood.evaluate.evaluate` at the half precision (its default on such a
   machine) and at fp32 on the same run and split, with the top-1 agreement it reports.
5. Serve: `fastfood serve --precision X` at 16 clients, for each precision.
6. Cold predict: `fastfood predict one.jpg` in a fresh process, wall time, default
   precision (which stays fp32 for one image on a CPU, see fastfood.inference.precision).

Rates are also given as GFLOP/s (forward FLOPs per image, `flops.forward_flops`) and as a
fraction of the same precision's conv3x3 peak. The run is an untrained VGG19 (speed does not
depend on the weights); agreement on random weights is a harsh case (flat, near-tied
logits), so a trained run's agreement is what `fastfood evaluate` reports on it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGETS = {"evaluate_speedup": 2.5, "batch_predict_vs_raw_forward": 0.8,
           "serve_speedup": 3.0, "cold_predict_s": 5.0}


@dataclass(frozen=True)
class PrecisionBench:
    """What one run measures; the defaults take a few minutes on 2 cores at full size."""

    batch_size: int = 16
    forward_batches: int = 2  # per round
    predict_files: int = 48
    serve_requests: int = 48
    clients: int = 16
    rounds: int = 2
    conv_batch: int = 16
    agreement_sample: int = 32


def conv_peak(dtype: str, batch: int = 16, size: int = 56, channels: int = 256,
              iterations: int = 8) -> float:
    """GFLOP/s of one traced 3x3 SAME conv2d in `dtype` (float32 | bfloat16 | float16), from
    the fastest of `iterations` calls after two warm-ups: a peak, so the best, not the mean."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    x = tf.cast(rng.uniform([batch, size, size, channels]), dtype)
    w = tf.cast(rng.uniform([3, 3, channels, channels]) * 0.01, dtype)
    conv = tf.function(lambda: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, w, 1, "SAME")[0, 0, 0],
                                                     tf.float32)))
    conv().numpy()
    conv().numpy()
    best = float("inf")
    for _ in range(iterations):
        start = time.perf_counter()
        conv().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * batch * size * size * channels * channels * 9 / best / 1e9


def _rounds(jobs: dict[str, Callable[[], int]], rounds: int,
            progress: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Each job (returns images done) timed once per round, jobs in turn: img/s medians."""
    rates: dict[str, list[float]] = {name: [] for name in jobs}
    for r in range(rounds):
        for name, job in jobs.items():
            progress(f"precision: {name}, round {r + 1}/{rounds}")
            start = time.perf_counter()
            done = job()
            rates[name].append(done / (time.perf_counter() - start))
    return {name: {"img_s": round(statistics.median(v), 3), "img_s_all": [round(x, 3) for x in v]}
            for name, v in rates.items()}


def _half(hw: Any) -> str:
    """The half precision this machine computes natively (bf16 where none: emulated)."""
    from fastfood.inference.precision import choose

    chosen = choose("auto", hw).name
    return chosen if chosen != "fp32" else "bf16"


def measure(files: list[str], classes: list[str], *, width: float = 1.0, image_size: int = 224,
            data_root: str = "", bench: PrecisionBench = PrecisionBench(),
            progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Everything of the module doc, over an untrained run of this size whose classes are
    the dataset's (`classes`, so evaluate can read its val split at `data_root`)."""
    import numpy as np
    import tensorflow as tf

    from fastfood import machine
    from fastfood.benchmark.flops import forward_flops
    from fastfood.benchmark.untrained import write_untrained_run
    from fastfood.predict import Predictor

    hw = machine.detect()
    half = _half(hw)
    names = ("fp32", half)
    dtypes = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
    out: dict[str, Any] = {
        "half": half, "native": bool(_half_native(hw)),
        "settings": {**bench.__dict__, "width": width, "image_size": image_size,
                     "files": len(files)},
        "targets": TARGETS,
    }
    progress("precision: conv3x3 peak")
    peaks: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(bench.rounds):
        for n in names:
            peaks[n].append(conv_peak(dtypes[n], bench.conv_batch))
    out["conv3x3_peak_gflops"] = {n: round(max(v), 1) for n, v in peaks.items()}

    with tempfile.TemporaryDirectory(prefix="fastfood-precision-bench-") as tmp:
        progress("precision: writing an untrained run")
        run = write_untrained_run(Path(tmp) / "run", classes, image_size=image_size,
                                  width=width, data_root=data_root)
        predictors = {n: Predictor.load(run, precision=n) for n in names}
        flops = forward_flops(predictors["fp32"].model)
        out["forward_gflop_per_image"] = round(flops / 1e9, 2)

        x = tf.constant(np.random.default_rng(0).integers(
            0, 256, (bench.batch_size, image_size, image_size, 3), dtype=np.uint8))
        for p in predictors.values():
            p.forward(x, traced=True)  # trace and warm up

        def forward(p: Any) -> Callable[[], int]:
            def job() -> int:
                for _ in range(bench.forward_batches):
                    p.forward(x, traced=True)
                return bench.forward_batches * bench.batch_size
            return job

        def predict(p: Any) -> Callable[[], int]:
            chosen = [files[i % len(files)] for i in range(bench.predict_files)]
            return lambda: sum(a.error is None for a in p.predict_files(
                chosen, batch_size=bench.batch_size, top_k=1))

        predict(predictors[half])()  # the loader's first pipeline, untimed
        out["forward"] = _rounds({n: forward(p) for n, p in predictors.items()},
                                 bench.rounds, progress)
        out["batch_predict"] = _rounds({n: predict(p) for n, p in predictors.items()},
                                       bench.rounds, progress)
        del predictors
        for section in ("forward", "batch_predict"):
            for n, row in out[section].items():
                row["gflops"] = round(row["img_s"] * flops / 1e9, 1)
                row["share_of_conv_peak"] = round(row["gflops"]
                                                  / out["conv3x3_peak_gflops"][n], 3)
        out["forward"]["ratio"] = _ratio(out["forward"], half)
        out["batch_predict"]["ratio"] = _ratio(out["batch_predict"], half)
        out["batch_predict_vs_raw_forward"] = round(
            out["batch_predict"][half]["img_s"] / out["forward"][half]["img_s"], 3)

        if data_root:
            out["evaluate"] = _evaluate(run, names, bench, progress)
        out["serve"] = _serve(run, files, names, bench, progress)
        out["cold_predict"] = _cold_predict(run, files[0], progress)
    return out


def _half_native(hw: Any) -> str:
    """The half type auto picks for a batch here, or '' when auto stays float32."""
    from fastfood.inference.precision import choose

    chosen = choose("auto", hw, images=None).name
    return "" if chosen == "fp32" else chosen


def _ratio(rows: dict[str, Any], half: str) -> float | None:
    fp32 = rows.get("fp32", {}).get("img_s")
    return round(rows[half]["img_s"] / fp32, 3) if fp32 else None


def _evaluate(run: Path, names: tuple[str, ...], bench: PrecisionBench,
              progress: Callable[[str], None]) -> dict[str, Any]:
    """evaluate() at each precision on the run's val split (its data root), in turn."""
    from fastfood.evaluate import evaluate

    rows: dict[str, Any] = {}
    for name in (names[1], names[0]):
        progress(f"precision: evaluate {name}")
        ev = evaluate(run, split="val", precision=name, batch_size=bench.batch_size,
                      agreement_sample=bench.agreement_sample)
        rows[name] = {"n": ev.n, "seconds": round(ev.seconds, 2),
                      "img_s": round(ev.n / ev.seconds, 3), "top1": ev.top1,
                      "agreement": ev.extra.get("agreement")}
    rows["speedup"] = round(rows["fp32"]["seconds"] / rows[names[1]]["seconds"], 3)
    rows["top1_diff"] = round(abs(rows["fp32"]["top1"] - rows[names[1]]["top1"]), 4)
    return rows


def _serve(run: Path, files: list[str], names: tuple[str, ...], bench: PrecisionBench,
           progress: Callable[[str], None]) -> dict[str, Any]:
    """`fastfood serve --precision X` at `clients` clients, one server per precision."""
    from fastfood.benchmark import serve as sb

    bodies = [Path(f).read_bytes() for f in files[:64]]
    settings = sb.ServeBench(clients=bench.clients)
    rows: dict[str, Any] = {}
    for name in names:
        progress(f"precision: serve {name}")
        server = sb.ServerProcess(run, settings, precision=name)
        try:
            sb.load(server.url, bodies, bench.clients, max_requests=2 * bench.clients,
                    max_seconds=300)  # warm-up
            got = sb.load(server.url, bodies, bench.clients, max_requests=bench.serve_requests,
                          max_seconds=600)
            rows[name] = got.summary()
        finally:
            server.stop()
    fp32 = rows["fp32"]["img_s"]
    rows["speedup"] = round(rows[names[1]]["img_s"] / fp32, 3) if fp32 else None
    return rows


def _cold_predict(run: Path, image: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """Wall seconds of `fastfood predict IMAGE` in a fresh process, default precision."""
    progress("precision: cold predict")
    argv = [sys.executable, "-c", "from fastfood.cli import main; main()", "predict", image,
            "--run-dir", str(run), "--json"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    chosen = next((line for line in done.stderr.splitlines() if "precision" in line), "")
    return {"seconds": round(seconds, 2), "exit_code": done.returncode,
            "precision_line": chosen.strip()}


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, figure) lines for the terminal table."""
    half = result["half"]
    peak = result.get("conv3x3_peak_gflops", {})
    rows = [("conv3x3 peak", f"fp32 {peak.get('fp32')} GFLOP/s, {half} {peak.get(half)} "
                             f"GFLOP/s ({(peak.get(half) or 0) / (peak.get('fp32') or 1):.2f}x)")]
    for section in ("forward", "batch_predict"):
        r = result.get(section, {})
        if r:
            rows.append((section.replace("_", " "), ", ".join(
                f"{n} {r[n]['img_s']:.2f} img/s ({r[n]['share_of_conv_peak']:.0%} of peak)"
                for n in ("fp32", half)) + f"; {r.get('ratio')}x"))
    rows.append(("batch predict / raw forward", f"{result.get('batch_predict_vs_raw_forward')}x"
                                                f" (target {TARGETS['batch_predict_vs_raw_forward']})"))
    ev = result.get("evaluate")
    if ev:
        agreement = ev[half].get("agreement") or {}
        rows.append(("evaluate", f"fp32 {ev['fp32']['seconds']} s, {half} "
                                 f"{ev[half]['seconds']} s: {ev['speedup']}x (target "
                                 f"{TARGETS['evaluate_speedup']}); top-1 diff {ev['top1_diff']}, "
                                 f"agreement {agreement.get('top1_agreement')} on "
                                 f"{agreement.get('sample')}"))
    sv = result.get("serve", {})
    if sv:
        rows.append((f"serve, {result['settings']['clients']} clients",
                     f"fp32 {sv['fp32']['img_s']} img/s, {half} {sv[half]['img_s']} img/s: "
                     f"{sv.get('speedup')}x (target {TARGETS['serve_speedup']})"))
    cold = result.get("cold_predict", {})
    if cold:
        rows.append(("cold predict one.jpg", f"{cold['seconds']} s (target "
                                             f"{TARGETS['cold_predict_s']} s)"))
    return rows
