"""VGG19's layer names and channel counts, shared by the builder and the weight importers."""

from __future__ import annotations

#: (channels, convolutions) per block; pool after each block.
BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
FC_UNITS = 4096
#: fc6's kernel side in the pretrained networks: pool5 is 7x7 at 224 px.
FC6_KERNEL = 7
PRETRAINED_IMAGE_SIZE = 224

CONV_NAMES: tuple[str, ...] = tuple(
    f"conv{b}_{i}" for b, (_, n) in enumerate(BLOCKS, start=1) for i in range(1, n + 1)
)
LAYER_NAMES: tuple[str, ...] = CONV_NAMES + ("fc6", "fc7", "fc8")
#: The arrays a full VGG19 is made of, "layer/kernel" and "layer/bias", input to output.
ARRAY_KEYS: tuple[str, ...] = tuple(
    f"{layer}/{kind}" for layer in LAYER_NAMES for kind in ("kernel", "bias")
)


def scaled(channels: int, width: float) -> int:
    """A channel count scaled by width: rounded, at least 1."""
    return max(1, round(channels * width))


def array_shapes(num_classes: int, image_size: int, width: float = 1.0) -> dict[str, tuple]:
    """The shape of every kernel and bias of `vgg19(...)`, known without building it.

    Lets a weight file be checked against the model before the (slow, 143M-parameter)
    model is built.
    """
    shapes: dict[str, tuple] = {}
    channels_in = 3
    for block, (channels, convs) in enumerate(BLOCKS, start=1):
        for i in range(1, convs + 1):
            out = scaled(channels, width)
            shapes[f"conv{block}_{i}/kernel"] = (3, 3, channels_in, out)
            shapes[f"conv{block}_{i}/bias"] = (out,)
            channels_in = out
    k = min(FC6_KERNEL, image_size // 2 ** len(BLOCKS))
    units = scaled(FC_UNITS, width)
    shapes["fc6/kernel"] = (k, k, channels_in, units)
    shapes["fc6/bias"] = (units,)
    shapes["fc7/kernel"] = (units, units)
    shapes["fc7/bias"] = (units,)
    shapes["fc8/kernel"] = (units, num_classes)
    shapes["fc8/bias"] = (num_classes,)
    return shapes
