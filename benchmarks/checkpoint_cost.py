"""What one training checkpoint of the full-width VGG19 costs: bytes and seconds.

    python benchmarks/checkpoint_cost.py --dir /path/on/the/disk/to/measure --repeats 3 \\
        --out benchmarks/results/checkpoint_cost.json

Builds the model a fine-tuning run trains (plain VGG19, width 1, 224 px, 101 classes:
Food-101) and its SGD optimizer with momentum, as `fastfood.train.setup` does, then times
`fastfood.train.checkpoints.Checkpoints.save` (model, momentum, step counter, position),
and separately the `os.sync()` after it: TensorFlow's write returns once the bytes are in
the page cache, the sync is what the disk itself takes. Reports the bytes written and
both times per save.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: TMPDIR)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--classes", type=int, default=101)
    ap.add_argument("--norm", default="none", choices=("none", "batch"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import keras

    from fastfood import model as models
    from fastfood.benchmark.machine import machine_info
    from fastfood.config import ModelConfig
    from fastfood.train.checkpoints import Checkpoints, Position
    from fastfood.train.step import make_optimizer

    model = models.build(ModelConfig(num_classes=args.classes, image_size=224, width=1.0,
                                     weights="none", norm=args.norm))
    opt = make_optimizer(1e-3, 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    params = sum(int(v.numpy().size) for v in model.trainable_variables)
    work = Path(tempfile.mkdtemp(prefix="fastfood-ckpt-cost-", dir=args.dir))
    saves = []
    try:
        ckpts = Checkpoints(work, model, opt, keep=1)
        for i in range(args.repeats + 1):  # the first one also builds the save graph
            start = time.perf_counter()
            ckpts.save(Position(step=i + 1))
            wrote = time.perf_counter() - start
            start = time.perf_counter()
            os.sync()
            synced = time.perf_counter() - start
            size = sum(p.stat().st_size for p in (work / "ckpt").glob(f"ckpt-{i + 1}.*"))
            saves.append({"save_s": round(wrote, 3), "sync_s": round(synced, 3), "bytes": size})
    finally:
        shutil.rmtree(work, ignore_errors=True)
        keras.backend.clear_session()
    timed = saves[1:]
    med = lambda key: sorted(s[key] for s in timed)[len(timed) // 2]  # noqa: E731
    result = {
        "settings": {"classes": args.classes, "norm": args.norm, "width": 1.0,
                     "dir": str(args.dir or tempfile.gettempdir()), "repeats": args.repeats},
        "trainable_parameters": params,
        "bytes": timed[-1]["bytes"],
        "median_save_s": med("save_s"),
        "median_sync_s": med("sync_s"),
        "saves": saves,
        "machine": machine_info(),
    }
    total = result["median_save_s"] + result["median_sync_s"]
    result["mb_per_s_to_disk"] = round(result["bytes"] / 1e6 / total, 1) if total else None
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("trainable_parameters", "bytes", "median_save_s",
                                             "median_sync_s", "mb_per_s_to_disk")}))


if __name__ == "__main__":
    main()
