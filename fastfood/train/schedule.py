"""The learning-rate schedule: linear warm-up, then linear or cosine decay to lr * end_factor.

Without warm-up and with linear decay it is the classic VGG fine-tuning schedule. It is a Keras
LearningRateSchedule evaluated on the optimizer's own step counter, so it lives in the
checkpoint with the optimizer and a resumed run continues on exactly the same curve. The
rates themselves (and the warm-up a run gets by default) are `fastfood.train.recipe`'s.
"""

from __future__ import annotations

import math
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="fastfood")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr rising linearly over `warmup_steps`, then falling to lr * end_factor at total_steps.

    Warm-up steps s < warmup_steps get lr * (s + 1) / warmup_steps (step 0 already learns,
    the last one is at lr); `shape` is the fall after them: 'linear' (polynomial, power 1)
    or 'cosine' (config.SCHEDULES). Flat at lr * end_factor after total_steps.
    """

    def __init__(self, lr: float, total_steps: int, warmup_steps: int = 0,
                 end_factor: float = 1e-4, shape: str = "linear"):
        import tensorflow as tf

        self.lr = float(lr)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps - 1))
        self.end_factor = float(end_factor)
        self.shape = shape
        self._planned = (self.total_steps, self.warmup_steps)
        # The lengths live in variables, so `refit` reaches a step already traced.
        self._total = tf.Variable(float(self.total_steps), trainable=False,
                                  name="schedule_total_steps")
        self._warmup = tf.Variable(float(self.warmup_steps), trainable=False,
                                   name="schedule_warmup_steps")

    def refit(self, total_steps: int) -> None:
        """Fit the whole curve into `total_steps` (a --time-limit fitted the run to the
        time): the warm-up shrinks in proportion, so the shape is the planned one, only
        shorter (a 2-epoch warm-up must not eat a run cut to 1.5 epochs)."""
        planned_total, planned_warmup = self._planned
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(round(planned_warmup * self.total_steps / planned_total),
                                       self.total_steps - 1))
        self._total.assign(float(self.total_steps))
        self._warmup.assign(float(self.warmup_steps))

    def __call__(self, step: Any) -> Any:
        import tensorflow as tf

        step = tf.cast(step, tf.float32)
        total = tf.cast(self._total, tf.float32)
        warmup = tf.cast(self._warmup, tf.float32)
        warm = tf.maximum(1.0, warmup)
        rising = self.lr * tf.minimum(step + 1.0, warm) / warm
        span = tf.maximum(1.0, total - warmup)
        t = tf.clip_by_value((step - warmup) / span, 0.0, 1.0)
        fall = 1.0 - t if self.shape == "linear" else 0.5 * (1.0 + tf.cos(math.pi * t))
        end = self.lr * self.end_factor
        decayed = end + (self.lr - end) * fall
        return tf.where(step < warmup, rising, decayed)

    def get_config(self) -> dict[str, Any]:
        return {"lr": self.lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "end_factor": self.end_factor,
                "shape": self.shape}


def lr_schedule(lr: float, total_steps: int, *, warmup_steps: int = 0,
                end_factor: float = 1e-4, shape: str = "linear") -> WarmupDecay:
    """The run's schedule (see WarmupDecay); warmup_steps=0 and 'linear' is a plain linear decay."""
    return WarmupDecay(lr, total_steps, warmup_steps, end_factor, shape)


def polynomial_decay(lr: float, total_steps: int, end_factor: float) -> Any:
    """lr at step 0, falling linearly to lr * end_factor at total_steps, then flat."""
    return keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=lr,
        decay_steps=max(1, int(total_steps)),
        end_learning_rate=lr * end_factor,
        power=1.0,
    )


def lr_at(step: int, lr: float, total_steps: int, end_factor: float,
          warmup_steps: int = 0, shape: str = "linear") -> float:
    """The same curve in plain Python, for logs and tests."""
    total_steps = max(1, total_steps)
    warmup_steps = max(0, min(warmup_steps, total_steps - 1))
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    t = min(max(step - warmup_steps, 0) / max(1, total_steps - warmup_steps), 1.0)
    fall = 1.0 - t if shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))
    end = lr * end_factor
    return end + (lr - end) * fall
