"""The learning-rate schedule: linear (polynomial, power 1) decay to lr * end_factor.

A Keras LearningRateSchedule evaluated on the optimizer's own step counter, so it lives in
the checkpoint with the optimizer and a resumed run continues on exactly the same curve.
"""

from __future__ import annotations

from typing import Any


def polynomial_decay(lr: float, total_steps: int, end_factor: float) -> Any:
    """lr at step 0, falling linearly to lr * end_factor at total_steps, then flat."""
    import keras

    return keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=lr,
        decay_steps=max(1, int(total_steps)),
        end_learning_rate=lr * end_factor,
        power=1.0,
    )


def lr_at(step: int, lr: float, total_steps: int, end_factor: float) -> float:
    """The same curve in plain Python, for logs and tests."""
    frac = min(step, max(1, total_steps)) / max(1, total_steps)
    end = lr * end_factor
    return (lr - end) * (1.0 - frac) + end
