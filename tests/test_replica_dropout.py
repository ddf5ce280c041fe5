"""Dropout masks per replica: different on two replicas, one replica unchanged.

Keras 3's Dropout draws from a SeedGenerator whose state is mirrored under a strategy, so
without `fastfood.train.replica_dropout` both replicas of two logical CPUs drop the same
units (the script shows that too, on a layer the step did not touch). The step installs
the per-replica seeds when there are several replicas; with one, the step's losses are
those of a step built without it, to the bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fastfood.model import vgg19
    from fastfood.train.step import make_optimizer, make_train_step

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def masks(layer):
        @tf.function
        def draw():
            return strategy.run(lambda: layer(tf.ones([4, 64]), training=True))
        return [(v.numpy() != 0).astype(int).ravel().tolist()
                for v in strategy.experimental_local_results(draw())]

    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = vgg19(4, image_size=32, width=0.125, weights=None, norm="none", dropout=0.5)
        opt = make_optimizer(0.01, 0.9, loss_scale=False)
        opt.build(model.trainable_variables)
        untouched = keras.layers.Dropout(0.5, seed=1)
    make_train_step(model, opt, strategy, global_batch=8, weight_decay=5e-4)
    print("RESULT " + json.dumps({"step": masks(model.get_layer("dropout6")),
                                  "keras": masks(untouched)}))
""")


@pytest.mark.slow
def test_two_replicas_draw_different_masks() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                            "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    keras_masks, step_masks = out["keras"], out["step"]
    assert keras_masks[0] == keras_masks[1]  # what Keras alone does under a strategy
    assert step_masks[0] != step_masks[1]
    for mask in step_masks:  # still dropout at rate 0.5 (256 units)
        assert 0.35 < np.mean(mask) < 0.65


def test_one_replica_trains_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras
    import tensorflow as tf

    from fastfood.model import vgg19
    from fastfood.train import replica_dropout
    from fastfood.train.step import make_optimizer, make_train_step

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 32, 32, 3)).astype(np.uint8)
    labels = rng.integers(0, 4, 8).astype(np.int32)

    def losses() -> list[float]:
        strategy = tf.distribute.get_strategy()
        keras.utils.set_random_seed(0)
        model = vgg19(4, image_size=32, width=0.125, weights=None, norm="none", dropout=0.5)
        opt = make_optimizer(0.01, 0.9, loss_scale=False)
        opt.build(model.trainable_variables)
        step = make_train_step(model, opt, strategy, global_batch=8, weight_decay=5e-4)
        it = iter(tf.data.Dataset.from_tensors((images, labels)).repeat(3))
        assert not any(getattr(getattr(layer, "seed_generator", None), "_fastfood_per_replica",
                               False) for layer in model.layers)
        return [float(step(next(it))["loss"]) for _ in range(3)]

    with_it = losses()
    monkeypatch.setattr(replica_dropout, "install", lambda model, replicas: 0)
    assert losses() == with_it


def test_keras_dropout_still_draws_from_its_seed_generator() -> None:
    import keras

    layer = keras.layers.Dropout(0.5, seed=3)
    assert isinstance(layer.seed_generator, keras.random.SeedGenerator)
    assert callable(layer.seed_generator.next)
