"""The one place an export's Keras model is built: the run's network, calibrated.

    built = serving_model(run_dir, precision="fp32")
    built.served(pixels)   # uint8 [n, S, S, 3] RGB -> softmax(logits / T) float32 [n, C]

`built.reference` is the run's model as predict loads it at float32
(`inference.runs.load_run`), what every artifact is checked against; `built.served` wraps
the model at the export's precision with a uint8 input and the softmax at the run's fitted
temperature T (`rundir.temperature_for`, 1 without calibration.json), exactly what
`fastfood predict` computes (`inference.forward.Forward`). Every format is written from
`served`, so the SavedModel, TFLite and ONNX files all answer with calibrated
probabilities and need nothing but pixels.

Precision is chosen here and nowhere else: 'fp32' serves the float32 model itself; 'bf16',
'fp16' or 'auto' build it through `inference.runs.inference_model` (the same model predict
runs at that precision: batch norm folded, softmax in float32), and the precision it
resolved to is recorded in the artifact's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastfood.errors import FastfoodError
from fastfood.export.request import PRECISIONS
from fastfood.phases import PhaseTimer
from fastfood.rundir import RunInfo

INPUT_NAME = "pixels"
OUTPUT_NAME = "probs"


@dataclass(frozen=True)
class Built:
    """An export's models: the float32 reference, the calibrated model to write, its run,
    and the precision that model runs in (what 'auto' resolved to)."""

    reference: Any
    served: Any
    info: RunInfo
    precision: str


def serving_model(run_dir: Path, precision: str = "fp32",
                  timer: PhaseTimer | None = None) -> Built:
    """The run's float32 model and the calibrated uint8-in model at `precision`."""
    from fastfood.inference.runs import inference_model, load_run

    if precision not in PRECISIONS:
        raise FastfoodError(f"--precision {precision}: must be one of {', '.join(PRECISIONS)}")
    base, info = load_run(run_dir, None, timer)
    if precision == "fp32":
        return Built(base, calibrated(base, info.image_size, info.temperature), info, "fp32")
    loaded = inference_model(run_dir, precision, timer=timer)
    served = calibrated(loaded.model, info.image_size, info.temperature)
    return Built(base, served, info, loaded.precision.name)


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
