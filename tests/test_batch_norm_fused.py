"""fastfood's BatchNorm (Keras' layer run by the fused kernel) against Keras' own
BatchNormalization: the same outputs, moving statistics and gradients in float32 and in
bfloat16, the same training step of the whole model, and checkpoints of runs trained with
Keras' layer restore into it. (Two replicas against one device, where the two take Keras'
path with packed moments and the one takes the fused kernel: tests/test_batchnorm.py.)

Tolerances: float32 values agree to float32 rounding of a handful of sums (rtol 1e-5 on
values of order 1); a bfloat16 output is rounded once from a float32 that agrees that
closely, so it may differ by one bfloat16 step (2^-8 relative) where the two float32s fall
either side of a rounding boundary.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastfood.model import vgg19  # noqa: E402
from fastfood.model.batch_norm import BatchNorm  # noqa: E402

SHAPE = (4, 6, 6, 8)
BF16_STEP = 2.0 ** -8


@pytest.fixture(autouse=True)
def _restore_policy():
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


def _fused_ops(fn, *args) -> int:
    graph = fn.get_concrete_function(*args).graph
    return sum(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())


def _train_three_calls(layer_cls, policy: str, **kwargs) -> dict:
    """Three training calls (moving statistics move), gradients of a weighted sum of the
    output, then one inference call, on fixed data and fixed gamma/beta."""
    import tensorflow as tf

    keras.config.set_dtype_policy(policy)
    rng = np.random.default_rng(0)
    xs = [tf.constant(rng.normal(2.0, 3.0, SHAPE), tf.float32) for _ in range(3)]
    w = tf.constant(rng.normal(0.0, 1.0, SHAPE), tf.float32)
    layer = layer_cls(momentum=0.9, epsilon=1e-5, synchronized=True, **kwargs)
    layer.build(SHAPE)
    layer.gamma.assign(np.linspace(0.5, 1.5, SHAPE[-1]))
    layer.beta.assign(np.linspace(-1.0, 1.0, SHAPE[-1]))

    @tf.function
    def train(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * w)
        return [y, *tape.gradient(loss, [x, layer.gamma, layer.beta])]

    outs = [train(x) for x in xs]
    as_np = lambda t: np.asarray(tf.cast(t, tf.float32))  # noqa: E731
    return {
        "y": [as_np(o[0]) for o in outs], "dx": [as_np(o[1]) for o in outs],
        "dgamma": [as_np(o[2]) for o in outs], "dbeta": [as_np(o[3]) for o in outs],
        "y_dtype": outs[0][0].dtype.name,
        "moving_mean": as_np(layer.moving_mean), "moving_variance": as_np(layer.moving_variance),
        "inference": as_np(layer(xs[0], training=False)),
        "fused_ops": _fused_ops(train, xs[0]),
    }


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_same_outputs_moving_statistics_and_gradients_as_keras(policy):
    ours = _train_three_calls(BatchNorm, policy)
    theirs = _train_three_calls(keras.layers.BatchNormalization, policy)
    assert ours["fused_ops"] == 2 and theirs["fused_ops"] == 0  # forward, gradient
    assert ours["y_dtype"] == theirs["y_dtype"] == (
        "float32" if policy == "float32" else "bfloat16")
    # The activation (and its gradient) is rounded to the compute dtype; the statistics,
    # gamma's and beta's gradients stay float32 in both.
    half = policy != "float32"
    tol = dict(rtol=BF16_STEP, atol=BF16_STEP) if half else dict(rtol=1e-5, atol=1e-5)
    for key in ("y", "dx"):
        for a, b in zip(ours[key], theirs[key]):
            np.testing.assert_allclose(a, b, **tol, err_msg=key)
    for key in ("dgamma", "dbeta"):
        for a, b in zip(ours[key], theirs[key]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=key)
    np.testing.assert_allclose(ours["moving_mean"], theirs["moving_mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours["moving_variance"], theirs["moving_variance"], rtol=1e-5)
    # The variance the moving average took is the biased one (Keras'), not the kernel's
    # unbiased n / (n - 1) times it: 3 updates from 1.0 would differ by ~0.5% here.
    assert not np.allclose(ours["moving_variance"], 1.0)
    np.testing.assert_allclose(ours["inference"], theirs["inference"], **tol)


def test_fused_false_is_keras_own_ops():
    ours = _train_three_calls(BatchNorm, "float32", fused=False)
    theirs = _train_three_calls(keras.layers.BatchNormalization, "float32")
    assert ours["fused_ops"] == 0
    for a, b in zip(ours["y"], theirs["y"]):
        np.testing.assert_array_equal(a, b)


def test_a_mask_takes_keras_path():
    import tensorflow as tf

    keras.config.set_dtype_policy("float32")
    layer = BatchNorm(synchronized=True)
    layer.build((2, 5, 3))
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 3)), tf.float32)
    mask = tf.constant([[True] * 5, [True, True, False, False, False]])
    keras_layer = keras.layers.BatchNormalization(synchronized=True)
    keras_layer.build((2, 5, 3))
    np.testing.assert_array_equal(layer(x, training=True, mask=mask),
                                  keras_layer(x, training=True, mask=mask))


def _tiny(**kwargs):
    return vgg19(4, image_size=32, width=0.125, weights=None, norm="batch", dropout=0.0,
                 **kwargs)


def _keras_layers(model) -> None:
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            layer.fused = False


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_the_model_trains_as_with_keras_batch_norm(policy):
    """Two steps of fastfood's training step on the whole (tiny) model: losses, moving
    averages and the trained variables as with Keras' own batch-norm ops."""
    import tensorflow as tf

    from fastfood.train.step import make_optimizer, make_train_step

    keras.config.set_dtype_policy(policy)
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, 255, (8, 32, 32, 3)).astype(np.float32),
             rng.integers(0, 4, 8).astype(np.int32))

    def run(fused: bool) -> tuple[list[float], list[np.ndarray]]:
        keras.utils.set_random_seed(0)
        model = _tiny()
        if not fused:
            _keras_layers(model)
        opt = make_optimizer(0.01, 0.9, loss_scale=False)
        opt.build(model.trainable_variables)
        step = make_train_step(model, opt, tf.distribute.get_strategy(), global_batch=8,
                               weight_decay=5e-4)
        losses = [float(step(batch)["loss"]) for _ in range(2)]
        return losses, [np.asarray(v) for v in model.weights]

    (fused_losses, fused_vars), (keras_losses, keras_vars) = run(True), run(False)
    if policy == "float32":
        np.testing.assert_allclose(fused_losses, keras_losses, rtol=1e-5)
        for a, b in zip(fused_vars, keras_vars):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    else:  # bf16 rounding differences travel through 16 layers: looser, still close
        np.testing.assert_allclose(fused_losses, keras_losses, rtol=2e-2)
        for a, b in zip(fused_vars, keras_vars):
            np.testing.assert_allclose(a, b, rtol=5e-2, atol=5e-3)


