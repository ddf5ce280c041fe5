"""Training throughput: fastfood's step vs Keras `fit`, synthetic input vs real loaders.

The full-size training speed measurement: VGG19 at 224 px, batch 64, in fp32 and mixed
precision (bf16 on CPUs, fp16 on tensor-core GPUs), with

- `synthetic`: fastfood's compiled step fed one batch repeated (compute alone),
- `keras_fit`: `model.compile(SGD momentum, same loss)` + `model.fit` of the same model,
  precision, batch and XLA setting, also on one repeated batch,
- `dali`, `tfdata`: the step fed by a real loader, rebuilt every epoch (end to end),

all in one process, warm-up steps excluded, `--repeats` groups of `--steps` steps. It is
`fastfood bench --what train,e2e` at full size plus the target check, so the product's
benchmark and this one cannot measure differently.

    python benchmarks/make_dataset.py /tmp/ffbench --n 1200
    python benchmarks/train.py --data /tmp/ffbench      # -> benchmarks/results/train.json

Targets: mixed >= 1.4x Keras fit; fp32 never below Keras fit; a real loader
>= 0.95x synthetic input. Smoke test: --width 0.125 --image-size 64 --steps 2.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from fastfood.benchmark import report, suite

RESULTS = Path(__file__).resolve().parent / "results"
FIT_TARGET = {"mixed": 1.4, "fp32": 1.0}
LOADER_TARGET = 0.95


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: what was compared, the ratio, the target, met or not."""
    rows = []
    train = result.get("train", {})
    for name, row in train.items():
        precision, kind = name.split("/", 1)
        if "error" in row:
            continue
        if kind == "synthetic" and "ratio_to_keras_fit" in row and precision in FIT_TARGET:
            rows.append({"what": f"{precision}: fastfood step / Keras fit",
                         "ratio": row["ratio_to_keras_fit"], "target": FIT_TARGET[precision]})
        if kind not in ("synthetic", "keras_fit") and "ratio_to_synthetic" in row:
            rows.append({"what": f"{precision}: {kind} loader / synthetic input",
                         "ratio": row["ratio_to_synthetic"], "target": LOADER_TARGET})
    for row in rows:
        row["met"] = row["ratio"] >= row["target"]
    return rows


def print_targets(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Training speed targets", title_justify="left")
    for col in ("comparison", "ratio", "target", "met"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["what"], f"{row['ratio']:.2f}x", f">= {row['target']}x",
                      "yes" if row["met"] else "[red]no[/red]")
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="", help="dataset folder (default: built-in sample)")
    parser.add_argument("--precision", default="fp32,mixed")
    parser.add_argument("--loaders", default="dali,tfdata,synthetic",
                        help="inputs for the step (Keras fit always runs on synthetic)")
    parser.add_argument("--no-e2e", action="store_true", help="synthetic input and fit only")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="", help="default: benchmarks/results/train.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    settings = suite.BenchSettings(
        data=args.data, what=("train",) if args.no_e2e else ("train", "e2e"),
        loaders=tuple(args.loaders.split(",")), precisions=tuple(args.precision.split(",")),
        batch_size=args.batch_size, image_size=args.image_size,
        train_image_size=args.image_size, width=args.width, steps=args.steps,
        warmup=args.warmup, repeats=args.repeats,
    )
    start = time.perf_counter()
    result = suite.run(settings, progress=lambda msg: print(f"[train] {msg}", flush=True))
    result["targets"] = targets(result)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    path = report.write_json(result, args.json or RESULTS / "train.json")
    report.print_report(result)
    print_targets(result["targets"])
    print(f"wrote {path} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
