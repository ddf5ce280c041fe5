"""The model's forward pass for serving: uint8 image batches in, float32 probabilities out.

One batch (a cold `predict one.jpg`) runs eagerly: tracing VGG19 into a graph costs more than
the few milliseconds of Python dispatch it would save once. Many batches go through one
`tf.function` whose input signature leaves the batch dimension open, so the last, partial
batch reuses the same trace instead of retracing.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Forward:
    """softmax(model(images, training=False)) as numpy, eager or traced (see module doc)."""

    def __init__(self, model: Any, image_size: int) -> None:
        self.model = model
        self.image_size = int(image_size)
        self._traced: Any = None

    def _eager(self, images: Any) -> Any:
        import tensorflow as tf

        return tf.nn.softmax(self.model(images, training=False))

    def traced_fn(self) -> Any:
        """The tf.function, created (not yet traced) on first use."""
        if self._traced is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.uint8)
            self._traced = tf.function(self._eager, input_signature=[spec])
        return self._traced

    def __call__(self, images: Any, *, traced: bool = True) -> np.ndarray:
        """Probabilities [n, num_classes] (float32 numpy) for uint8 images [n, S, S, 3]."""
        fn = self.traced_fn() if traced else self._eager
        return np.asarray(fn(images))


def top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the k largest per row, largest first (ties: lower index first)."""
    k = min(int(k), probs.shape[-1])
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, axis=-1)