def test_checkpoints_of_keras_batch_norm_runs_restore(tmp_path, monkeypatch):
    """A run trained before this layer existed has keras.layers.BatchNormalization
    variables: the same names and shapes, restored one to one."""
    import tensorflow as tf

    import fastfood.model.vgg as vgg

    keras.config.set_dtype_policy("float32")
    monkeypatch.setattr(vgg, "BatchNorm", keras.layers.BatchNormalization)
    keras.utils.set_random_seed(1)
    old = _tiny()
    monkeypatch.undo()
    assert not any(isinstance(layer, BatchNorm) for layer in old.layers)
    for layer in old.layers:  # moving statistics that are not their initial values
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(layer.moving_mean + 0.25)
            layer.moving_variance.assign(layer.moving_variance * 2.0)
    path = tf.train.Checkpoint(model=old).write(str(tmp_path / "ckpt"))

    keras.utils.set_random_seed(2)
    new = _tiny()
    assert sum(isinstance(layer, BatchNorm) for layer in new.layers) == 16
    assert [v.path for v in new.weights] == [v.path for v in old.weights]
    assert [v.shape for v in new.weights] == [v.shape for v in old.weights]
    tf.train.Checkpoint(model=new).read(path).assert_consumed()
    for a, b in zip(new.weights, old.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
