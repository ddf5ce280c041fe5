"""The VGG19 builder: shapes, widths, dtypes, preprocessing, fc6's two forms, weight decay."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from fastfood.errors import FastfoodError  # noqa: E402
from fastfood.model import (  # noqa: E402
    FC6,
    Preprocess,
    convention_of,
    head_variables,
    l2_loss,
    vgg19,
)
from fastfood.model.layout import array_shapes  # noqa: E402

KERAS_VGG19_PARAMS = 143_667_240  # keras.applications.VGG19(weights=None).count_params()


@pytest.fixture
def mixed_bfloat16():
    """Set the global mixed policy for one test and put the previous one back."""
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def images(batch: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


def conv_channels(model) -> list[int]:
    names = [f"conv{b}_{i}" for b, n in enumerate((2, 2, 4, 4, 4), 1) for i in range(1, n + 1)]
    return [model.get_layer(name).filters for name in names]


@pytest.mark.parametrize(
    "size, width, fc6_kernel, fc6_rank",
    [
        (32, 0.125, 1, 2),
        (64, 0.125, 2, 2),
        (96, 0.25, 3, 2),
        (224, 0.0625, 7, 2),
        (256, 0.0625, 7, 4),
    ],
)
def test_shapes_at_sizes_and_widths(size, width, fc6_kernel, fc6_rank):
    model = vgg19(5, image_size=size, width=width, dropout=0.0, norm="none")
    assert model.input_shape == (None, size, size, 3)
    logits = model(images(2, size))
    assert tuple(logits.shape) == (2, 5)
    assert logits.dtype == tf.float32
    assert np.all(np.isfinite(logits.numpy()))
    fc6 = model.get_layer("fc6")
    assert tuple(fc6.kernel.shape)[:2] == (fc6_kernel, fc6_kernel)
    assert len(fc6.output.shape) == fc6_rank  # one position: squeezed; more: a map
    expected = [max(1, round(c * width)) for c in [64] * 2 + [128] * 2 + [256] * 4 + [512] * 8]
    assert conv_channels(model) == expected
    assert model.get_layer("fc7").units == max(1, round(4096 * width))
    # the shapes the importers check files against are the built ones
    built = {
        f"{layer.name}/{kind}": tuple(getattr(layer, kind).shape)
        for layer in model.layers
        if hasattr(layer, "kernel")
        for kind in ("kernel", "bias")
    }
    assert built == array_shapes(5, size, width)


def test_uint8_and_float_inputs_agree():
    model = vgg19(3, image_size=64, width=0.125)
    x = images(2, 64, seed=1)
    np.testing.assert_allclose(model(x).numpy(), model(x.astype(np.float32)).numpy(), rtol=1e-6)


def test_float32_logits_under_mixed_bfloat16(mixed_bfloat16):
    model = vgg19(4, image_size=64, width=0.125)
    assert model.get_layer("conv1_1").compute_dtype == "bfloat16"
    assert model.get_layer("fc8").compute_dtype == "bfloat16"
    logits = model(images(2, 64))
    assert logits.dtype == tf.float32
    assert model.get_layer("conv3_1").kernel.dtype == "float32"  # variables stay float32


def test_policy_was_restored():
    # runs after the mixed test in file order: a leaked policy would break other files
    assert keras.config.dtype_policy().name == "float32"


def test_preprocessing_subtracts_in_float32_before_the_cast(mixed_bfloat16):
    layer = Preprocess("slim")
    assert layer.compute_dtype == "bfloat16"
    x = np.full((1, 1, 1, 3), [124.3, 117.5, 200.25], dtype=np.float32)
    out = layer(x)
    assert out.dtype == tf.bfloat16
    want = np.array([124.3 - 123.68, 117.5 - 116.78, 200.25 - 103.94])
    # bf16 keeps 8 significant bits: 0.62 +- 0.4%; subtracting in bf16 would give 0.5
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy().ravel(), want, rtol=1 / 128)


def test_conventions():
    x = np.array([[[[10.0, 20.0, 30.0]]]], dtype=np.float32)
    slim = Preprocess("slim")(x).numpy().ravel()
    np.testing.assert_allclose(slim, [10 - 123.68, 20 - 116.78, 30 - 103.94], rtol=1e-6)
    bgr = Preprocess("keras")(x).numpy().ravel()
    np.testing.assert_allclose(bgr, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)
    with pytest.raises(FastfoodError, match="convention 'caffe'"):
        Preprocess("caffe")


def test_convention_default_and_override():
    assert convention_of(vgg19(2, image_size=32, width=0.125)) == "slim"
    model = vgg19(2, image_size=32, width=0.125, convention="keras")
    assert convention_of(model) == "keras"
    assert model.get_layer("preprocess").get_config()["convention"] == "keras"
    assert model.layers[1].name == "preprocess"  # first layer after the input
    assert model.fastfood_load_summary is None


def test_save_and_load_keeps_convention_and_outputs(tmp_path):
    model = vgg19(3, image_size=256, width=0.0625, dropout=0.3, convention="keras")
    x = images(1, 256, seed=2)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert convention_of(again) == "keras"
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spatial, kernel", [(7, 7), (3, 3), (9, 7)])
def test_fc6_matmul_is_the_convolution(spatial, kernel):
    x = tf.constant(np.random.default_rng(0).normal(size=(2, spatial, spatial, 5)), tf.float32)
    fast = FC6(6, kernel_size=kernel, use_matmul=True)
    slow = FC6(6, kernel_size=kernel, use_matmul=False)
    fast.build(x.shape)
    slow.build(x.shape)
    rng = np.random.default_rng(1)
    slow.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in slow.get_weights()])
    fast.set_weights(slow.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        a, b = fast(x), slow(x)
        ra, rb = tf.reduce_sum(a * a), tf.reduce_sum(b * b)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    ga, gb = tape.gradient(ra, fast.kernel.value), tape.gradient(rb, slow.kernel.value)
    np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-4, atol=1e-4)
    # and both are an independent VALID convolution + bias + ReLU
    ref = tf.nn.relu(tf.nn.conv2d(x, slow.kernel.value, 1, "VALID") + slow.bias.value)
    if spatial == kernel:
        ref = tf.reshape(ref, (2, 6))
    np.testing.assert_allclose(a.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


def test_l2_loss_is_half_sum_of_squared_kernels():
    model = vgg19(3, image_size=32, width=0.125, norm="none")
    for layer in model.layers:
        if hasattr(layer, "bias"):
            layer.bias.assign(np.full(layer.bias.shape, 100.0, np.float32))  # must not count
    kernels = [layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 19
    want = 5e-4 * sum(float(np.sum(k.astype(np.float64) ** 2)) for k in kernels) / 2
    got = l2_loss(model, 5e-4)
    assert got.dtype == tf.float32
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_l2_loss_in_float32_under_mixed_policy(mixed_bfloat16):
    model = vgg19(3, image_size=32, width=0.125)
    assert l2_loss(model, 1.0).dtype == tf.float32


def test_head_variables_are_fc8():
    model = vgg19(7, image_size=32, width=0.125)
    kernel, bias = head_variables(model)
    assert tuple(kernel.shape) == (512, 7) and tuple(bias.shape) == (7,)
    fc8 = model.get_layer("fc8")
    assert kernel is fc8.kernel and bias is fc8.bias


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "num_classes 0"),
        ({"num_classes": 2, "image_size": 31}, "image_size 31"),
        ({"num_classes": 2, "width": 0}, "width 0"),
        ({"num_classes": 2, "dropout": 1.0}, "dropout 1.0"),
        ({"num_classes": 2, "convention": "rgb"}, "convention 'rgb'"),
        (
            {"num_classes": 2, "weights": "imagenet", "width": 0.5},
            "width 0.5: pretrained weights need width 1.0",
        ),
        ({"num_classes": 2, "weights": "imagenet", "image_size": 192}, "minimum is 224"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(FastfoodError, match=message):
        vgg19(**kwargs)


@pytest.fixture(scope="module")
def full_model():
    return vgg19(1000, dropout=0.5, norm="none")  # the pretrained layout


def test_parameter_count_matches_keras_applications(full_model):
    assert full_model.count_params() == KERAS_VGG19_PARAMS
    assert tuple(full_model.get_layer("fc6").kernel.shape) == (7, 7, 512, 4096)


@pytest.mark.slow
def test_full_width_forward_and_backward_at_224(full_model):
    x = images(2, 224, seed=3)
    with tf.GradientTape() as tape:
        logits = full_model(x, training=True)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[1, 2], logits=logits)
        )
    grads = tape.gradient(loss, full_model.trainable_variables)
    assert tuple(logits.shape) == (2, 1000)
    assert len(grads) == 38
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    names = [v.path for v in full_model.trainable_variables]
    for layer in ("conv1_1/kernel", "fc6/kernel", "fc8/kernel"):
        grad = grads[names.index(layer)]
        assert float(tf.reduce_max(tf.abs(grad))) > 0, layer
