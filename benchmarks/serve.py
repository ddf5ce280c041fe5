"""Serve speed: `fastfood serve` under 1 and 16 concurrent clients against offline batch
predict of the same model in the same run, its memory, and what it does at 4x its queue bound.

    python benchmarks/serve.py                     # width 0.25 at 224 px, 101 classes; a few
                                                   # minutes on 2 CPU cores
    python benchmarks/serve.py --requests 128 --repeats 1 --overload-s 3   # quicker
    # -> benchmarks/results/serve.json (machine, versions, settings, every round)

The model is an untrained run directory (random weights, written once through fastfood's
own run-dir format: speed does not depend on what the weights learned). The requests are
photo-like JPEGs at Food-101's sizes (benchmarks/make_dataset.py), each sent as a raw body to
POST /v1/predict. Everything runs on 127.0.0.1 and stops by itself: see
fastfood/benchmark/serve.py for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import make_dataset

from fastfood import machine
from fastfood.benchmark import report
from fastfood.benchmark import serve as sb

RESULTS = Path(__file__).resolve().parent / "results"


def make_run(work: Path, width: float, image_size: int, classes: int) -> Path:
    """The untrained run directory (made once, reused while its settings match)."""
    run = work / f"run-w{width:g}-s{image_size}-c{classes}"
    if not (run / "classes.json").is_file():
        from fastfood.benchmark.untrained import write_untrained_run

        write_untrained_run(run, [f"class_{i:03d}" for i in range(classes)],
                            image_size=image_size, width=width)
    return run


def make_images(work: Path, n: int) -> list[str]:
    folder = work / f"images-{n}"
    if len(list(folder.rglob("*.jpg"))) != n:
        make_dataset.make_dataset(folder, n=n, seed=0)
    return sorted(str(p) for p in folder.rglob("*.jpg"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) /
                        "fastfood-bench-serve", help="run dir and images are kept here")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--images", type=int, default=64, help="distinct request bodies")
    defaults = sb.ServeBench()
    parser.add_argument("--requests", type=int, default=defaults.requests_16,
                        help="requests per 16-client round (and images per offline pass)")
    parser.add_argument("--requests-1", type=int, default=defaults.requests_1)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch)
    parser.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms)
    parser.add_argument("--max-queue", type=int, default=defaults.max_queue)
    parser.add_argument("--overload-s", type=float, default=defaults.overload_s)
    parser.add_argument("--json", type=Path, default=RESULTS / "serve.json")
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    info = machine.machine_info(with_gpus=False)
    run = make_run(args.work, args.width, args.image_size, args.classes)
    files = make_images(args.work, args.images)
    bench = sb.ServeBench(requests_16=args.requests, requests_1=args.requests_1,
                          repeats=args.repeats, max_batch=args.max_batch,
                          max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                          overload_s=args.overload_s)
    result = sb.measure(run, files, bench, progress=lambda m: print(f"[serve] {m}", flush=True))
    result = {"machine": info, "model": {"width": args.width, "image_size": args.image_size,
                                         "classes": args.classes}, **result}
    result["machine"]["load_average_after"] = machine.load_average()
    report.write_json(result, args.json)
    for what, figure in sb.summary_rows(result):
        print(f"{what:>24}: {figure}")
    warning = machine.busy_warning(info)
    if warning:
        print(f"warning: {warning}")
    print(f"wrote {args.json}")
    print(json.dumps({"ratio_to_offline": result.get("ratio_to_offline"),
                      "meets_target": result.get("meets_target")}))


if __name__ == "__main__":
    main()
