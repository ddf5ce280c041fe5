"""Slim's weight decay and the head's variables, for the training loop."""

from __future__ import annotations

import keras

from fastfood.model.fc6 import FC6


def kernels(model: keras.Model) -> list:
    """The kernels of every convolution and fully connected layer (no biases)."""
    return [
        layer.kernel
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense, FC6))
    ]


def l2_loss(model: keras.Model, weight_decay: float):
    """weight_decay * sum(w^2) / 2 over the kernels, in float32: slim's l2_regularizer.

    Biases are not decayed (slim's vgg_arg_scope regularises weights only). The variables
    are read in float32 even under a mixed policy, so bfloat16 rounding cannot bias it.
    `tf.nn.l2_loss` (sum(w^2) / 2) is one pass over a kernel and its gradient one product,
    where reduce_sum(square(w)) writes the squares out and differentiates in three passes:
    on VGG19's 140M parameters that halved the L2 term's cost (BENCHMARKS.md).
    """
    import tensorflow as tf

    halves = [tf.nn.l2_loss(tf.cast(k.value, tf.float32)) for k in kernels(model)]
    return tf.constant(weight_decay, tf.float32) * tf.add_n(halves)


def head_variables(model: keras.Model) -> list:
    """fc8's kernel and bias: what is trained while the rest is frozen (--freeze-epochs)."""
    layer = model.get_layer("fc8")
    return [layer.kernel, layer.bias]
