"""SGD with momentum in one fused kernel per variable, and a variant where some variables
learn at a multiple of the learning rate.

Keras 3's SGD updates each variable with five separate ops (two products, a difference,
the momentum's assignment, the variable's addition), each a full pass over a tensor as
large as the variable, and VGG19 has 140M parameters: on a 2-core CPU that update took
about three times as long as one ResourceApplyKerasMomentum per variable (BENCHMARKS.md),
which computes Keras' very update (accum = accum * momentum - lr * grad; var += accum, in
the variable's dtype; bit-identical in tests/test_fused_sgd.py). `FusedSGD` has exactly
SGD's variables (one momentum slot per variable), so checkpoints are SGD's.

Keras' optimizers take one rate for all variables. Fine-tuning wants a fresh fc8 to move
faster than the pretrained body it sits on, so `ScaledSGD` multiplies the rate for the
variables it was given. It works per replica under any tf.distribute strategy, since the
variables are matched by the same key Keras uses to find their momentum slots.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras


class FusedSGD(keras.optimizers.SGD):
    """keras.optimizers.SGD whose (non-Nesterov, momentum, dense) update is one kernel.

    `fused=False` keeps Keras' own ops (for comparisons and benchmarks). Other cases
    (no momentum, Nesterov, sparse gradients, a backend other than TensorFlow) are Keras'.
    """

    def __init__(self, *args: Any, fused: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fused = bool(fused)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        import tensorflow as tf

        if (not self.fused or self.momentum == 0 or self.nesterov
                or not isinstance(gradient, tf.Tensor)
                or keras.backend.backend() != "tensorflow"):
            super().update_step(gradient, variable, learning_rate)
            return
        m = self.momentums[self._get_variable_index(variable)]
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=_handle(variable), accum=_handle(m),
            lr=tf.cast(learning_rate, dtype), grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype), use_locking=False, use_nesterov=False)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fused": self.fused}


class ScaledSGD(FusedSGD):
    """FusedSGD; the update of `scaled_variables` uses lr * lr_mult."""

    def __init__(self, *, scaled_variables: Sequence[Any], lr_mult: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.lr_mult = float(lr_mult)
        self._scaled_keys = {self._var_key(v) for v in scaled_variables}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self._var_key(variable) in self._scaled_keys:
            learning_rate = learning_rate * self.lr_mult
        super().update_step(gradient, variable, learning_rate)


def _handle(variable: Any) -> Any:
    """The resource handle of a Keras or TensorFlow variable (under a strategy's update,
    the component of this replica's device)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
