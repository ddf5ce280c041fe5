"""Model FLOP utilisation: the FLOPs a training step needs, over what the GPU can do.

Img/s alone does not say whether a GPU is well used; the fraction of its peak tensor-core
rate that the model's arithmetic reaches does. The FLOPs are counted from the built model
(every layer with a kernel: 2 FLOPs per multiply-add), so they follow --width and
--image-size; VGG19 at width 1 and 224 px is 39.3 GFLOP per image forward. A training
step costs about 3x the forward pass (the backward pass computes gradients for both the
activations and the weights). Bias adds, ReLUs and pooling are left out, as is usual.
"""

from __future__ import annotations

import math
import re
from typing import Any

TRAIN_FORWARD_RATIO = 3.0

# Dense fp16/bf16 tensor-core peaks (no sparsity) from NVIDIA's data sheets, TFLOP/s, most
# specific name first. Matched against TensorFlow's device name ("NVIDIA H100 80GB HBM3").
PEAK_FP16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"H100.*PCIe", 756.0),
    (r"H100.*NVL", 835.0),
    (r"H100|H200|GH200", 989.0),
    (r"A100", 312.0),
    (r"V100", 125.0),
    (r"L40S", 362.0),
    (r"\bL4\b", 121.0),
    (r"RTX 4090", 165.0),
    (r"\bA10\b", 125.0),
    (r"\bT4\b", 65.0),
)


def forward_flops(model: Any) -> int:
    """FLOPs of one forward pass for one example: 2 x kernel size x output positions.

    A convolution's kernel [kh, kw, cin, cout] is applied at every output position
    (output elements / cout); a dense kernel [in, out] once. fastfood's FC6 is either.
    """
    total = 0
    for layer in _layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = tuple(int(d) for d in kernel.shape)
        out = tuple(int(d) for d in layer.output.shape[1:])
        positions = math.prod(out) // out[-1]
        total += 2 * math.prod(shape) * positions
    return total


def _layers(model: Any) -> list[Any]:
    """Leaf layers, looking inside nested models."""
    out = []
    for layer in model.layers:
        out += _layers(layer) if hasattr(layer, "layers") else [layer]
    return out


def peak_flops(device_name: str) -> float | None:
    """Dense fp16 tensor-core FLOP/s of a GPU from the table above; None when not listed."""
    for pattern, tflops in PEAK_FP16_TFLOPS:
        if re.search(pattern, device_name):
            return tflops * 1e12
    return None


def utilisation(img_per_s: float | None, flops_per_image: float,
                peak: float | None) -> float | None:
    """Model FLOP utilisation of training: achieved training FLOP/s over the peak."""
    if not img_per_s or not peak:
        return None
    return img_per_s * TRAIN_FORWARD_RATIO * flops_per_image / peak
