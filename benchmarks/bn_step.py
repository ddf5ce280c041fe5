"""The bfloat16 training step: plain VGG19, VGG19-BN before and after the fused batch norm,
and a bare Keras tf.function step, side by side in one process.

    python benchmarks/bn_step.py --width 0.5 --image-size 224 --batch-size 8 --repeats 9 \\
        --steps 1 --out benchmarks/results/bn_step_w05_224_b8_run1.json

Every variant trains on the same synthetic batch (compute only, no input pipeline), one
step at a time, timed in interleaved rounds so that load from other processes falls on
all of them alike; only the ratios between them mean anything on a shared machine.
- plain: fastfood's step (`fastfood.train.step.make_train_step`) on `--norm none`, as it
  trains now (the fused SGD update, L2 by `tf.nn.l2_loss`);
- plain_before: the same with what the step ran before: Keras' SGD ops
  (`FusedSGD(fused=False)`) and the L2 term as reduce_sum(square(w)) / 2;
- bn_keras: plain_before on `--norm batch` with Keras' own batch-norm ops
  (`BatchNorm(fused=False)`): the whole BN step as it was;
- bn_fused: plain on `--norm batch` with `fastfood.model.batch_norm.BatchNorm`: the BN
  step as it trains now;
- keras_bare: a bare `tf.function` step (tape, softmax cross-entropy, SGD with momentum,
  `apply_gradients`) on `keras.applications.VGG19(weights=None)` at width 1 and on the
  same layout built by hand at other widths; no L2 term, no dropout;
- with --diagnose, plain without its L2 term (plain_no_l2) and without dropout
  (plain_no_dropout), to tell where a gap to keras_bare comes from.
The first losses of bn_keras and bn_fused are recorded: same initial variables, same batch,
so they must agree to bfloat16 rounding.
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

NUM_CLASSES = 101


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2, help="steps per timed round")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds")
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--kinds", default="plain,plain_before,bn_keras,bn_fused,keras_bare")
    ap.add_argument("--diagnose", action="store_true",
                    help="also plain_no_l2 and plain_no_dropout")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from fastfood.machine import machine_info

    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if args.precision == "bf16" else "float32")
    kinds = args.kinds.split(",") + (["plain_no_l2", "plain_no_dropout"]
                                     if args.diagnose else [])
    rng = np.random.default_rng(0)
    size, batch = args.image_size, args.batch_size
    images = tf.constant(rng.integers(0, 255, (batch, size, size, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, NUM_CLASSES, batch).astype(np.int32))

    steps = {kind: build(kind, args) for kind in kinds}
    first = {kind: [float(step(images, labels)) for _ in range(2)]
             for kind, step in steps.items()}  # warm-up: tracing, thread pools
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.repeats):
        for kind, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                loss = step(images, labels)
            float(loss)
            seconds[kind].append((time.perf_counter() - start) / args.steps)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    best = {k: min(v) for k, v in seconds.items()}
    pairs = (("bn_keras", "plain_before"), ("bn_fused", "plain"), ("bn_fused", "bn_keras"),
             ("plain", "plain_before"), ("plain", "keras_bare"),
             ("plain_before", "keras_bare"), ("plain_no_l2", "plain"),
             ("plain_no_dropout", "plain"))

    def ratios(times: dict) -> dict:
        return {f"{a}/{b}": round(times[a] / times[b], 3) for a, b in pairs
                if a in times and b in times}

    result = {
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "first_losses": first,
        "median_s_per_step": {k: round(v, 4) for k, v in median.items()},
        "min_s_per_step": {k: round(v, 4) for k, v in best.items()},
        "img_s": {k: round(batch / v, 2) for k, v in median.items()},
        "time_ratios_median": ratios(median),
        "time_ratios_min": ratios(best),
        "seconds": seconds,
        "machine": machine_info(with_gpus=False),
        "load_average": os.getloadavg(),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("first_losses", "median_s_per_step", "img_s",
                                             "time_ratios_median", "time_ratios_min")},
                     indent=1))


def build(kind: str, args: argparse.Namespace):
    """A step `(images, labels) -> loss` for one variant, on freshly seeded variables."""
    import keras
    import tensorflow as tf

    from fastfood import model as models
    from fastfood.config import ModelConfig
    from fastfood.train.optimizer import FusedSGD
    from fastfood.train.step import make_train_step

    keras.utils.set_random_seed(0)
    if kind == "keras_bare":
        return bare_keras_step(args)
    before = kind in ("plain_before", "bn_keras")
    norm = "batch" if kind.startswith("bn_") else "none"
    dropout = 0.0 if kind == "plain_no_dropout" else 0.5
    model = models.build(ModelConfig(num_classes=NUM_CLASSES, image_size=args.image_size,
                                     width=args.width, weights="none", norm=norm,
                                     dropout=dropout))
    if kind == "bn_keras":
        for layer in model.layers:
            if hasattr(layer, "fused"):
                layer.fused = False
    opt = FusedSGD(learning_rate=0.01, momentum=0.9, fused=not before)
    opt.build(model.trainable_variables)
    l2_fn = None  # the step's own
    if kind == "plain_no_l2":
        l2_fn = lambda m: tf.constant(0.0)  # noqa: E731
    elif before:
        l2_fn = lambda m: squares_l2(m, 5e-4)  # noqa: E731
    step = make_train_step(model, opt, tf.distribute.get_strategy(),
                           global_batch=args.batch_size, weight_decay=5e-4, l2_fn=l2_fn)
    return lambda images, labels: step((images, labels))["loss"]


def squares_l2(model, weight_decay: float):
    """The L2 term as fastfood computed it before `tf.nn.l2_loss`: the same value."""
    import tensorflow as tf

    from fastfood.model.regularization import kernels

    squares = [tf.reduce_sum(tf.square(tf.cast(k.value, tf.float32))) for k in kernels(model)]
    return tf.constant(weight_decay, tf.float32) * tf.add_n(squares) / 2.0


def bare_keras_step(args: argparse.Namespace):
    """What a Keras user writes: the model, a tape, the loss, apply_gradients."""
    import keras
    import tensorflow as tf

    model = keras_vgg19(args.width, args.image_size)
    opt = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    opt.build(model.trainable_variables)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def keras_vgg19(width: float, image_size: int):
    """keras.applications.VGG19 with logits out; by hand (same layout) at other widths."""
    import keras

    from fastfood.model.layout import BLOCKS, FC_UNITS, scaled

    if width == 1.0:
        return keras.applications.VGG19(weights=None, input_shape=(image_size, image_size, 3),
                                        classes=NUM_CLASSES, classifier_activation=None)
    layers = [keras.Input((image_size, image_size, 3))]
    for channels, convs in BLOCKS:
        layers += [keras.layers.Conv2D(scaled(channels, width), 3, padding="same",
                                       activation="relu") for _ in range(convs)]
        layers.append(keras.layers.MaxPooling2D(2, 2))
    units = scaled(FC_UNITS, width)
    layers += [keras.layers.Flatten(), keras.layers.Dense(units, activation="relu"),
               keras.layers.Dense(units, activation="relu"),
               keras.layers.Dense(NUM_CLASSES)]
    return keras.Sequential(layers)


if __name__ == "__main__":
    main()
