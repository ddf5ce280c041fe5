"""What this machine is: CPU and its bf16 support, cores, memory, GPUs, library versions.

A neutral module: training and inference choose their precision from `detect()`, doctor
reports it, and every benchmark result carries `machine_info()` (numbers without the
machine are useless, and numbers taken on a busy machine are misleading, so it includes
the load average before the run).
Versions come from package metadata, so collecting them imports nothing heavy; only the
GPU list needs TensorFlow, and only when asked for.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from fastfood.cpus import usable_cpus

PACKAGES = ("tensorflow", "keras", "numpy", "pillow", "nvidia-dali", "nvidia-dali-tf-plugin")


@dataclass(frozen=True)
class Hardware:
    """What the decision depends on: GPU compute capabilities and CPU bf16 support."""

    gpu_capabilities: tuple[tuple[int, int], ...] = ()
    gpu_names: tuple[str, ...] = ()
    cpu_bf16: bool = False


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when /proc/cpuinfo lists avx512_bf16 or amx_bf16 (native bfloat16 matmuls)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def detect() -> Hardware:
    """Ask TensorFlow for the GPUs' compute capabilities and the kernel for CPU flags."""
    import tensorflow as tf

    caps, names = [], []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        caps.append(tuple(details.get("compute_capability", (0, 0))))
        names.append(str(details.get("device_name", gpu.name)))
    return Hardware(tuple(caps), tuple(names), cpu_has_bf16())


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """Model name and flags of the first CPU in /proc/cpuinfo (platform fallbacks elsewhere)."""
    model, flags = "", []
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model Name") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = value.split()
        if model and flags:
            break
    return {"model": model or platform.processor() or platform.machine(), "flags": flags}


def memory_gib() -> float:
    """Total RAM in GiB from /proc/meminfo (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def versions() -> dict[str, str]:
    """Installed versions of the libraries that decide speed (DALI's CUDA flavour found)."""
    found: dict[str, str] = {"python": platform.python_version()}
    names = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()
             if d.metadata["Name"]}
    for wanted in PACKAGES:
        for name, version in sorted(names.items()):
            # nvidia-dali-cuda120 / nvidia-dali-tf-plugin-cuda120: match on the prefix,
            # but do not let "nvidia-dali" claim the plugin.
            base = name.rsplit("-cuda", 1)[0] if name.startswith("nvidia-dali") else name
            if base == wanted:
                found[wanted] = version if name == wanted else f"{version} ({name})"
                break
    try:
        found["fastfood"] = metadata.version("fastfood")
    except metadata.PackageNotFoundError:
        from fastfood import __version__

        found["fastfood"] = __version__
    return found


def gpus() -> list[dict[str, Any]]:
    """GPUs TensorFlow sees, with name and compute capability (imports TensorFlow)."""
    try:
        import tensorflow as tf
    except ImportError:
        return []
    out = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        out.append({
            "name": details.get("device_name", dev.name),
            "compute_capability": ".".join(map(str, details.get("compute_capability", ()))),
        })
    return out


def load_average() -> list[float]:
    """1/5/15-minute load averages: compare with `cores` to see if the machine was quiet."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info(with_gpus: bool = True) -> dict[str, Any]:
    """Everything above in one JSON-ready dict."""
    cpu = cpu_info()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu["model"],
        "cpu_flags": cpu["flags"],
        "cores": usable_cpus(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "gpus": gpus() if with_gpus else [],
        "versions": versions(),
        "python_executable": sys.executable,
        "load_average_before": load_average(),
    }


def busy_warning(info: dict[str, Any]) -> str | None:
    """A line to print when the 1-minute load was already high before the benchmark."""
    load = info.get("load_average_before") or []
    cores = info.get("cores") or 1
    if load and load[0] > 0.25 * cores:
        return (f"load average {load[0]} on {cores} cores before the run: "
                "the machine is busy, timings will be low and noisy")
    return None
