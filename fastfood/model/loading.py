"""Copy a pretrained VGG19 from a weight file into a fastfood model, checking everything.

Each importer (TF-slim checkpoint, Keras HDF5) describes its file as a `WeightSource`: the
arrays it holds under fastfood's names ("conv1_1/kernel" ... "fc8/bias"), each with the
file's own variable name and shape, so that every problem is reported in the file's terms.
Names and shapes are checked before any array is read: a wrong file fails in a second with
the variable and both shapes named, never by a silent skip.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastfood.errors import FastfoodError
from fastfood.model.layout import ARRAY_KEYS, array_shapes

log = logging.getLogger("fastfood")


@dataclass(frozen=True)
class SourceArray:
    """One array in a weight file, not read yet."""

    name: str  # the file's name for it, for messages
    shape: tuple[int, ...]  # the file's shape
    read: Callable[[], np.ndarray]


@dataclass(frozen=True)
class WeightSource:
    """A weight file seen through fastfood's names."""

    label: str  # the file, as messages show it
    convention: str  # preprocessing the weights were trained with
    arrays: Mapping[str, SourceArray]  # by "layer/kind" key
    expected_name: Callable[[str], str]  # key -> the name this kind of file would use
    file_shape: Callable[[str, tuple[int, ...]], tuple[int, ...]]  # key, model shape -> file's
    hint: str = ""  # added to a missing-variable error: what is probably wrong with the file


@contextlib.contextmanager
def open_source(weights: str) -> Iterator[WeightSource]:
    """'imagenet', a Keras .h5 or a TF-slim checkpoint prefix -> WeightSource."""
    if weights == "imagenet":
        from fastfood.model.imagenet import imagenet_weights_path

        path = imagenet_weights_path()
    else:
        path = os.fspath(Path(weights).expanduser())
    from fastfood.model import keras_weights, slim_weights

    if keras_weights.is_hdf5(path):
        with keras_weights.open_h5(path) as source:
            yield source
    else:
        yield slim_weights.open_checkpoint(path)


@dataclass(frozen=True)
class LoadPlan:
    """Which arrays to copy, checked against the model's shapes; how the head is handled."""

    keys: tuple[str, ...]
    head_note: str  # empty when fc8 is loaded too


def plan_load(source: WeightSource, num_classes: int, image_size: int) -> LoadPlan:
    """Check names and shapes of the file against the model-to-be; read nothing yet.

    fc8 is left freshly initialised when the file's classifier has another number of
    classes (or there is none): the head swap of transfer learning. Anything else missing
    or of the wrong shape is an error naming the file's variable and both shapes.
    """
    shapes = array_shapes(num_classes, image_size)
    keys = list(ARRAY_KEYS)
    head_note = ""
    file_fc8 = source.arrays.get("fc8/kernel")
    if file_fc8 is None:
        head_note = f"initialised fc8 for {num_classes} classes (the file has no fc8)"
    elif file_fc8.shape[-1] != num_classes:
        head_note = (
            f"initialised fc8 for {num_classes} classes "
            f"(the file's has {file_fc8.shape[-1]})"
        )
    if head_note:
        keys = [k for k in keys if not k.startswith("fc8/")]

    missing = [k for k in keys if k not in source.arrays]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        hint = f"; {source.hint}" if source.hint else ""
        raise FastfoodError(
            f"weights {source.label}: variable {source.expected_name(missing[0])} "
            f"not found{more}{hint}"
        )
    for key in keys:
        array = source.arrays[key]
        want = tuple(source.file_shape(key, shapes[key]))
        if tuple(array.shape) != want:
            raise FastfoodError(
                f"weights {source.label}: variable {array.name} has shape "
                f"{list(array.shape)} but this model's {key} needs {list(want)}"
            )
    return LoadPlan(tuple(keys), head_note)


def load_into(model, source: WeightSource, plan: LoadPlan) -> str:
    """Copy the planned arrays into the model, one at a time; return the summary line."""
    for key in plan.keys:
        layer_name, kind = key.split("/")
        variable = getattr(model.get_layer(layer_name), kind)
        value = np.asarray(source.arrays[key].read(), dtype=np.float32)
        variable.assign(value.reshape(tuple(variable.shape)))
    last = plan.keys[-1].split("/")[0]
    summary = (
        f"loaded {len(plan.keys)} arrays (conv1_1..{last}) from {Path(source.label).name}"
    )
    if plan.head_note:
        summary += f"; {plan.head_note}"
    log.info(summary)
    return summary
