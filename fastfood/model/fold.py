"""Batch norm folded into the convolution before it, for inference.

At inference a BatchNormalization layer is a fixed affine map per channel:
y = gamma * (x - mean) / sqrt(var + eps) + beta. After a bias-free convolution with kernel W
that is the convolution with kernel W * s and bias beta - mean * s, s = gamma / sqrt(var +
eps), per output channel. The folded network is exactly the plain VGG19 layout (conv with
bias, then ReLU), so predict and serve run a BN-trained run at the plain net's cost: no
extra pass over every activation map.

The arithmetic is done in float64 from the float32 variables and rounded to float32 once,
so the folded model agrees with the unfolded one to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The suffix vgg.py gives the batch norm of each convolution.
BN_SUFFIX = "_bn"


def folded_conv(kernel: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                variance: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of the convolution that equals conv(kernel) followed by the BN."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    w = np.asarray(kernel, np.float64) * scale  # broadcasts over the last (output) axis
    b = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return w.astype(np.float32), b.astype(np.float32)


def fold_into(bn_model: Any, plain_model: Any) -> Any:
    """Fill `plain_model` (the same VGG19 built with norm='none') with `bn_model`'s weights,
    each batch norm folded into its convolution; returns `plain_model`.

    Every variable of `plain_model` is assigned (a layer it has and `bn_model` lacks is an
    error), so it may have been built uninitialised (`fastfood.inference.fastload`).
    """
    source = {layer.name: layer for layer in bn_model.layers}
    for layer in plain_model.layers:
        if not layer.weights:
            continue
        if layer.name not in source:
            raise ValueError(f"fold: {bn_model.name} has no layer {layer.name}")
        bn = source.get(layer.name + BN_SUFFIX)
        if bn is None:
            for target, value in zip(layer.weights, source[layer.name].weights, strict=True):
                target.assign(value)
            continue
        kernel, bias = folded_conv(
            source[layer.name].kernel.numpy(), bn.gamma.numpy(), bn.beta.numpy(),
            bn.moving_mean.numpy(), bn.moving_variance.numpy(), bn.epsilon)
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    return plain_model
