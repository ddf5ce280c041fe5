"""Class weights and the EMA on two replicas (two logical CPUs) compute what one device
does: the weighted loss, the update, and the averaged weights.

Logical devices must be configured before TensorFlow initialises, so the comparison runs
in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fastfood.train import distribute
    from fastfood.train.ema import Ema
    from fastfood.train.step import make_optimizer, make_train_step
    from tests.test_class_weight import _tiny_model

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 8, 8, 3)).astype(np.uint8)
    labels = np.array([0, 0, 0, 0, 1, 0, 2, 0], np.int32)

    def run(strategy):
        with strategy.scope():
            model = _tiny_model()
            opt = make_optimizer(0.05, 0.9, loss_scale=False)
            opt.build(model.trainable_variables)
            ema = Ema(model, 0.5, strategy)
        step = make_train_step(model, opt, strategy, global_batch=8, weight_decay=0.0,
                               l2_fn=lambda m: tf.constant(0.0), class_weights=(0.4, 3.0, 3.0),
                               ema=ema)
        n = strategy.num_replicas_in_sync
        ds = distribute.distribute(
            strategy, lambda shard, batch, device: tf.data.Dataset.from_tensors(
                (images[shard[0] * batch:(shard[0] + 1) * batch],
                 labels[shard[0] * batch:(shard[0] + 1) * batch])).repeat(3),
            8 // n, placement="single" if n == 1 else "mirrored", on_device=False)
        it = iter(ds)
        xent = [float(step(next(it))["xent"]) for _ in range(3)]
        copies = [[c.numpy().ravel()[:6].tolist() for c in getattr(s, "values", [s])]
                  for s in ema.shadow]
        with ema.applied():
            applied = model.get_layer("fc8").kernel.numpy().ravel()[:6].tolist()
        return {"xent": xent, "kernel": model.get_layer("fc8").kernel.numpy().ravel()[:12].tolist(),
                "shadow": [c[0] for c in copies], "copies_agree": all(
                    np.allclose(c, cs[0]) for cs in copies for c in cs),
                "applied": applied}

    print("RESULT " + json.dumps({"one": run(distribute.make_strategy()),
                                  "two": run(distribute.make_strategy(devices=["/cpu:0", "/cpu:1"]))}))
    """
)


@pytest.mark.slow
def test_two_replicas_weigh_the_loss_and_average_the_weights_as_one_device():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines()
                             if line.startswith("RESULT "))[7:])
    one, two = result["one"], result["two"]
    assert two["xent"] == pytest.approx(one["xent"], rel=1e-4)
    assert two["kernel"] == pytest.approx(one["kernel"], rel=1e-4, abs=1e-6)
    assert two["copies_agree"]  # each replica's shadow is the same average
    for a, b in zip(one["shadow"], two["shadow"]):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-6)
    fc8 = one["shadow"][-2]  # fc8's kernel, the last but one float weight
    assert two["applied"] == pytest.approx(fc8, rel=1e-4, abs=1e-6)
    assert one["applied"] != pytest.approx(one["kernel"][:6], rel=1e-3)  # the average
