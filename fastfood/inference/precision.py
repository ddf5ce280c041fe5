"""Which numeric precision predict, evaluate and serve compute in, and why.

`--precision auto` takes the fastest type this hardware computes natively, by the same
detection training uses (`fastfood.machine.detect`): bfloat16 on NVIDIA GPUs of compute
capability >= 8.0, float16 on 7.x (tensor cores; no loss scaling is needed to infer),
bfloat16 on CPUs with AVX512-BF16 or AMX, float32 everywhere else (an AVX2-only CPU
emulates bf16, several times slower, so nothing gets slower there).

One exception, measured (full VGG19 at 224 px, one image, AMD EPYC with AVX512-BF16, 2
cores): a cold `predict` of a handful of files runs TF's own Eigen kernels (oneDNN's first
call costs more than it saves, see `fastfood.cli.predict`), and Eigen has no native bf16
convolution: the first batch-1 forward took 1.6 s in float32 and 5.1 s in bf16 there. With
oneDNN on, batch 1 is a tie (1.75 s vs 1.68 s). So on a CPU `auto` keeps float32 for at most
`COLD_MAX_IMAGES` images; batches are where bf16 pays.

Whatever is chosen, the weights stay float32 (Keras' mixed policies keep float32
variables, so the float32 checkpoint restores as it is), the model's logits are float32 and
the softmax and top-k run in float32 (`fastfood.inference.forward`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastfood.config import INFERENCE_PRECISIONS
from fastfood.errors import FastfoodError
from fastfood.inference.batches import DIRECT_MAX
from fastfood.machine import Hardware

#: The Keras dtype policy of each precision.
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
#: Up to this many images (the direct-decode, Eigen-kernel path) auto stays float32 on CPUs.
COLD_MAX_IMAGES = DIRECT_MAX


@dataclass(frozen=True)
class Precision:
    """The precision inference runs in (fp32 | bf16 | fp16) and why it was chosen."""

    name: str
    reason: str

    @property
    def policy(self) -> str:
        return POLICIES[self.name]

    def to_json(self) -> dict[str, str]:
        return {"precision": self.name, "policy": self.policy, "reason": self.reason}

    def line(self) -> str:
        """The stderr line every command prints."""
        return f"fastfood: precision {self.name} ({self.reason})"


def record(precision: Precision, batch_norm_folded: bool) -> dict[str, Any]:
    """What JSON outputs (predict --json, evaluate's JSON, the server's /v1/model) carry."""
    return {**precision.to_json(), "batch_norm_folded": bool(batch_norm_folded)}


FP32 = Precision("fp32", "asked for with --precision fp32")


def check(requested: str) -> str:
    """`requested` if it is one of INFERENCE_PRECISIONS, else a FastfoodError naming the flag."""
    if requested not in INFERENCE_PRECISIONS:
        raise FastfoodError(f"--precision {requested!r}: must be one of "
                            f"{', '.join(INFERENCE_PRECISIONS)}")
    return requested


def choose(requested: str, hw: Hardware, images: int | None = None) -> Precision:
    """Turn --precision into a Precision for this hardware; `images`: how many will be
    classified, when known (a handful stays float32 on CPUs, see the module doc)."""
    if check(requested) != "auto":
        return Precision(requested, f"asked for with --precision {requested}")
    if hw.gpu_capabilities:
        cap = min(hw.gpu_capabilities)
        name = hw.gpu_names[hw.gpu_capabilities.index(cap)] if hw.gpu_names else "GPU"
        where = f"{name} has compute capability {cap[0]}.{cap[1]}"
        if cap >= (8, 0):
            return Precision("bf16", f"auto: {where} (bfloat16 tensor cores)")
        if cap >= (7, 0):
            return Precision("fp16", f"auto: {where} (float16 tensor cores)")
        return Precision("fp32", f"auto: {where} < 7.0 (no tensor cores)")
    if not hw.cpu_bf16:
        return Precision("fp32", "auto: no GPU and no native bfloat16 on this CPU")
    if images is not None and images <= COLD_MAX_IMAGES:
        return Precision("fp32", f"auto: {images} image(s) on a CPU: float32 is faster at "
                                 "batch 1 without oneDNN")
    return Precision("bf16", "auto: CPU has native bfloat16 (avx512_bf16/amx_bf16)")


def resolve(requested: str | Precision, images: int | None = None) -> Precision:
    """`choose` with this machine's hardware (detected only when `requested` is auto)."""
    if isinstance(requested, Precision):
        return requested
    if check(requested) != "auto":
        return choose(requested, Hardware(), images)
    from fastfood.machine import detect

    return choose(requested, detect(), images)


@contextmanager
def dtype_policy(precision: Precision) -> Iterator[Any]:
    """Build under `precision`'s Keras policy, then put the previous global policy back."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision.policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
