"""Read Keras VGG19 weights from HDF5: keras.applications' file and files like it.

Two layouts are understood:
- legacy Keras 2 (the file keras.applications downloads, and `save_weights('x.h5')`/
  `model.save('x.h5')` in Keras 2): root attribute `layer_names`, one group per layer with
  attribute `weight_names`, named `block1_conv1_W_1:0` in old files and
  `block1_conv1/kernel:0` in newer ones (full-model files nest it all in `model_weights`);
- Keras 3 `.weights.h5`: `layers/<key>/vars/0` (kernel) and `/1` (bias), the layer's name
  in the `vars` group's `name` attribute.
Keras names the layers block1_conv1 .. block5_conv4, fc1, fc2, predictions; fc1 is a Dense
[25088, 4096] over pool5 flattened in HWC order, which is exactly our 7x7 fc6 kernel
[7, 7, 512, 4096] reshaped row-major. The images it was trained on were BGR minus the BGR
means (Caffe's VGG): the 'keras' convention.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator

import h5py

from fastfood.errors import FastfoodError
from fastfood.model.layout import ARRAY_KEYS
from fastfood.model.loading import SourceArray, WeightSource

_FC = {"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"}
_CONV = re.compile(r"conv(\d)_(\d)")
_NOTOP_HINT = (
    "it has no fc1 layer: an include_top=False ('notop') file lacks fc1, fc2 and "
    "predictions, which fc6..fc8 need; use vgg19_weights_tf_dim_ordering_tf_kernels.h5"
)


def keras_layer(layer: str) -> str:
    """fastfood layer name -> Keras VGG19 layer name ('conv3_2' -> 'block3_conv2')."""
    match = _CONV.fullmatch(layer)
    return f"block{match.group(1)}_conv{match.group(2)}" if match else _FC[layer]


def file_shape(key: str, model_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Keras keeps fc6 as a Dense over the flattened 7x7x512 map."""
    if key == "fc6/kernel":
        return (math.prod(model_shape[:-1]), model_shape[-1])
    return tuple(model_shape)


def is_hdf5(path: str) -> bool:
    """True for an existing HDF5 file (checked by its signature, whatever its suffix)."""
    try:
        return h5py.is_hdf5(path)
    except OSError:
        return False


@contextlib.contextmanager
def open_h5(path: str) -> Iterator[WeightSource]:
    """Open a Keras VGG19 HDF5 file as a WeightSource (kept open while it is read)."""
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise FastfoodError(f"weights {path}: cannot read as HDF5 ({exc})") from None
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" in root.attrs:
            layers = _legacy_layers(root)
        elif "layers" in root:
            layers = _keras3_layers(root["layers"])
        else:
            raise FastfoodError(
                f"weights {path}: HDF5 file without Keras weights (no 'layer_names' "
                "attribute and no 'layers' group)"
            )
        arrays = {}
        for key in ARRAY_KEYS:
            layer, kind = key.split("/")
            found = layers.get(keras_layer(layer), {}).get(kind)
            if found is not None:
                arrays[key] = SourceArray(found.name, tuple(found.shape), lambda d=found: d[()])
        yield WeightSource(
            label=path,
            convention="keras",
            arrays=arrays,
            expected_name=_expected_name,
            file_shape=file_shape,
            hint="" if "fc1" in layers else _NOTOP_HINT,
        )


def _legacy_layers(root: h5py.Group) -> dict[str, dict[str, h5py.Dataset]]:
    """Keras 2 layout: {layer name: {'kernel': dataset, 'bias': dataset}}."""
    layers = {}
    for raw in root.attrs["layer_names"]:
        name = _text(raw)
        if name not in root:
            continue
        group = root[name]
        datasets = [group[_text(w)] for w in group.attrs.get("weight_names", [])]
        layers[name] = _kernel_and_bias(name, datasets)
    return layers


def _keras3_layers(layers_group: h5py.Group) -> dict[str, dict[str, h5py.Dataset]]:
    """Keras 3 `.weights.h5` layout: {layer name: {'kernel': vars/0, 'bias': vars/1}}."""
    layers = {}
    for group in layers_group.values():
        variables = group.get("vars")
        if not isinstance(variables, h5py.Group):
            continue
        name = _text(variables.attrs.get("name", group.name.rsplit("/", 1)[-1]))
        datasets = [variables[k] for k in sorted(variables, key=int)]
        layers[name] = _kernel_and_bias(name, datasets)
    return layers


def _kernel_and_bias(layer: str, datasets: list[h5py.Dataset]) -> dict[str, h5py.Dataset]:
    """Tell kernel from bias by rank: names vary between Keras versions, ranks do not."""
    found: dict[str, h5py.Dataset] = {}
    for dataset in datasets:
        kind = "bias" if dataset.ndim == 1 else "kernel"
        if kind in found:
            raise FastfoodError(
                f"weights: layer {layer} holds more than one {kind} "
                f"({found[kind].name}, {dataset.name}); not a VGG19 layer"
            )
        found[kind] = dataset
    return found


def _expected_name(key: str) -> str:
    layer, kind = key.split("/")
    return f"{keras_layer(layer)} {kind} (fastfood's {layer})"


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
