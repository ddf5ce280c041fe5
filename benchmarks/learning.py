"""From-scratch recipes side by side: val top-1 per epoch for each recipe and seed.

    python benchmarks/make_digits.py data/digits
    python benchmarks/learning.py --data data/digits --recipes old,new --seeds 0,1,2 \\
        --out benchmarks/results/learning_digits.json

A recipe is a set of overrides of TrainConfig / ModelConfig on top of the run given by the
flags (default: width 0.125, 32 px, 20 epochs, batch 64, tf.data, precision auto); each run
goes through `fastfood.train.train_and_evaluate` as `fastfood train` does. `old` is the
recipe before batch norm (plain net, near-identity init, lr 1e-3, no warm-up, random-resized
crops); `new` is today's defaults (`fastfood.train.recipe`). Runs go one after another; wall times are as measured on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: name -> overrides of the config's sections. Fields left out take the config defaults.
RECIPES: dict[str, dict[str, dict]] = {
    "old": {"model": {"norm": "none"}, "train": {"lr": 1e-3, "warmup_epochs": 0.0},
            "loader": {"train_crop": "inception"}},
    "new": {},
}
WORDS = ("linear", "cosine", "batch", "none", "auto", "inception", "seed")


def parse_recipe(text: str) -> tuple[str, dict[str, dict]]:
    """'old', 'new', or 'name:field=value;...' over 'new' (e.g. 'bn01:lr=0.1;norm=batch')."""
    if ":" not in text:
        return text, {k: dict(v) for k, v in RECIPES[text].items()}
    name, _, fields = text.partition(":")
    base, _, fields = (fields.partition("+") if "+" in fields else ("new", "", fields))
    from fastfood.config import LoaderConfig, ModelConfig

    sections = {k: dict(v) for k, v in RECIPES[base].items()}
    section_of = {f.name: "model" for f in dataclasses.fields(ModelConfig)}
    section_of.update({f.name: "loader" for f in dataclasses.fields(LoaderConfig)})
    for item in filter(None, fields.split(";")):
        key, _, value = item.partition("=")
        parsed: Any = value if value in WORDS else float(value)
        sections.setdefault(section_of.get(key, "train"), {})[key] = parsed
    return name, sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--recipes", default="old,new",
                        help="comma-separated; 'name:field=value;...' over new, "
                        "'name:old+field=value;...' over old")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (appended)")
    args = parser.parse_args()

    from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
    from fastfood.train import metrics, recipe, train_and_evaluate

    results = json.loads(args.out.read_text()) if args.out and args.out.exists() else []
    for text in args.recipes.split(","):
        name, over = parse_recipe(text)
        model_over, train_over = over.get("model", {}), over.get("train", {})
        for seed in [int(s) for s in args.seeds.split(",")]:
            with tempfile.TemporaryDirectory() as tmp:
                config = RunConfig(
                    data=DataConfig(root=args.data),
                    loader=LoaderConfig(kind="tfdata", batch_size=args.batch_size,
                                        **over.get("loader", {})),
                    model=ModelConfig(image_size=args.image_size, width=args.width,
                                      weights="none", **model_over),
                    train=TrainConfig(epochs=args.epochs, precision=args.precision, seed=seed,
                                      run_dir=str(Path(tmp) / "run"), **train_over),
                )
                config = recipe.resolve(config)
                resolved = {"norm": config.model.norm, "lr": config.train.lr,
                            "warmup_epochs": config.train.warmup_epochs,
                            "crop": config.loader.train_crop}
                started = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()):
                    summary = train_and_evaluate(config, fancy=False, log_every=1)
                wall = time.perf_counter() - started
                records = metrics.read(Path(tmp) / "run")
            val = [round(r["top1"], 4) for r in records if r["kind"] == "val"]
            train = [r for r in records if r["kind"] == "train"]
            row = {
                "recipe": name, "seed": seed, "overrides": over,
                "resolved": resolved, "final_top1": val[-1] if val else None,
                "best_top1": summary["best_top1"], "val_top1_per_epoch": val,
                "first_xent": train[0]["xent"] if train else None,  # step 1's
                "precision": summary["precision"], "wall_s": round(wall, 1),
                "data": args.data, "width": args.width, "image_size": args.image_size,
                "epochs": args.epochs, "batch_size": args.batch_size,
            }
            results.append(row)
            print(f"{name:12s} seed {seed}: final top1 {row['final_top1']:.3f} best "
                  f"{row['best_top1']:.3f} first xent {row['first_xent']:.3f} "
                  f"{resolved} {wall:.0f}s  curve {val}", flush=True)
            if args.out:
                args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
