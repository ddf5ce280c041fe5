"""VGG19 as TF-slim defines it, for fine-tuning from ImageNet weights.

The network is slim's `vgg_19`: sixteen 3x3 SAME convolutions with ReLU, five 2x2/2 max
pools, then fc6 as a k x k VALID convolution (k = 7 for the pretrained weights), fc7 and
fc8. When the input is larger than 224 px, fc6 slides over pool5 and fc7 runs at every
position; the fc7 activations are then averaged over the positions, which is slim's
`global_pool=True` followed by `spatial_squeeze`: averaging before the linear fc8 is the
same as averaging fc8's logits (averaging any earlier would not be, because of fc7's ReLU).
At 224 px there is one position and the average disappears.

Preprocessing (channel order and means) is the model's first layer and follows the
weights, so every consumer of the model feeds it plain RGB 0-255.
"""

from __future__ import annotations

import logging
from typing import Any

import keras

from fastfood.errors import FastfoodError
from fastfood.model.fc6 import FC6
from fastfood.model.init import kernel_initializer
from fastfood.model.layout import (
    BLOCKS,
    FC6_KERNEL,
    FC_UNITS,
    PRETRAINED_IMAGE_SIZE,
    scaled,
)
from fastfood.model.preprocessing import Preprocess, check_convention

log = logging.getLogger("fastfood")

#: The smallest input that still leaves pool5 with one pixel.
MIN_IMAGE_SIZE = 2 ** len(BLOCKS)


def vgg19(
    num_classes: int,
    *,
    image_size: int = 224,
    width: float = 1.0,
    dropout: float = 0.5,
    weights: str | None = None,
    convention: str | None = None,
) -> keras.Model:
    """Build VGG19 for `num_classes`, random or from pretrained weights.

    Input: RGB 0-255, uint8 or float, [batch, image_size, image_size, 3]. Output: float32
    logits [batch, num_classes] under any global dtype policy (set it before calling).
    `weights`: None (or 'none') for random init, 'imagenet', a TF-slim checkpoint prefix or
    a Keras .h5 file; with weights, fc8 is loaded too when the file has `num_classes`
    classes, else initialised afresh. `width` scales every channel count (random init only,
    for fast tests and demos). `convention` ('slim' | 'keras') overrides the preprocessing
    the weights imply, for rebuilding a trained run. The load summary is in
    `model.fastfood_load_summary` (None for random init).
    """
    _check_args(num_classes, image_size, width, dropout)
    if weights is not None and str(weights).lower() == "none":
        weights = None
    if convention is not None:
        check_convention(convention)
    if weights is None:
        return _build(
            num_classes, image_size, width, dropout, convention or "slim", None, random_init=True
        )

    if width != 1.0:
        raise FastfoodError(
            f"width {width}: pretrained weights need width 1.0 (other widths are for "
            "random init only)"
        )
    if image_size < PRETRAINED_IMAGE_SIZE:
        raise FastfoodError(
            f"image_size {image_size} is too small for pretrained weights: fc6 is a "
            f"{FC6_KERNEL}x{FC6_KERNEL} kernel over pool5 (image_size / 32), so the "
            f"minimum is {PRETRAINED_IMAGE_SIZE}"
        )
    from fastfood.model.loading import load_into, open_source, plan_load

    with open_source(str(weights)) as source:
        plan = plan_load(source, num_classes, image_size)  # fails before the slow build
        model = _build(
            num_classes, image_size, width, dropout, convention or source.convention, None
        )
        summary = load_into(model, source, plan)
    model.fastfood_load_summary = summary
    return model


def convention_of(model: keras.Model) -> str:
    """The preprocessing convention built into a fastfood model ('slim' or 'keras')."""
    return model.get_layer("preprocess").convention


def _check_args(num_classes: int, image_size: int, width: float, dropout: float) -> None:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise FastfoodError(f"num_classes {num_classes!r}: must be a positive integer")
    if not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise FastfoodError(
            f"image_size {image_size!r}: must be an integer of at least {MIN_IMAGE_SIZE} "
            f"(VGG19 halves it {len(BLOCKS)} times)"
        )
    if not width > 0:
        raise FastfoodError(f"width {width!r}: must be positive")
    if not 0 <= dropout < 1:
        raise FastfoodError(f"dropout {dropout!r}: must be in [0, 1)")


def _build(
    num_classes: int,
    image_size: int,
    width: float,
    dropout: float,
    convention: str,
    fc6_matmul: bool | None,
    random_init: bool = False,
) -> keras.Model:
    """The Keras graph; fc6_matmul=False forces fc6's convolution (benchmarks only).

    random_init=True uses `fastfood.model.init`'s initializers (for training from scratch);
    otherwise Keras' defaults, which pretrained loading overwrites (all but a fresh fc8).
    """

    def init(layer: str) -> Any:
        return kernel_initializer(layer) if random_init else "glorot_uniform"

    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    x = Preprocess(convention, name="preprocess")(inputs)
    for block, (channels, convs) in enumerate(BLOCKS, start=1):
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(
                scaled(channels, width),
                3,
                padding="same",
                activation="relu",
                kernel_initializer=init(f"conv{block}_{i}"),
                name=f"conv{block}_{i}",
            )(x)
        x = keras.layers.MaxPooling2D(2, 2, name=f"pool{block}")(x)

    pool5 = image_size // 2 ** len(BLOCKS)
    units = scaled(FC_UNITS, width)
    x = FC6(
        units,
        kernel_size=min(FC6_KERNEL, pool5),
        use_matmul=True if fc6_matmul is None else fc6_matmul,
        kernel_initializer=init("fc6"),
        name="fc6",
    )(x)
    x = keras.layers.Dropout(dropout, name="dropout6")(x)
    x = keras.layers.Dense(
        units, activation="relu", kernel_initializer=init("fc7"), name="fc7"
    )(x)
    if len(x.shape) == 4:  # fc6 had more than one position: slim's global_pool
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout7")(x)
    x = keras.layers.Dense(num_classes, kernel_initializer=init("fc8"), name="fc8")(x)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    model = keras.Model(inputs, logits, name="vgg19")
    model.fastfood_load_summary = None
    return model
