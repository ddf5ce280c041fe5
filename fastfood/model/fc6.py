"""TF-slim's convolutional fc6, computed as a matrix product where that is the same maths.

Slim's VGG19 stores fc6 as a 7x7 convolution kernel [7, 7, 512, 4096] applied VALID to the
7x7x512 pool5 map, so at 224 px it has exactly one output position. That convolution is the
same sum as flattening pool5 (HWC order) and multiplying by the kernel reshaped to
[25088, 4096], and a matrix product is what BLAS and cuBLAS are fastest at; oneDNN's
convolution backward-filter for this odd shape (a 7x7 kernel the size of its input, 4096
filters) is far slower than the equivalent matmul. So the layer keeps slim's kernel shape
(checkpoints import unchanged, and larger inputs still slide it as a convolution) but picks
the matmul whenever the input is exactly the kernel's size.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fastfood")
class FC6(keras.layers.Layer):
    """k x k VALID convolution + bias + ReLU with a [k, k, in, filters] kernel.

    Output: [batch, filters] when the input is k x k (one position: slim's
    `spatial_squeeze`), else [batch, h - k + 1, w - k + 1, filters].
    `use_matmul=False` forces the convolution even at one position (for benchmarks).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 7,
        use_matmul: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.use_matmul = bool(use_matmul)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, channels, self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def _one_position(self, input_shape) -> bool:
        return tuple(input_shape[1:3]) == (self.kernel_size, self.kernel_size)

    def call(self, inputs):
        k = self.kernel_size
        if self._one_position(inputs.shape):
            if self.use_matmul:
                flat = k * k * int(inputs.shape[-1])
                x = ops.matmul(
                    ops.reshape(inputs, (-1, flat)), ops.reshape(self.kernel, (flat, self.filters))
                )
            else:
                x = ops.conv(inputs, self.kernel, strides=1, padding="valid")
                x = ops.reshape(x, (-1, self.filters))
        else:
            x = ops.conv(inputs, self.kernel, strides=1, padding="valid")
        return ops.relu(x + self.bias)

    def compute_output_shape(self, input_shape):
        if self._one_position(input_shape):
            return (input_shape[0], self.filters)
        k = self.kernel_size
        h, w = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if h is None else h - k + 1,
            None if w is None else w - k + 1,
            self.filters,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            use_matmul=self.use_matmul,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
