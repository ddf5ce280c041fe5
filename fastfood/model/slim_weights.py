"""Read a TF-slim `vgg_19` checkpoint (e.g. vgg_19.ckpt from the TF-slim model zoo).

Slim names its variables `vgg_19/conv1/conv1_1/weights` ... `vgg_19/fc8/biases` and keeps
its fully connected layers as convolutions: fc6 [7, 7, 512, 4096] (our kernel as is), fc7
[1, 1, 4096, 4096] and fc8 [1, 1, 4096, classes] (reshaped to our Dense kernels).
The images it was trained on were RGB minus the RGB means: the 'slim' convention.
"""

from __future__ import annotations

import re

from fastfood.errors import FastfoodError, first_line
from fastfood.model.layout import ARRAY_KEYS
from fastfood.model.loading import SourceArray, WeightSource

DEFAULT_SCOPE = "vgg_19"
_CONV = re.compile(r"conv(\d)_(\d)")


def slim_name(key: str, scope: str = DEFAULT_SCOPE) -> str:
    """'conv3_2/kernel' -> 'vgg_19/conv3/conv3_2/weights'; 'fc7/bias' -> 'vgg_19/fc7/biases'."""
    layer, kind = key.split("/")
    leaf = "weights" if kind == "kernel" else "biases"
    match = _CONV.fullmatch(layer)
    group = f"conv{match.group(1)}/{layer}" if match else layer
    return f"{scope}/{group}/{leaf}"


def file_shape(key: str, model_shape: tuple[int, ...]) -> tuple[int, ...]:
    """fc7 and fc8 kernels are 1x1 convolutions in slim; everything else matches ours."""
    if key in ("fc7/kernel", "fc8/kernel"):
        return (1, 1) + tuple(model_shape)
    return tuple(model_shape)


def open_checkpoint(prefix: str) -> WeightSource:
    """A checkpoint prefix (or a folder with a `checkpoint` file) -> WeightSource."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as exc:  # NotFoundError, DataLossError, ValueError: all mean "not one"
        raise FastfoodError(
            f"weights {prefix}: not 'imagenet', a Keras .h5 file or a readable TF-slim "
            f"checkpoint prefix ({type(exc).__name__}: {first_line(exc)[:200]})"
        ) from None
    shapes = reader.get_variable_to_shape_map()
    scope = _find_scope(shapes)

    def array(name: str) -> SourceArray:
        return SourceArray(name, tuple(shapes[name]), lambda: reader.get_tensor(name))

    arrays = {
        key: array(slim_name(key, scope)) for key in ARRAY_KEYS if slim_name(key, scope) in shapes
    }
    return WeightSource(
        label=prefix,
        convention="slim",
        arrays=arrays,
        expected_name=lambda key: slim_name(key, scope),
        file_shape=file_shape,
    )


def _find_scope(shapes: dict) -> str:
    """The outer scope: 'vgg_19' in the zoo's file, something else in a re-saved one."""
    suffix = "/conv1/conv1_1/weights"
    scopes = [name[: -len(suffix)] for name in shapes if name.endswith(suffix)]
    return scopes[0] if len(scopes) == 1 else DEFAULT_SCOPE
