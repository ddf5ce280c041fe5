"""FLOP counting and peak lookup behind the model-FLOP-utilisation figure of gpu_smoke."""

from __future__ import annotations

import pytest

from fastfood.benchmark import flops


def test_counts_convolutions_and_dense_layers():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 positions x 3*3*3*4 MACs
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(6, 3, padding="valid")(x)  # 2*2 positions x 3*3*4*6 MACs
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)  # 24 x 5 MACs
    model = keras.Model(inputs, outputs)
    assert flops.forward_flops(model) == 2 * (64 * 108 + 4 * 216 + 24 * 5)


@pytest.mark.slow
def test_vgg19_forward_is_39_gflop_at_224():
    from fastfood.model import vgg19

    model = vgg19(1000, image_size=224, width=1.0, weights=None)
    assert flops.forward_flops(model) == pytest.approx(39.3e9, rel=0.002)


def test_vgg19_flops_follow_width_and_size():
    from fastfood.model import vgg19

    small = flops.forward_flops(vgg19(10, image_size=32, width=0.125, weights=None))
    wider = flops.forward_flops(vgg19(10, image_size=32, width=0.25, weights=None))
    larger = flops.forward_flops(vgg19(10, image_size=64, width=0.125, weights=None))
    assert 3.0 < wider / small < 4.0  # channels^2 in every conv but the first
    assert larger > 3 * small


@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H100 PCIe", 756), ("NVIDIA H200", 989),
    ("NVIDIA A100-SXM4-80GB", 312), ("Tesla V100-SXM2-16GB", 125), ("NVIDIA L4", 121),
    ("NVIDIA L40S", 362), ("NVIDIA GeForce RTX 4090", 165), ("NVIDIA A10", 125),
    ("Tesla T4", 65), ("NVIDIA GeForce GTX 1080", None),
])
def test_peak_table(name, tflops):
    peak = flops.peak_flops(name)
    assert (peak / 1e12 if peak else None) == tflops


def test_utilisation():
    assert flops.utilisation(1000.0, 39.3e9, 989e12) == pytest.approx(1000 * 3 * 39.3e9 / 989e12)
    assert flops.utilisation(1000.0, 39.3e9, None) is None
    assert flops.utilisation(None, 39.3e9, 989e12) is None
