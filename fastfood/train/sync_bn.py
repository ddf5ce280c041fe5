"""Synchronised batch norm's cross-replica moments in ONE all-reduce per layer.

Keras 3's synchronised BatchNormalization (`_compute_moments_sync` in
keras/src/backend/tensorflow/nn.py) all-reduces three tensors per layer and step: the
per-channel sum, the sum of squares and an element count, each its own collective, and
the backward pass adds one per differentiable input (the sum and the sum of squares).
VGG19-BN has 16 such layers: 48 collectives forward and 32 backward. Here the three are
packed into one vector, so a step has 16 + 16. The arithmetic is Keras' own (float32,
mean = sum / count, variance = max(E[x^2] - mean^2, 0) over the global batch), and the
losses are bit-identical to Keras' (tests/test_sync_bn.py).

Interface (what a batch-norm layer must offer to be packed, whoever writes it): a
`synchronized` attribute, `_reduction_axes`, and a `_moments(inputs, mask) -> (mean,
variance)` method that the layer calls for its training-time batch statistics on float32
inputs, as Keras' BatchNormalization does (keras/src/layers/normalization/
batch_normalization.py, `call`). `install` replaces that method on each such layer of a
model (per instance, nothing global); a masked call keeps Keras' own path.
"""

from __future__ import annotations

from typing import Any


def packed_moments(x: Any, axes: Any) -> tuple[Any, Any]:
    """(mean, variance) of `x` over `axes` and over every replica in sync, per channel
    (the last axis), from one all-reduce of [sum, sum of squares, count]."""
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    x = tf.cast(x, tf.float32)
    channels = x.shape[-1]
    local_sum = tf.reduce_sum(x, axis=axes)
    local_squares = tf.reduce_sum(tf.square(x), axis=axes)
    count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
    packed = tf.concat([local_sum, local_squares, count[None]], axis=0)
    if ctx is not None:
        packed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, packed)
    total = packed[-1]
    mean = tf.math.divide_no_nan(packed[:channels], total)
    mean_square = tf.math.divide_no_nan(packed[channels:2 * channels], total)
    return mean, tf.maximum(mean_square - tf.square(mean), 0.0)


def install(model: Any) -> int:
    """Pack the moments of every synchronised batch-norm layer of `model`; how many."""
    count = 0
    for layer in model.layers:
        if not getattr(layer, "synchronized", False) or not hasattr(layer, "_moments"):
            continue
        if getattr(layer, "_fastfood_packed", False):
            count += 1
            continue
        layer._moments = _packed_for(layer, layer._moments)
        layer._fastfood_packed = True
        count += 1
    return count


def _packed_for(layer: Any, keras_moments: Any) -> Any:
    def moments(inputs: Any, mask: Any = None) -> tuple[Any, Any]:
        if mask is not None:
            return keras_moments(inputs, mask)
        return packed_moments(inputs, layer._reduction_axes)

    return moments
