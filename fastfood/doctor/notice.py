"""The one line a run prints about its GPUs: their kernels, and CUDA's compile cache.

fastfood quiets TensorFlow's C++ log (TF_CPP_MIN_LOG_LEVEL=3, `fastfood.quiet`), which also
hides TensorFlow's warning that its kernels are being JIT-compiled from PTX. The TensorFlow
2.21 wheel ships machine code for sm_60, sm_70, sm_80 and sm_89 and PTX for compute_90
(tf.sysconfig.get_build_info()["cuda_compute_capabilities"]), so on an H100 or H200 (9.0)
the driver compiles every kernel at the first start: that can take many minutes and looks
like a hang. The compiled kernels are kept in CUDA's compute cache (CUDA_CACHE_PATH,
~/.nv/ComputeCache by default) only if it is large enough (CUDA_CACHE_MAXSIZE, at most
4 GiB) and not disabled (CUDA_CACHE_DISABLE=1). So a run says it, once, on GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastfood.doctor.rules import kernel_support

CACHE_MAX = 4294967296  # 4 GiB, the largest CUDA_CACHE_MAXSIZE CUDA takes


def gpu_notice(names: Sequence[str], capabilities: Sequence[tuple[int, int] | None],
               shipped: Sequence[str], environ: Mapping[str, str]) -> str:
    """One line on the GPUs (name, compute capability, how TensorFlow's kernels run on
    them) and the compile cache; '' without a GPU."""
    if not names:
        return ""
    kinds: dict[str, int] = {}
    for name, cap in zip(names, capabilities):
        label = f"{name} ({cap[0]}.{cap[1]})" if cap else name
        kinds[label] = kinds.get(label, 0) + 1
    gpus = ", ".join(f"{n} x{k}" if k > 1 else n for n, k in kinds.items())
    support = {kernel_support(cap, shipped) if cap and shipped else "unknown"
               for cap in capabilities}
    if "ptx" in support:
        kernels = ("TensorFlow ships only PTX for it, so CUDA JIT-compiles its kernels at the "
                   "first start (can take many minutes and look hung)")
    elif support == {"native"}:
        kernels = "TensorFlow ships machine code for it (no JIT compile)"
    else:
        kernels = "TensorFlow's kernels for it are unknown (`fastfood doctor` checks)"
    return f"GPU {gpus}: {kernels}; {cache_words(environ, 'ptx' in support)}"


def cache_words(environ: Mapping[str, str], needed: bool) -> str:
    """What CUDA's compute cache will keep, with the fix when it matters."""
    if environ.get("CUDA_CACHE_DISABLE", "0").strip() == "1":
        return ("CUDA's compile cache is disabled (CUDA_CACHE_DISABLE=1)"
                + ("; unset it to compile once" if needed else ""))
    size = environ.get("CUDA_CACHE_MAXSIZE", "").strip()
    where = environ.get("CUDA_CACHE_PATH", "") or "~/.nv/ComputeCache"
    if size.isdigit() and int(size) >= CACHE_MAX:
        return f"compile cache {where}, CUDA_CACHE_MAXSIZE={size}: later starts reuse it"
    now = f"CUDA_CACHE_MAXSIZE={size}" if size else "CUDA_CACHE_MAXSIZE unset (CUDA's default)"
    if not needed:
        return f"compile cache {where}, {now}"
    return (f"compile cache {where}, {now}, too small to keep TensorFlow's kernels: export "
            f"CUDA_CACHE_MAXSIZE={CACHE_MAX} so they are compiled once")


def gpu_notice_here() -> str:
    """`gpu_notice` for the GPUs TensorFlow sees in this process ('' without one)."""
    import os

    import tensorflow as tf

    names, caps = [], []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name", gpu.name)))
        cap = details.get("compute_capability")
        caps.append(tuple(cap) if cap else None)
    shipped = tuple(tf.sysconfig.get_build_info().get("cuda_compute_capabilities", ()))
    return gpu_notice(names, caps, shipped, os.environ)
