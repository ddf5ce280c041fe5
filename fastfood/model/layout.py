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
