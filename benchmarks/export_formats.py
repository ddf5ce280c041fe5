"""Export formats side by side: each written and checked by `fastfood export`, then all of
them timed in one process on the same pixels, the run's own Keras model among them.

    python benchmarks/export_formats.py --run-dir RUN [--check-images N] [--work DIR]
    # -> benchmarks/results/export.json (machine, versions, each export's check, the timing)

Each format goes through `fastfood.export.export_run` exactly as the command does (so the
agreement figures are the command's own, on the run's val split). Speed is then measured
once more with every file loaded back from disk in this process: batch 1 and batch 32, the
median of 10 rounds after two warm-ups, the run and the files taking turns in each round
(`fastfood.export.check.median_seconds`), so a busy moment of a shared machine hits all
of them and the ratios hold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fastfood import machine

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fastfood-export-bench"))
    parser.add_argument("--check-images", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS / "export.json")
    args = parser.parse_args()

    from fastfood.export import ExportRequest, export_run
    from fastfood.export import onnx, savedmodel, tflite
    from fastfood.export.check import median_seconds
    from fastfood.export.run import check_batches
    from fastfood.inference.forward import Forward
    from fastfood.inference.runs import load_run
    from fastfood.evaluate import split_files

    checks = {}
    for fmt in ("savedmodel", "tflite", "onnx"):
        out = args.work / fmt
        result = export_run(ExportRequest(out=out, run_dir=args.run_dir, format=fmt,
                                          force=True, check_images=args.check_images,
                                          batch_size=args.batch_size))
        checks[fmt] = result.to_json()
        print(f"{fmt}: " + ", ".join(f"{a.name} {a.agreement:.2%} (max dp {a.max_prob_diff:.2e})"
                                     for a in result.artifacts), flush=True)

    model, info = load_run(args.run_dir)
    _, files, _ = split_files(info, None, "val")
    batch = next(check_batches(files[:args.batch_size], info.image_size, args.batch_size,
                               info.config.loader.max_pixels, [], with_bytes=False)).pixels
    runners = {"run (keras, float32)": Forward(model, info.image_size, info.temperature)}
    runners["savedmodel (pixels)"] = savedmodel.load(args.work / "savedmodel", 0).probs
    runners["tflite"] = tflite.load(args.work / "tflite" / tflite.FLOAT_FILE, "tflite", 0).probs
    runners["tflite-int8"] = tflite.load(args.work / "tflite" / tflite.INT8_FILE,
                                         "tflite-int8", 0).probs
    runners["onnx"] = onnx.load(args.work / "onnx" / onnx.FILE, 0).probs
    one = median_seconds(list(runners.values()), batch[:1])
    many = median_seconds(list(runners.values()), batch)
    timing = {name: {"latency_ms_batch1": 1000 * a, "throughput_img_s": len(batch) / b}
              for name, a, b in zip(runners, one, many)}
    for name, t in timing.items():
        print(f"{name:22s} {t['latency_ms_batch1']:7.2f} ms  {t['throughput_img_s']:7.1f} img/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": machine.machine_info(with_gpus=False), "versions": machine.versions(),
        "run_dir": str(args.run_dir), "image_size": info.image_size,
        "width": info.config.model.width, "temperature": info.temperature,
        "batch_size": len(batch), "checks": checks, "timing": timing,
        "sizes_bytes": {p.name: p.stat().st_size for fmt in ("tflite", "onnx")
                        for p in (args.work / fmt).glob("model*")},
        "load_average_after": machine.load_average(),
    }, indent=2, default=lambda x: float(x) if isinstance(x, np.floating) else str(x)) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
