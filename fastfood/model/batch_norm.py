"""Batch norm that trains through TensorFlow's fused kernel where that is the same maths.

Keras 3's BatchNormalization casts a bfloat16 activation to float32, computes the batch
moments and the normalisation as separate float32 ops and casts back: about ten full passes
over every activation forward and back, which made the batch-norm VGG19's bfloat16 step
1.4x (2-core EPYC, width 0.5) to 2.5x (Xeon with AMX, full width) the plain one's.
FusedBatchNormV3 (oneDNN's kernel on CPUs) does the moments and the normalisation of a
bfloat16 activation in float32 inside one kernel, and its gradient in one more; with it
the step is within a few percent of the plain one (BENCHMARKS.md, "Batch norm in bf16").

It computes what Keras' layer computes, to float32 rounding:
- the batch mean and variance in float32 (the kernel's variance is (x - mean)^2 averaged,
  Keras' is E[x^2] - mean^2: equal up to float32 rounding), the output normalised in
  float32 and rounded once to the compute dtype;
- the moving statistics by Keras' update on the biased batch variance (the kernel returns
  the unbiased one, n / (n - 1) times it, undone here);
- the gradients of BN's closed-form backward, which is the derivative of Keras' ops.
Where the kernel would not compute the same thing, Keras' own call runs: a synchronised
layer training with several replicas in sync (the moments are the global batch's; see
`fastfood.train.sync_bn`), a mask, renorm, a channel axis other than the last or an input
that is not 4-D. GPUs also keep Keras' ops (XLA fuses them there; the fused kernel's
bfloat16 support was not measured on them).

The variables are Keras' own (same names, shapes, order), so checkpoints written by runs
that trained with `keras.layers.BatchNormalization` restore into this layer unchanged.
"""

from __future__ import annotations

from typing import Any

import keras

_FUSED_DTYPES = ("float16", "bfloat16", "float32")


@keras.saving.register_keras_serializable(package="fastfood")
class BatchNorm(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization, run by FusedBatchNormV3 where that is the same.

    `fused=False` keeps Keras' own ops everywhere (for comparisons and benchmarks).
    """

    def __init__(self, *args: Any, fused: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fused = bool(fused)

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        train = bool(training) and self.trainable
        if not self._fusable(inputs, mask, train):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels], tf.float32)
        beta = self.beta if self.center else tf.zeros([channels], tf.float32)
        gamma, beta = tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32)
        if not train:
            y, *_ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon, data_format="NHWC", is_training=False)
            return tf.cast(y, self.compute_dtype)
        empty = tf.constant([], tf.float32)
        y, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=gamma, offset=beta, mean=empty, variance=empty,
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        variance = unbiased * _bessel_inverse(inputs)
        moving_mean = tf.cast(self.moving_mean, tf.float32)
        moving_variance = tf.cast(self.moving_variance, tf.float32)
        # Keras' own update expressions, in the same order.
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)

    def _fusable(self, inputs: Any, mask: Any, train: bool) -> bool:
        import tensorflow as tf

        if not self.fused or mask is not None or self.renorm:
            return False
        if len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return False
        if keras.backend.standardize_dtype(inputs.dtype) not in _FUSED_DTYPES:
            return False
        if tf.config.list_logical_devices("GPU"):
            return False
        if train and self.synchronized:
            ctx = tf.distribute.get_replica_context()
            if ctx is not None and ctx.num_replicas_in_sync > 1:
                return False
        return True

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fused": self.fused}


def _bessel_inverse(x: Any) -> Any:
    """(n - 1) / n for the n values per channel of `x` (1 when n is 1, as the kernel does)."""
    import tensorflow as tf

    n = tf.cast(tf.size(x, out_type=tf.int64) // tf.cast(tf.shape(x)[-1], tf.int64),
                tf.float32)
    return tf.where(n > 1.0, (n - 1.0) / tf.maximum(n, 1.0), 1.0)
