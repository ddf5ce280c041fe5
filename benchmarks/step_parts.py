"""The parts of the training step beyond the network, on full-width VGG19's kernels
(140M parameters, float32 variables), before and after, interleaved in one process:
- l2_squares: the L2 term as reduce_sum(square(w)) / 2 with its gradient (before);
- l2_loss: the same value by `tf.nn.l2_loss` (after);
- sgd_keras: Keras' SGD-with-momentum update, five ops per variable (before);
- sgd_fused: `fastfood.train.optimizer.FusedSGD`, one kernel per variable (after).

    python benchmarks/step_parts.py --repeats 7 --out benchmarks/results/step_parts_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from fastfood.machine import machine_info
    from fastfood.model.layout import array_shapes
    from fastfood.train.optimizer import FusedSGD

    shapes = list(array_shapes(101, 224).values())
    kernels = [s for k, s in array_shapes(101, 224).items() if k.endswith("kernel")]
    rng = np.random.default_rng(0)
    wd = tf.constant(5e-4)
    ws = [tf.Variable(rng.normal(0, 0.01, s).astype(np.float32)) for s in kernels]
    upstream = [tf.constant(rng.normal(0, 1, s).astype(np.float32)) for s in kernels]

    def l2_step(penalty):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                value = penalty()
            grads = [g + u for g, u in zip(tape.gradient(value, ws), upstream)]
            return value, tf.add_n([g[(0,) * len(g.shape)] for g in grads])
        return step

    def sgd_step(cls, **kw):
        variables = [keras.Variable(np.zeros(s, np.float32)) for s in shapes]
        grads = [tf.fill(s, 1e-3) for s in shapes]
        opt = cls(learning_rate=0.01, momentum=0.9, **kw)
        opt.build(variables)

        @tf.function
        def step():
            opt.apply(grads, variables)
            return tf.constant(0.0), variables[0].value[0, 0, 0, 0]
        return step

    steps = {
        "l2_squares": l2_step(lambda: wd * tf.add_n(
            [tf.reduce_sum(tf.square(w)) for w in ws]) / 2.0),
        "l2_loss": l2_step(lambda: wd * tf.add_n([tf.nn.l2_loss(w) for w in ws])),
        "sgd_keras": sgd_step(FusedSGD, fused=False),
        "sgd_fused": sgd_step(FusedSGD),
    }
    values = {k: float(s()[0]) for k, s in steps.items()}
    seconds: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.repeats):
        for kind, step in steps.items():
            start = time.perf_counter()
            float(step()[1])
            seconds[kind].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    best = {k: min(v) for k, v in seconds.items()}
    result = {
        "params": int(sum(np.prod(s) for s in shapes)),
        "l2_values": {k: values[k] for k in ("l2_squares", "l2_loss")},
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "min_s": {k: round(v, 4) for k, v in best.items()},
        "after/before_median": {"l2": round(med["l2_loss"] / med["l2_squares"], 3),
                                "sgd": round(med["sgd_fused"] / med["sgd_keras"], 3)},
        "after/before_min": {"l2": round(best["l2_loss"] / best["l2_squares"], 3),
                             "sgd": round(best["sgd_fused"] / best["sgd_keras"], 3)},
        "seconds": seconds,
        "machine": machine_info(with_gpus=False),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("seconds", "machine")},
                     indent=1))


if __name__ == "__main__":
    main()
