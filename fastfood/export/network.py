"""The one place an export's Keras model is built: the run's network, calibrated.

    base, served, info = serving_model(run_dir, precision="fp32")
    served(pixels)   # uint8 [n, S, S, 3] RGB -> softmax(logits / T) float32 [n, C]

`base` is the run's model as predict loads it (`inference.runs.load_run`: float32, trained
weights); `served` wraps it with a uint8 input and the softmax at the run's fitted
temperature T (`rundir.temperature_for`, 1 without calibration.json), exactly what
`fastfood predict` computes (`inference.forward.Forward`). Every format is written from
`served`, so the SavedModel, TFLite and ONNX files all answer with calibrated
probabilities and need nothing but pixels.

Precision is chosen here and nowhere else: the request's `precision` ('fp32' today) is
what a later fp16/bf16 export changes, and it is recorded in the artifact's metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastfood.errors import FastfoodError
from fastfood.export.request import PRECISIONS
from fastfood.phases import PhaseTimer
from fastfood.rundir import RunInfo

INPUT_NAME = "pixels"
OUTPUT_NAME = "probs"


def serving_model(run_dir: Path, precision: str = "fp32",
                  timer: PhaseTimer | None = None) -> tuple[Any, Any, RunInfo]:
    """(the run's float32 Keras model, the calibrated uint8-in model, RunInfo)."""
    from fastfood.inference.runs import load_run

    if precision not in PRECISIONS:
        raise FastfoodError(f"precision {precision!r}: export builds {', '.join(PRECISIONS)}")
    base, info = load_run(run_dir, None, timer)
    return base, calibrated(base, info.image_size, info.temperature), info


def calibrated(base: Any, image_size: int, temperature: float) -> Any:
    """keras.Model: uint8 pixels [None, S, S, 3] -> softmax(base(pixels) / T), float32."""
    import keras
    import numpy as np

    class TemperatureSoftmax(keras.layers.Layer):
        """softmax(logits / T) in float32: the calibrated probabilities predict gives."""

        def __init__(self, t: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.t = float(t)

        def call(self, logits: Any) -> Any:
            logits = keras.ops.cast(logits, "float32")
            if self.t != 1.0:
                logits = logits / self.t
            return keras.ops.softmax(logits, axis=-1)

    size = int(image_size)
    pixels = keras.Input((size, size, 3), dtype="uint8", name=INPUT_NAME)
    probs = TemperatureSoftmax(temperature, name=OUTPUT_NAME)(base(pixels, training=False))
    model = keras.Model(pixels, probs, name="fastfood_calibrated")
    # One call on a blank image: Keras' ONNX exporter refuses a model never called.
    model(np.zeros((1, size, size, 3), np.uint8), training=False)
    return model
