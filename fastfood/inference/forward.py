"""The model's forward pass for serving: uint8 image batches in, float32 probabilities out.

Probabilities are softmax(logits / T), T the run's fitted temperature (`fastfood.calibrate`,
1 when it has none): predict, evaluate and the server all come through here, so they give
the same calibrated numbers. Dividing by T > 0 never changes which class is on top.

One batch (a cold `predict one.jpg`) runs eagerly: tracing VGG19 into a graph costs more than
the few milliseconds of Python dispatch it would save once. Many batches go through one
`tf.function` whose input signature leaves the batch dimension open, so the last, partial
batch reuses the same trace instead of retracing.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Forward:
    """softmax(model(images, training=False) / T) as numpy, eager or traced (module doc)."""

    def __init__(self, model: Any, image_size: int, temperature: float = 1.0) -> None:
        self.model = model
        self.image_size = int(image_size)
        self.temperature = float(temperature)
        self._traced: Any = None

    def _eager(self, images: Any) -> Any:
        """(raw float32 logits, probabilities at the temperature), in one graph."""
        import tensorflow as tf

        logits = tf.cast(self.model(images, training=False), tf.float32)
        if self.temperature == 1.0:  # the very op the uncalibrated path always ran
            return logits, tf.nn.softmax(logits)
        return logits, tf.nn.softmax(logits / self.temperature)

    def traced_fn(self) -> Any:
        """The tf.function, created (not yet traced) on first use."""
        if self._traced is None:
            import tensorflow as tf

            spec = tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.uint8)
            self._traced = tf.function(self._eager, input_signature=[spec])
        return self._traced

    def outputs(self, images: Any, *, traced: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(logits before the temperature, probabilities) [n, num_classes], float32 numpy."""
        fn = self.traced_fn() if traced else self._eager
        logits, probs = fn(images)
        return np.asarray(logits), np.asarray(probs)

    def __call__(self, images: Any, *, traced: bool = True) -> np.ndarray:
        """Probabilities [n, num_classes] (float32 numpy) for uint8 images [n, S, S, 3]."""
        return self.outputs(images, traced=traced)[1]


def top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the k largest per row, largest first (ties: lower index first)."""
    k = min(int(k), probs.shape[-1])
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, axis=-1)


def is_unknown(probs: np.ndarray, min_confidence: float) -> np.ndarray:
    """bool [n]: rows whose top probability is under `min_confidence` (answered 'unknown')."""
    return np.asarray(probs).max(axis=-1) < float(min_confidence)
