"""Synchronised batch norm on two replicas: Keras' moments, packed moments, and no sync.

    python benchmarks/sync_bn.py --width 0.125 --image-size 32 --batch-size 32 --repeats 9 \\
        --out benchmarks/results/sync_bn_2cpu.json

Two logical CPUs under one MirroredStrategy train the from-scratch VGG19-BN with fastfood's
step (`fastfood.train.step.make_train_step`, XLA off: sync BN cannot be compiled on
CPUs) three ways, built side by side and timed interleaved, repeat by repeat:
- keras: Keras' synchronised moments (3 all-reduces per layer forward, 2 backward),
  what the step ran before `fastfood.train.sync_bn`;
- packed: `fastfood.train.sync_bn` (1 forward, 1 backward), what it runs now;
- local: unsynchronised BN (per-replica statistics): NOT the same training (each replica
  normalises with its own half batch), the floor the synchronisation costs are measured
  against.
The first three losses of each are recorded: keras and packed must agree to the bit.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

KINDS = ("keras", "packed", "local")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="steps per timed repeat")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from fastfood import model as models
    from fastfood.benchmark.machine import machine_info
    from fastfood.config import ModelConfig
    from fastfood.train import sync_bn
    from fastfood.train.step import make_optimizer, make_train_step

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    size, batch = args.image_size, args.batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (batch, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, 10, batch).astype(np.int32)
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((images, labels)).repeat())

    def build(kind: str):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = models.build(ModelConfig(num_classes=10, image_size=size, width=args.width,
                                             weights="none", norm="batch", dropout=0.0))
            opt = make_optimizer(0.01, 0.9, loss_scale=False)
            opt.build(model.trainable_variables)
        for layer in model.layers:
            if kind == "local" and getattr(layer, "synchronized", False):
                layer.synchronized = False
        if kind == "keras":  # make_train_step packs what is synchronised: mark them done
            for layer in model.layers:
                if getattr(layer, "synchronized", False):
                    layer._fastfood_packed = True
        step = make_train_step(model, opt, strategy, global_batch=batch, weight_decay=5e-4)
        if kind == "packed":
            assert sync_bn.install(model) == 16
        return step, iter(data)

    runs = {kind: build(kind) for kind in KINDS}
    first = {kind: [float(step(next(it))["loss"]) for _ in range(3)] for kind, (step, it) in runs.items()}
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(args.repeats):
        for kind, (step, it) in runs.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                logs = step(next(it))
            float(logs["loss"])
            seconds[kind].append((time.perf_counter() - start) / args.steps)
    median = {k: sorted(v)[len(v) // 2] for k, v in seconds.items()}
    result = {
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "first_losses": first,
        "keras_equals_packed": first["keras"] == first["packed"],
        "median_s_per_step": median,
        "ratio_to_keras": {k: round(median[k] / median["keras"], 3) for k in KINDS},
        "seconds": seconds,
        "machine": machine_info(),
    }
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps({k: result[k] for k in ("keras_equals_packed", "median_s_per_step",
                                             "ratio_to_keras")}))


if __name__ == "__main__":
    main()
