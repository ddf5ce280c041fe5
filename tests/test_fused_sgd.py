"""The fused SGD update (one ResourceApplyKerasMomentum per variable) computes Keras' SGD
update to the bit, with Keras' variables, on one device and per replica; the L2 term by
tf.nn.l2_loss is the same value and gradient as reduce_sum(square(w)) / 2. (Two replicas
training as one device with it: tests/test_batchnorm.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastfood.train.optimizer import FusedSGD, ScaledSGD  # noqa: E402

SHAPES = [(3, 3, 2, 4), (4,), (10, 3)]


def _steps(make, schedule=False, steps=3):
    """Variables and momenta after `steps` updates with fixed, different gradients."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s).astype(np.float32)) for s in SHAPES]
    grads = [[tf.constant(rng.normal(size=s), tf.float32) for s in SHAPES]
             for _ in range(steps)]
    lr = keras.optimizers.schedules.PolynomialDecay(0.1, 10, 0.01) if schedule else 0.1
    opt = make(variables, lr)
    opt.build(variables)

    @tf.function
    def apply(gs):
        opt.apply(gs, variables)

    for gs in grads:
        apply(gs)
    graph = apply.get_concrete_function(grads[0]).graph
    fused = sum(op.type == "ResourceApplyKerasMomentum" for op in graph.get_operations())
    return ([np.asarray(v) for v in variables], [np.asarray(m) for m in opt.momentums],
            [v.path for v in opt.variables], fused)


@pytest.mark.parametrize("schedule", [False, True])
def test_fused_update_is_keras_sgd_to_the_bit(schedule):
    keras.mixed_precision.set_global_policy("float32")
    ours = _steps(lambda v, lr: FusedSGD(learning_rate=lr, momentum=0.9), schedule)
    theirs = _steps(lambda v, lr: keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
                    schedule)
    assert ours[3] == len(SHAPES) and theirs[3] == 0
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1]):
        np.testing.assert_array_equal(a, b)
    assert len(ours[2]) == len(theirs[2])  # the same optimizer variables


def test_keras_sgd_checkpoints_restore(tmp_path):
    """A run's optimizer state written with keras.optimizers.SGD restores one to one."""
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("float32")
    shapes = [(3, 2), (4,)]
    old_vars = [keras.Variable(np.ones(s, np.float32)) for s in shapes]
    old = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    old.build(old_vars)
    old.apply([tf.fill(s, 0.5) for s in shapes], old_vars)
    path = tf.train.Checkpoint(optimizer=old).write(str(tmp_path / "ckpt"))
    new_vars = [keras.Variable(np.ones(s, np.float32)) for s in shapes]
    new = FusedSGD(learning_rate=0.1, momentum=0.9)
    new.build(new_vars)
    tf.train.Checkpoint(optimizer=new).read(path).assert_consumed()
    assert int(new.iterations.numpy()) == 1
    for a, b in zip(new.momentums, old.momentums):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(new.momentums[0]), 0.0)


def test_scaled_sgd_is_fused_and_scales_only_its_variables():
    keras.mixed_precision.set_global_policy("float32")
    scaled = _steps(lambda v, lr: ScaledSGD(learning_rate=lr, momentum=0.9,
                                            scaled_variables=v[2:], lr_mult=10.0))
    plain = _steps(lambda v, lr: keras.optimizers.SGD(learning_rate=lr, momentum=0.9))
    assert scaled[3] == len(SHAPES)
    for a, b in zip(scaled[0][:2], plain[0][:2]):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(scaled[0][2], plain[0][2])


def test_nesterov_and_no_momentum_keep_keras_ops():
    keras.mixed_precision.set_global_policy("float32")
    for kwargs in ({"momentum": 0.9, "nesterov": True}, {"momentum": 0.0}):
        ours = _steps(lambda v, lr: FusedSGD(learning_rate=lr, **kwargs))
        theirs = _steps(lambda v, lr: keras.optimizers.SGD(learning_rate=lr, **kwargs))
        assert ours[3] == 0
        for a, b in zip(ours[0], theirs[0]):
            np.testing.assert_array_equal(a, b)


def test_l2_loss_is_the_sum_of_squares_over_two():
    import tensorflow as tf

    from fastfood.model import l2_loss, vgg19

    keras.mixed_precision.set_global_policy("float32")
    model = vgg19(3, image_size=32, width=0.125, weights=None, norm="batch")
    kernels = [v for v in model.trainable_variables if v.path.endswith("kernel")]
    with tf.GradientTape(persistent=True) as tape:
        ours = l2_loss(model, 5e-4)
        theirs = 5e-4 * tf.add_n([tf.reduce_sum(tf.square(k.value)) for k in kernels]) / 2
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)
    for a, b in zip(tape.gradient(ours, kernels), tape.gradient(theirs, kernels)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


REPLICAS_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fastfood.train.optimizer import FusedSGD

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    grads = [np.random.default_rng(i).normal(size=(5, 3)).astype(np.float32) for i in range(3)]

    def run(cls):
        with strategy.scope():
            var = keras.Variable(np.ones((5, 3), np.float32))
            opt = cls(learning_rate=0.1, momentum=0.9)
            opt.build([var])

        @tf.function
        def step(g):
            def replica(g):
                opt.apply([g / strategy.num_replicas_in_sync], [var])

            strategy.run(replica, args=(g,))

        for g in grads:
            step(g)
        return [v.numpy().tolist() for v in strategy.experimental_local_results(var.value)]

    print("RESULT " + json.dumps({"fused": run(FusedSGD), "keras": run(keras.optimizers.SGD)}))
""")


@pytest.mark.slow
def test_fused_update_per_replica_is_keras():
    """Under MirroredStrategy each replica's copy gets Keras' update (the gradients are
    summed across the replicas first)."""
    proc = subprocess.run([sys.executable, "-c", REPLICAS_SCRIPT], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                               "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    assert len(out["fused"]) == 2 and out["fused"][0] == out["fused"][1]
    assert out["fused"] == out["keras"]
    assert out["fused"][0] != np.ones((5, 3)).tolist()
