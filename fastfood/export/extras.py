"""The optional packages the TFLite and ONNX exports need, with one clear error without them.

TensorFlow alone writes a SavedModel. TFLite's check runs the model in LiteRT's interpreter
(`ai-edge-litert`, TensorFlow's own `tf.lite.Interpreter` is deprecated); ONNX is converted
by tf2onnx (what Keras' own `model.export(format="onnx")` calls) and checked in
onnxruntime. They come with `pip install 'fastfood[export]'`.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from fastfood.errors import FastfoodError

#: format -> (import name, pip name) of what it needs beyond TensorFlow
NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "savedmodel": (),
    "tflite": (("ai_edge_litert", "ai-edge-litert"),),
    "onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
}


def missing(fmt: str) -> list[str]:
    """pip names of the packages `fmt` needs that are not installed (found without importing
    them: tf2onnx would import TensorFlow, and the flags are checked before that)."""
    return [package for name, package in NEEDS[fmt] if importlib.util.find_spec(name) is None]


def require(fmt: str) -> None:
    """FastfoodError naming the extra when a package `fmt` needs is not installed."""
    absent = missing(fmt)
    if absent:
        raise FastfoodError(
            f"--format {fmt} needs {', '.join(absent)}, which is not installed: "
            "pip install 'fastfood[export]'"
        )


def module(name: str) -> Any:
    """Import `name` (after `require` said it is there)."""
    return importlib.import_module(name)
