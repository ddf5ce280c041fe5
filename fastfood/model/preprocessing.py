"""Channel order and mean subtraction, as a layer inside the model.

Pretrained VGG19 weights only work with the preprocessing they were trained with, and the
two public sets disagree (TF-slim: RGB minus RGB means; Keras: BGR minus BGR means). Keeping
it inside the model, with the convention in the layer's config, means training, evaluation,
predict and the exported SavedModel cannot disagree, and a saved model carries its own.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from fastfood.errors import FastfoodError

#: convention -> (reverse RGB to BGR?, means in the channel order the network sees)
CONVENTIONS: dict[str, tuple[bool, tuple[float, float, float]]] = {
    "slim": (False, (123.68, 116.78, 103.94)),
    "keras": (True, (103.939, 116.779, 123.68)),
}


def check_convention(convention: str) -> str:
    """Return `convention` if it is one we know, else raise a FastfoodError naming it."""
    if convention not in CONVENTIONS:
        raise FastfoodError(
            f"convention {convention!r}: must be one of {', '.join(sorted(CONVENTIONS))}"
        )
    return convention


@keras.saving.register_keras_serializable(package="fastfood")
class Preprocess(keras.layers.Layer):
    """RGB 0-255 (uint8 or float) -> mean-subtracted input in the layer's compute dtype.

    The subtraction runs in float32 and only its result is cast to the compute dtype: in
    bfloat16 (8 significant bits) 124.3 - 123.68 would come out as 124.0 - 123.5 = 0.5
    instead of 0.62, an error of the size of the signal in dark or flat regions.
    """

    def __init__(self, convention: str = "slim", **kwargs: Any) -> None:
        # autocast=False: Keras would otherwise cast float inputs to bfloat16 on the way in,
        # before our float32 subtraction.
        kwargs.pop("autocast", None)
        super().__init__(autocast=False, **kwargs)
        self.convention = check_convention(convention)
        self._bgr, means = CONVENTIONS[convention]
        self._means = tuple(float(m) for m in means)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if self._bgr:
            x = ops.flip(x, axis=-1)
        x = x - ops.convert_to_tensor(self._means, dtype="float32")
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["convention"] = self.convention
        return config
