"""Pick the numeric precision and whether to compile with XLA, once, before the model exists.

Mixed precision is one setting (the Keras global dtype policy) chosen here from what the
hardware does fast: bfloat16 on NVIDIA GPUs of compute capability 8.0 and up (A100, H100,
H200: the same tensor-core rate as float16, float32's range, so no loss scaling and no
overflow all-reduce), float16 with loss scaling on the tensor cores of 7.x (V100, T4),
bfloat16 on CPUs whose instructions compute it natively (AVX512-BF16 or AMX), float32
otherwise. With several GPUs the oldest decides. The detection (`fastfood.machine.detect`)
is split from the decision so the decision can be tested without the hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastfood.machine import Hardware

@dataclass(frozen=True)
class Precision:
    """The chosen Keras dtype policy, whether it needs loss scaling, and why it was chosen."""

    policy: str  # float32 | mixed_float16 | mixed_bfloat16
    loss_scale: bool
    reason: str

    @property
    def short(self) -> str:
        return {"float32": "fp32", "mixed_float16": "fp16", "mixed_bfloat16": "bf16"}[self.policy]


def choose_precision(requested: str, hw: Hardware) -> Precision:
    """Turn --precision (one of config.PRECISIONS) into a policy. 'mixed' is the fast half
    type of this hardware."""
    if requested == "fp32":
        return Precision("float32", False, "asked for with --precision fp32")
    if requested == "fp16":
        return Precision("mixed_float16", True, "asked for with --precision fp16")
    if requested == "bf16":
        return Precision("mixed_bfloat16", False, "asked for with --precision bf16")
    if hw.gpu_capabilities:
        cap = min(hw.gpu_capabilities)
        oldest = hw.gpu_capabilities.index(cap)
        name = hw.gpu_names[oldest] if oldest < len(hw.gpu_names) else "GPU"
        if cap >= (8, 0):
            return Precision(
                "mixed_bfloat16", False,
                f"{name} has compute capability {cap[0]}.{cap[1]} (bfloat16 tensor cores: "
                "float16's rate, no loss scaling)",
            )
        if cap >= (7, 0):
            return Precision(
                "mixed_float16", True,
                f"{name} has compute capability {cap[0]}.{cap[1]} (float16 tensor cores, "
                "with loss scaling)",
            )
        if requested == "mixed":
            return Precision(
                "mixed_float16", True,
                f"asked for with --precision mixed; {name} (compute capability "
                f"{cap[0]}.{cap[1]}) has no tensor cores, so expect no speed-up",
            )
        return Precision(
            "float32", False,
            f"{name} has compute capability {cap[0]}.{cap[1]} < 7.0 (no tensor cores)",
        )
    if hw.cpu_bf16:
        return Precision("mixed_bfloat16", False, "CPU has native bfloat16 (avx512_bf16/amx_bf16)")
    if requested == "mixed":
        return Precision(
            "mixed_bfloat16", False,
            "asked for with --precision mixed; this CPU has no native bfloat16, so it is "
            "emulated and slower than fp32",
        )
    return Precision("float32", False, "no GPU and no native bfloat16 on this CPU")


def choose_xla(requested: str, hw: Hardware) -> tuple[bool, str]:
    """XLA on GPUs (fused kernels pay off), off on CPUs (measured about 5x slower there)."""
    if requested == "on":
        return True, "asked for with --xla"
    if requested == "off":
        return False, "asked for with --no-xla"
    if hw.gpu_capabilities:
        return True, "on by default on GPUs"
    return False, "off by default on CPUs (slower there)"


def apply(precision: Precision) -> None:
    """Set the global Keras dtype policy. Must run before the model is built."""
    import keras

    keras.mixed_precision.set_global_policy(precision.policy)
