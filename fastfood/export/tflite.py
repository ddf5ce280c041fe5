"""TFLite (LiteRT): a float32 model, and an int8 one calibrated on training images.

Both are written by Keras' own exporter (`model.export(format="litert")`: a SavedModel of
the model's call, then `tf.lite.TFLiteConverter.from_saved_model`). They take the pixels
the SavedModel computes inside (uint8 [n, S, S, 3] RGB, preprocessing.json says how) and
return calibrated probabilities float32 [n, C].

int8: `optimizations=[DEFAULT]` with a representative dataset of training images in the
eval view (the inputs the model will see) and int8 kernels only, so weights and
activations are 8-bit; the interface stays uint8 in, float32 out, so the same code runs
both files. It is checked against its own, looser tolerance (`--min-agreement-int8`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.export import extras
from fastfood.export.artifact import Artifact
from fastfood.export.request import ExportRequest

FLOAT_FILE = "model.tflite"
INT8_FILE = "model_int8.tflite"


def write(served: Any, folder: Path, request: ExportRequest,
          representative: Callable[[], Iterator[list[np.ndarray]]] | None) -> list[Artifact]:
    """model.tflite, and model_int8.tflite when `representative` is given; loaded back."""
    served.export(str(folder / FLOAT_FILE), format="litert", verbose=False)
    written = [load(folder / FLOAT_FILE, "tflite", request.min_agreement)]
    if representative is not None:
        import tensorflow as tf

        served.export(str(folder / INT8_FILE), format="litert", verbose=False,
                      optimizations=[tf.lite.Optimize.DEFAULT],
                      representative_dataset=representative,
                      target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]})
        written.append(load(folder / INT8_FILE, "tflite-int8", request.min_agreement_int8))
    return written


def load(path: Path, name: str, min_agreement: float) -> Artifact:
    """The .tflite file in LiteRT's interpreter, resized to each batch it is given."""
    from fastfood.cpus import usable_cpus

    interpreter = extras.module("ai_edge_litert.interpreter").Interpreter(
        model_path=str(path), num_threads=usable_cpus())
    source = interpreter.get_input_details()[0]
    sink = interpreter.get_output_details()[0]
    shape: list[int] = []

    def probs(pixels: np.ndarray) -> np.ndarray:
        if list(pixels.shape) != shape:
            interpreter.resize_tensor_input(source["index"], list(pixels.shape))
            interpreter.allocate_tensors()
            shape[:] = list(pixels.shape)
        interpreter.set_tensor(source["index"], np.ascontiguousarray(pixels, np.uint8))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(sink["index"]), np.float32)

    return Artifact(name, path.name, min_agreement, probs,
                    about={"bytes": path.stat().st_size, "input": source["name"],
                           "output": sink["name"]})
