"""An exponential moving average of the weights, the ones validation and inference use.

Every float weight of the model (the batch-norm statistics included, as timm's and
Ultralytics' EMA average them) has a non-trainable shadow, updated after each step by

    shadow = d * shadow + (1 - d) * weight,  d = min(decay, (1 + n) / (10 + n))

where n counts the updates so far: tf.train.ExponentialMovingAverage's `num_updates`
rule, so the average is not held near the random start in a short run (d is 0.1 after the
first step, 0.5 after 8, 0.9 after 80).

The update runs in the step's tf.function after the optimizer's, in cross-replica
context, on each replica's own copy (`strategy.extended.update`): the replicas' weights
are equal after the all-reduced update, so their shadows stay equal with no collective.
The shadows and n are saved in every checkpoint (`ema/` in ckpt/), so a resumed run
continues the same average. Validation swaps the shadows into the model and back, so
best/ and final/ hold the averaged weights and predict, evaluate and export read them as
any run's weights; ckpt/ keeps the raw ones for training, and
`fastfood.rundir.read_weights` puts the average over them when a run is read from ckpt/.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from fastfood.rundir import ema_targets

#: tf.train.ExponentialMovingAverage's warm-up: d = min(decay, (1 + n) / (10 + n)).
WARMUP_OFFSET = 10.0


class Ema:
    """The shadows of `model`'s float weights; create it inside the strategy's scope."""

    def __init__(self, model: Any, decay: float, strategy: Any):
        import tensorflow as tf

        self.decay = float(decay)
        self.strategy = strategy
        self.weights = ema_targets(model)
        # TensorFlow's own variables (distributed ones under a strategy): what
        # `extended.update` takes apart per replica, as Keras' optimizer passes them.
        self._vars = [getattr(w, "value", w) for w in self.weights]
        self.shadow = [tf.Variable(v.read_value(), trainable=False,
                                   name="ema_" + w.name.replace("/", "_"))
                       for w, v in zip(self.weights, self._vars)]
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_updates")
        #: What a checkpoint saves as `ema` (read back by fastfood.rundir.read_weights).
        self.trackable = tf.train.Checkpoint(shadow=self.shadow, updates=self.updates)

    def rate(self) -> Any:
        """This update's d (a tensor)."""
        import tensorflow as tf

        n = tf.cast(self.updates, tf.float32)
        return tf.minimum(self.decay, (1.0 + n) / (WARMUP_OFFSET + n))

    def update(self) -> None:
        """One average step; call in cross-replica context after the optimizer's update."""
        import tensorflow as tf

        d = self.rate()
        for s, w in zip(self.shadow, self._vars):
            self.strategy.extended.update(
                s, lambda s_, w_: s_.assign(d * s_ + (1.0 - d) * tf.cast(w_, s_.dtype)),
                args=(w,))
        self.updates.assign_add(1)

    def reset(self) -> None:
        """Start the average at the model's weights (a resumed run that had no EMA)."""
        for s, w in zip(self.shadow, self._vars):
            self.strategy.extended.update(s, lambda s_, w_: s_.assign(w_), args=(w,))
        self.updates.assign(0)

    def _swap(self) -> None:
        import tensorflow as tf

        for s, w in zip(self.shadow, self._vars):
            def swap(s_: Any, w_: Any) -> Any:
                held = tf.identity(w_)
                w_.assign(s_)
                return s_.assign(held)

            self.strategy.extended.update(s, swap, args=(w,))

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the model inside the block, the trained ones after it."""
        self._swap()
        try:
            yield
        finally:
            self._swap()

