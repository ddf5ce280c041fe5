"""What `fastfood doctor` finds out about a machine: plain frozen records, no logic.

Fields left empty mean "absent" or "unknown", so a test can describe any machine in a line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field


def major_minor(version: str) -> tuple[int, int]:
    """'12.5.1' -> (12, 5); '580.159.04' -> (580, 159); '' -> (0, 0)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


@dataclass(frozen=True)
class Gpu:
    """One GPU: from TensorFlow (capability) or nvidia-smi (driver), merged by `collect`."""

    name: str
    capability: tuple[int, int] | None = None
    driver: str = ""


@dataclass(frozen=True)
class TfBuild:
    """tf.sysconfig.get_build_info(): the CUDA stack and kernels this TensorFlow was built with."""

    is_cuda_build: bool = False
    cuda_version: str = ""
    cudnn_version: str = ""
    cuda_compute_capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class XlaTools:
    """Where XLA would find ptxas and libdevice ('' when it would not)."""

    ptxas: str = ""
    ptxas_version: str = ""  # e.g. "12.5.82"
    libdevice: str = ""
    under_cuda_home: str = ""  # $CUDA_HOME, when it holds a tool XLA's search misses
    searched: tuple[str, ...] = ()


@dataclass(frozen=True)
class DaliPlugin:
    """The DALI TensorFlow plugin: installed version, its libraries, and whether it imports."""

    distribution: str = ""  # e.g. nvidia-dali-tf-plugin-cuda120; '' when not installed
    version: str = ""
    libraries: tuple[str, ...] = ()  # in the order the plugin's loader tries them
    built_for: str = ""  # "2.21" for a prebuilt library; "install" for libdali_tf_current.so
    compiled_before_tf: bool = False  # TensorFlow was installed after the plugin was compiled
    error: str = ""  # first line of the import error; '' when it imports


@dataclass(frozen=True)
class Facts:
    """Everything `diagnose` judges. Fields left empty mean "absent" or "unknown"."""

    python: str
    tensorflow: str = ""
    tensorflow_error: str = ""
    tensorflow_required: str = ""  # fastfood's requirement, e.g. "==2.21.0"
    keras: str = ""
    dali: str = ""  # "2.4.0 (nvidia-dali-cuda120)"
    plugin: DaliPlugin = DaliPlugin()
    native_resize: str = ""  # native.describe(), or why it was not asked
    native_resize_built: bool = False
    build: TfBuild = TfBuild()
    gpus: tuple[Gpu, ...] = ()  # what TensorFlow sees
    smi_gpus: tuple[Gpu, ...] = ()  # what nvidia-smi lists
    nvidia_smi: str = ""  # its path; '' when not on PATH
    cuda_visible_devices: str | None = None  # the variable, None when unset
    tf_log: tuple[str, ...] = ()
    memory_growth: str = ""  # why GPU memory growth could not be set; '' when it is on
    xla: XlaTools = XlaTools()
    cpu_model: str = ""
    cpu_bf16: bool = False
    auto_loader: str = ""  # loaders.resolve_kind("auto")
    cuda_wheels: Mapping[str, str] = field(default_factory=dict)
