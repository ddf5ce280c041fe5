"""ONNX: the calibrated model converted by Keras' own exporter, run back in onnxruntime.

`model.export(format="onnx")` traces the model's call and hands it to tf2onnx. The graph
takes uint8 pixels [n, S, S, 3] (preprocessing.json says how to make them) and returns
calibrated probabilities float32 [n, C]; the batch dimension stays open.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.export import extras
from fastfood.export.artifact import Artifact
from fastfood.export.request import ExportRequest

FILE = "model.onnx"


def write(served: Any, folder: Path, request: ExportRequest) -> list[Artifact]:
    """model.onnx in `folder`, loaded back in an onnxruntime CPU session."""
    with warnings.catch_warnings():
        # Keras' numpy-2 patch of tf2onnx tests for np.object, which numpy 2 warns about.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*np.object.*")
        served.export(str(folder / FILE), format="onnx", verbose=False)
    return [load(folder / FILE, request.min_agreement)]


def load(path: Path, min_agreement: float) -> Artifact:
    """The .onnx file in onnxruntime (CPU), as a user would run it."""
    ort = extras.module("onnxruntime")
    onnx = extras.module("onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    source = session.get_inputs()[0]
    sink = session.get_outputs()[0]

    def probs(pixels: np.ndarray) -> np.ndarray:
        out = session.run([sink.name], {source.name: np.ascontiguousarray(pixels, np.uint8)})
        return np.asarray(out[0], np.float32)

    opsets = {o.domain or "ai.onnx": o.version for o in onnx.load(str(path)).opset_import}
    return Artifact("onnx", path.name, min_agreement, probs,
                    about={"bytes": path.stat().st_size, "input": source.name,
                           "output": sink.name, "opset": opsets.get("ai.onnx")})
