"""VGG19 as TF-slim defines it, for fine-tuning from ImageNet weights, and with batch norm.

The network is slim's `vgg_19`: sixteen 3x3 SAME convolutions with ReLU, five 2x2/2 max
pools, then fc6 as a k x k VALID convolution (k = 7 for the pretrained weights), fc7 and
fc8. When the input is larger than 224 px, fc6 slides over pool5 and fc7 runs at every
position; the fc7 activations are then averaged over the positions, which is slim's
`global_pool=True` followed by `spatial_squeeze`: averaging before the linear fc8 is the
same as averaging fc8's logits (averaging any earlier would not be, because of fc7's ReLU).
At 224 px there is one position and the average disappears.

Preprocessing (channel order and means) is the model's first layer and follows the
weights, so every consumer of the model feeds it plain RGB 0-255.

norm='batch' is torchvision's `vgg19_bn` layout: every convolution (without bias) is
followed by batch norm, then the ReLU; the fully connected layers stay as they are. It is
the standard way to train this depth from scratch, and the default for random init
(norm='auto'). The BN is synchronised: under MirroredStrategy or multi-worker training the
batch statistics are the global batch's, so N replicas train as one device would. There are
no pretrained weights for it here (slim's and Keras' VGG19 have no BN). The layer is Keras'
BatchNormalization run by TensorFlow's fused kernel where that computes the same
(`fastfood.model.batch_norm`): Keras' separate float32 ops made the bfloat16 step 1.4-2.5x
the plain one's.
"""

from __future__ import annotations

import logging
from typing import Any

import keras

from fastfood.config import NORMS, is_random_init, resolve_norm
from fastfood.errors import FastfoodError
from fastfood.model.batch_norm import BatchNorm
from fastfood.model.fc6 import FC6
from fastfood.model.init import bn_kernel_initializer, kernel_initializer
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
#: Batch norm as torchvision's: running averages over ~10 steps (not Keras' ~100, which
#: lags the fast-moving weights of a short run from scratch), epsilon 1e-5.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def vgg19(
    num_classes: int,
    *,
    image_size: int = 224,
    width: float = 1.0,
    dropout: float = 0.5,
    weights: str | None = None,
    convention: str | None = None,
    norm: str = "auto",
) -> keras.Model:
    """Build VGG19 for `num_classes`, random or from pretrained weights.

    Input: RGB 0-255, uint8 or float, [batch, image_size, image_size, 3]. Output: float32
    logits [batch, num_classes] under any global dtype policy (set it before calling).
    `weights`: None (or 'none') for random init, 'imagenet', a TF-slim checkpoint prefix or
    a Keras .h5 file; with weights, fc8 is loaded too when the file has `num_classes`
    classes, else initialised afresh. `width` scales every channel count (random init only,
    for fast tests and demos). `convention` ('slim' | 'keras') overrides the preprocessing
    the weights imply, for rebuilding a trained run. `norm`: 'batch' (BN after every
    convolution), 'none' (the plain net the pretrained weights fit) or 'auto' (batch for
    random init, none with weights); a run is rebuilt with `resolve_norm` of its own config,
    since it is rebuilt with weights=None. The load summary is in
    `model.fastfood_load_summary` (None for random init).
    """
    _check_args(num_classes, image_size, width, dropout)
    if norm not in NORMS:  # a library call's own argument (a config was checked already)
        raise FastfoodError(f"--norm {norm!r}: must be one of {', '.join(NORMS)}")
    if is_random_init(weights):
        weights = None
    batch_norm = resolve_norm(norm, weights) == "batch"
    if convention is not None:
        check_convention(convention)
    if weights is None:
        return _build(num_classes, image_size, width, dropout, convention or "slim",
                      random_init=True, batch_norm=batch_norm)
    if batch_norm:
        raise FastfoodError(
            f"--weights {weights} with --norm batch: the pretrained VGG19 weights (TF-slim, "
            "Keras) have no batch norm, so they cannot be loaded into the batch-norm "
            "variant; use --norm auto (or none) with pretrained weights"
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
            num_classes, image_size, width, dropout, convention or source.convention
        )
        summary = load_into(model, source, plan)
    model.fastfood_load_summary = summary
    return model


def convention_of(model: keras.Model) -> str:
    """The preprocessing convention built into a fastfood model ('slim' or 'keras')."""
    return model.get_layer("preprocess").convention


def norm_of(model: keras.Model) -> str:
    """'batch' when the model has batch norm after its convolutions, else 'none'."""
    names = {layer.name for layer in model.layers}
    return "batch" if "conv1_1_bn" in names else "none"


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
    random_init: bool = False,
    batch_norm: bool = False,
) -> keras.Model:
    """The Keras graph.

    random_init=True uses `fastfood.model.init`'s initializers (for training from scratch);
    otherwise Keras' defaults, which pretrained loading overwrites (all but a fresh fc8).
    """

    def init(layer: str) -> Any:
        if not random_init:
            return "glorot_uniform"
        return (bn_kernel_initializer if batch_norm else kernel_initializer)(layer)

    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    x = Preprocess(convention, name="preprocess")(inputs)
    for block, (channels, convs) in enumerate(BLOCKS, start=1):
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            x = keras.layers.Conv2D(
                scaled(channels, width),
                3,
                padding="same",
                activation=None if batch_norm else "relu",
                use_bias=not batch_norm,  # BN's beta is the bias
                kernel_initializer=init(name),
                name=name,
            )(x)
            if batch_norm:
                x = BatchNorm(
                    momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=True,
                    name=f"{name}_bn",
                )(x)
                x = keras.layers.ReLU(name=f"{name}_relu")(x)
        x = keras.layers.MaxPooling2D(2, 2, name=f"pool{block}")(x)

    pool5 = image_size // 2 ** len(BLOCKS)
    units = scaled(FC_UNITS, width)
    x = FC6(
        units,
        kernel_size=min(FC6_KERNEL, pool5),
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
    model = keras.Model(inputs, logits, name="vgg19_bn" if batch_norm else "vgg19")
    model.fastfood_load_summary = None
    return model
