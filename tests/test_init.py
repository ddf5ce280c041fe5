"""Random init of the plain net (weights=None, norm='none'): the signal and the gradients
through VGG19 at init, measured on a real batch of the built-in sample.

Without batch norm the initial weights alone decide whether VGG19 trains from scratch:
Keras' default (Glorot) shrank the signal ~1000x by fc8 and training stalled; He-normal with
the input's scale divided out in conv1_1 alone gave that layer ~2000x the others' relative
update. fastfood.model.init spreads the scale over the body and starts the layers behind a
ReLU near the identity; these tests check the properties that made it train.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastfood.model import vgg19  # noqa: E402
from fastfood.model.init import LAYER_GAIN, NearIdentity, kernel_initializer  # noqa: E402
from fastfood.model.layout import LAYER_NAMES  # noqa: E402

BODY = LAYER_NAMES[:-1]  # conv1_1 .. fc7


@pytest.fixture(scope="module")
def batch(sample_dir):
    """16 real sample images at 64 px through the eval loader, with their labels."""
    import fastfood.data
    import fastfood.loaders

    spec = fastfood.data.load(sample_dir)
    ds = fastfood.loaders.build("tfdata", spec.train.files[:16], spec.train.labels[:16],
                                training=False, batch_size=16, image_size=64)
    images, labels = next(iter(ds))
    return np.asarray(images, dtype=np.float32), np.asarray(labels)


def layer_outputs(model: keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
    probe = keras.Model(model.input, [model.get_layer(n).output for n in LAYER_NAMES])
    return {n: np.asarray(o) for n, o in zip(LAYER_NAMES, probe(images, training=False))}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


@pytest.mark.parametrize("width", [0.125, 1.0])
def test_signal_stays_alive_and_reaches_fc7_at_order_one(batch, width):
    keras.utils.set_random_seed(0)
    model = vgg19(8, image_size=64, width=width, weights=None, norm="none")
    outs = layer_outputs(model, batch[0])
    table = "\n".join(f"{n:8s} rms {rms(v):8.4g} zeros {np.mean(v == 0):.2f}"
                      for n, v in outs.items())
    for a, b in zip(BODY, BODY[1:]):  # Glorot lost ~2x per layer; no layer may do that
        assert 0.5 < rms(outs[b]) / rms(outs[a]) < 1.5, f"{a} -> {b}\n{table}"
    for name in BODY:
        assert np.mean(outs[name] == 0) < 0.7, f"{name} mostly dead\n{table}"
    assert 0.3 < rms(outs["fc7"]) < 10, table  # the features fc8 sees are O(1)
    # fc7 still tells the images apart (a deep random ReLU stack makes them all alike).
    f = outs["fc7"] - outs["fc7"].mean(axis=0)
    assert rms(f) > 0.1 * rms(outs["fc7"]), table
    assert 0 < rms(outs["fc8"]) < 0.5, table  # tiny head: no confident guesses at init


def test_logits_at_init_are_small_and_the_loss_is_ln_classes(batch):
    keras.utils.set_random_seed(1)
    model = vgg19(8, image_size=64, width=0.125, weights=None, norm="none")
    logits = np.asarray(model(batch[0], training=True))  # dropout on, as in training
    assert logits.dtype == np.float32 and np.all(np.isfinite(logits))
    assert 0 < np.abs(logits).max() < 0.5, logits
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(batch[1], logits)
    assert float(xent) == pytest.approx(np.log(8), abs=0.1)


def _kernel_grads(model, images, labels, steps: int = 1):
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    opt = keras.optimizers.SGD(0.003)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=False))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
    return {v.path.split("/")[0]: (np.asarray(v), np.asarray(g))
            for v, g in zip(model.trainable_variables, grads) if v.path.endswith("kernel")}


def test_relative_updates_are_balanced_across_layers(batch):
    """|grad| / |kernel| within 30x over conv1_1..fc7 (conv1_1 alone scaled: ~2000x)."""
    keras.utils.set_random_seed(2)
    model = vgg19(8, image_size=64, width=0.125, weights=None, norm="none")
    kernels = _kernel_grads(model, *batch)
    ratios = {}
    for name in BODY:
        w, g = kernels[name]
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0, name
        ratios[name] = np.linalg.norm(g) / np.linalg.norm(w)
    assert max(ratios.values()) / min(ratios.values()) < 30, ratios


def test_near_identity_kernels():
    conv = np.asarray(NearIdentity(gain=0.8, noise=0.0, seed=0)((3, 3, 4, 6)))
    np.testing.assert_allclose(conv[1, 1, :, :4], 0.8 * np.eye(4), atol=1e-6)
    assert np.all(conv[[0, 2], :, :, :4] == 0) and np.all(conv[:, [0, 2], :, :4] == 0)
    assert np.abs(conv[..., 4:]).max() > 0  # extra outputs are random (He), not identity
    noisy = np.asarray(NearIdentity(gain=1.0, seed=0)((8, 8)))
    assert np.abs(noisy - np.eye(8)).max() > 0
    np.testing.assert_allclose(np.diag(noisy), 1.0, atol=0.5)
    # Serializable, so a saved model's config round-trips.
    again = keras.initializers.deserialize(keras.initializers.serialize(NearIdentity(0.7)))
    assert isinstance(again, NearIdentity) and again.gain == pytest.approx(0.7)


def test_initializers_are_for_random_init_only():
    """Pretrained builds keep Keras' defaults: a fresh fc8 for a new class count is still
    Glorot (nonzero), exactly as before; random init gets fastfood.model.init's."""
    from fastfood.model.vgg import _build

    keras.utils.set_random_seed(3)
    default = _build(8, 64, 0.125, 0.5, "slim", None)
    assert np.abs(np.asarray(default.get_layer("fc8").kernel)).max() > 0
    head = kernel_initializer("fc8")
    assert isinstance(head, keras.initializers.VarianceScaling) and head.scale < 1e-3
    assert isinstance(kernel_initializer("conv3_2"), NearIdentity)
    assert kernel_initializer("conv3_2").gain == pytest.approx(LAYER_GAIN)
