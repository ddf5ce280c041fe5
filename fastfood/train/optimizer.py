"""SGD with momentum where some variables learn at a multiple of the learning rate.

Keras' optimizers take one rate for all variables. Fine-tuning wants a fresh fc8 to move
faster than the pretrained body it sits on, so this SGD multiplies the rate for the variables
it was given. It has exactly SGD's variables (one momentum slot per variable), so its
checkpoints are SGD's, and it works per replica under any tf.distribute strategy, since the
variables are matched by the same key Keras uses to find their momentum slots.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras


class ScaledSGD(keras.optimizers.SGD):
    """keras.optimizers.SGD; the update of `scaled_variables` uses lr * lr_mult."""

    def __init__(self, *, scaled_variables: Sequence[Any], lr_mult: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.lr_mult = float(lr_mult)
        self._scaled_keys = {self._var_key(v) for v in scaled_variables}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self._var_key(variable) in self._scaled_keys:
            learning_rate = learning_rate * self.lr_mult
        super().update_step(gradient, variable, learning_rate)
