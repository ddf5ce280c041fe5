"""Synchronised batch norm's moments in one all-reduce per layer, and what XLA compiles.

On two logical CPUs: the packed moments (`fastfood.train.sync_bn`) train exactly as
Keras' own synchronised moments do (the same losses, to the bit, and the same moving
averages), with fewer collectives in the step's graph (2 per batch-norm layer, forward and
backward, against Keras' 5). `xla_scope` says what XLA compiles, so the run's report says
the truth (no XLA for forward and backward when sync BN runs on replicas that are not
all GPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fastfood.model import vgg19
    from fastfood.train import sync_bn
    from fastfood.train.step import cross_entropy, make_optimizer

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 32, 32, 3)).astype(np.float32)
    images[4:] *= 0.5  # the replicas' halves differ: local statistics would not do
    labels = rng.integers(0, 4, 8).astype(np.int32)
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((images, labels)).repeat())

    def run(packed):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = vgg19(4, image_size=32, width=0.125, weights=None, norm="batch", dropout=0)
            opt = make_optimizer(0.05, 0.9, loss_scale=False)
            opt.build(model.trainable_variables)
        layers = sync_bn.install(model) if packed else 0

        def replica(x, y):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(cross_entropy(y, model(x, training=True)),
                                                  global_batch_size=8)
            opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        @tf.function
        def step(batch):
            return strategy.reduce("SUM", strategy.run(replica, args=batch), axis=None)

        it = iter(data)
        graph = step.get_concrete_function(next(it)).graph
        collectives = sum(op.type.startswith("CollectiveReduce") for op in graph.get_operations())
        losses = [float(step(next(it))) for _ in range(3)]
        bn = model.get_layer("conv3_1_bn")
        means = [v.numpy().tolist() for v in
                 strategy.experimental_local_results(bn.moving_mean.value)]
        return {"losses": losses, "collectives": collectives, "packed_layers": layers,
                "moving_mean": means,
                "bn_layers": sum(getattr(l, "synchronized", False) for l in model.layers),
                "weights": len(model.trainable_variables)}

    print("RESULT " + json.dumps({"keras": run(False), "packed": run(True)}))
""")


@pytest.mark.slow
def test_packed_moments_train_as_keras_sync_bn_with_fewer_collectives() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                            "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    keras_run, packed = out["keras"], out["packed"]
    layers = packed["bn_layers"]
    assert layers == 16 and packed["packed_layers"] == layers
    assert packed["losses"] == keras_run["losses"]
    assert packed["moving_mean"] == keras_run["moving_mean"]
    assert packed["moving_mean"][0] == packed["moving_mean"][1]  # both replicas alike
    # One op per replica and collective. The rest (the gradients' all-reduce) is the same
    # in both; each BN layer's part shrinks from 5 (3 forward, 2 backward) to 2.
    assert keras_run["collectives"] % 2 == packed["collectives"] % 2 == 0
    rest = keras_run["collectives"] // 2 - 5 * layers
    assert rest >= 1 and packed["collectives"] // 2 == 2 * layers + rest, out


def test_keras_batch_norm_still_offers_what_the_packing_replaces() -> None:
    import inspect

    import keras

    layer = keras.layers.BatchNormalization(synchronized=True)
    layer.build((None, 4, 4, 3))
    assert list(inspect.signature(layer._moments).parameters) == ["inputs", "mask"]
    assert list(layer._reduction_axes) == [0, 1, 2]


def _strategy(replicas: int, device: str) -> SimpleNamespace:
    return SimpleNamespace(num_replicas_in_sync=replicas, extended=SimpleNamespace(
        worker_devices=[f"/job:worker/replica:0/task:0/device:{device}:{i}"
                        for i in range(replicas)]))


BN_MODEL = SimpleNamespace(layers=[SimpleNamespace(synchronized=True)])
PLAIN_MODEL = SimpleNamespace(layers=[SimpleNamespace()])


@pytest.mark.parametrize("model, replicas, device, jit, scope", [
    (BN_MODEL, 2, "CPU", False, "off"),
    (BN_MODEL, 1, "CPU", True, "step"),
    (BN_MODEL, 1, "GPU", True, "step"),
    (BN_MODEL, 2, "CPU", True, "sync_bn"),
    (BN_MODEL, 2, "GPU", True, "forward_backward"),
    (PLAIN_MODEL, 2, "CPU", True, "forward_backward"),
])
def test_xla_scope_says_what_is_compiled(model, replicas, device, jit, scope) -> None:
    from fastfood.train import step

    want = {"off": step.SCOPE_OFF, "step": step.SCOPE_STEP, "sync_bn": step.SCOPE_SYNC_BN,
            "forward_backward": step.SCOPE_FORWARD_BACKWARD}[scope]
    got = step.xla_scope(model, _strategy(replicas, device), jit)
    assert got == want
    assert step.is_compiled(got) == (scope in ("step", "forward_backward"))


def test_the_banner_says_when_xla_was_asked_for_and_compiles_nothing() -> None:
    from fastfood.train import step
    from fastfood.train.loop import xla_line

    assert xla_line(step.SCOPE_SYNC_BN, "asked for with --xla").startswith(
        "XLA off: synchronised batch norm")
    assert xla_line(step.SCOPE_STEP, "on by default on GPUs") == (
        "XLA on for the whole step: on by default on GPUs")
    assert xla_line(step.SCOPE_OFF, "off by default on CPUs (slower there)") == (
        "XLA off: off by default on CPUs (slower there)")
