"""`collect`: look at this machine. Imports TensorFlow and DALI (a few seconds).

How the DALI TF plugin records the TensorFlow it was built against: only in its library's
file name. The plugin's installer (``dali_tf_plugin_install_tool.py``) either copies a
prebuilt ``libdali_tf_<major>_<minor>.so`` for the installed TensorFlow or compiles
``libdali_tf_current.so`` against the TensorFlow installed at that moment; the plugin's
loader tries ``current`` first. So a prebuilt's name gives its TensorFlow, and a ``current``
library is stale when TensorFlow was installed after it was compiled (file times). Whether
it imports is the final word.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from fastfood.doctor.facts import DaliPlugin, Facts, Gpu, TfBuild, major_minor
from fastfood.errors import first_line
from fastfood.doctor.xla_tools import package_dir, xla_tools_here

# TensorFlow's start-up lines worth keeping: why it does or does not use a GPU.
_TF_LOG_KEEP = re.compile(r"dlopen|cuda|cudnn|gpu|driver|cuinit|compute capability", re.I)
_TF_LOG_MAX = 12


def _dist(prefix: str) -> tuple[str, str]:
    """(name, version) of the installed distribution named `prefix` or `prefix-cudaNNN`."""
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == prefix or re.fullmatch(re.escape(prefix) + r"-cuda\d+", name):
            return name, dist.version
    return "", ""


def _required_tf() -> str:
    try:
        requires = metadata.requires("fastfood") or []
    except metadata.PackageNotFoundError:
        return ""
    for req in requires:
        m = re.match(r"tensorflow\s*([<>=!~][^;]*)", req)
        if m:
            return m.group(1).strip()
    return ""


def _nvidia_smi() -> tuple[str, tuple[Gpu, ...]]:
    """nvidia-smi's path and its GPUs (name, driver, compute capability when it reports it)."""
    exe = shutil.which("nvidia-smi") or ""
    if not exe:
        return "", ()
    for fields in ("name,driver_version,compute_cap", "name,driver_version"):
        try:
            out = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=15)
        except (OSError, subprocess.SubprocessError):
            return exe, ()
        if out.returncode == 0:
            return exe, tuple(_smi_gpu(line) for line in out.stdout.splitlines() if line.strip())
    return exe, ()


def _smi_gpu(line: str) -> Gpu:
    parts = [p.strip() for p in line.split(",")]
    cap = None
    if len(parts) > 2 and re.fullmatch(r"\d+\.\d+", parts[2]):
        cap = major_minor(parts[2])
    return Gpu(name=parts[0], capability=cap, driver=parts[1] if len(parts) > 1 else "")


def _plugin(tf_version: str, tf_imported: bool) -> DaliPlugin:
    name, version = _dist("nvidia-dali-tf-plugin")
    if not name:
        return DaliPlugin()
    folder = package_dir("nvidia.dali_tf_plugin")
    libs = sorted(p.name for p in folder.glob("libdali_tf*.so")) if folder else []
    tf_tag = "_".join(map(str, major_minor(tf_version))) if tf_version else ""
    # The plugin's loader order: current, then the prebuilt for this TF, then the others.
    libs.sort(key=lambda n: (0 if "current" in n else 1 if tf_tag and tf_tag in n else 2, n))
    built_for, stale = "", False
    if libs:
        m = re.fullmatch(r"libdali_tf_(\d+)_(\d+)\.so", libs[0])
        built_for = f"{m.group(1)}.{m.group(2)}" if m else "install"
        if built_for == "install" and folder is not None:
            stale = _tf_installed_after((folder / libs[0]).stat().st_mtime)
    error = ""
    if tf_imported:
        try:
            import nvidia.dali.plugin.tf  # noqa: F401
        except Exception as err:  # noqa: BLE001 - any failure to load is the finding
            error = first_line(err)[:300]
    else:
        error = "TensorFlow does not import"
    return DaliPlugin(distribution=name, version=version, libraries=tuple(libs),
                      built_for=built_for, compiled_before_tf=stale, error=error)


def _tf_installed_after(mtime: float) -> bool:
    """True when TensorFlow's package metadata is newer than `mtime` (by over a minute)."""
    try:
        files = metadata.distribution("tensorflow").files or []
    except metadata.PackageNotFoundError:
        return False
    meta = next((f for f in files if f.name == "METADATA"), None)
    if meta is None:
        return False
    try:
        return Path(meta.locate()).stat().st_mtime > mtime + 60
    except OSError:
        return False


def _native() -> tuple[str, bool]:
    """(what the DALI CPU pipeline resizes with, whether the library is built) without building."""
    from fastfood.loaders import native

    try:
        built = native.library_path().is_file()
    except ImportError:
        return "DALI is not installed", False
    return (native.describe() if built else "not built"), built


class _CapturedStderr:
    """File descriptor 2 into a temporary file: TensorFlow's C++ start-up logs bypass Python."""

    def __enter__(self) -> "_CapturedStderr":
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode(errors="replace")
        self._file.close()


def _tf_facts() -> dict[str, Any]:
    """TensorFlow's version, build, GPUs and start-up log; imports it (a few seconds)."""
    from fastfood import gpu_memory

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep warnings such as failed dlopens
    gpu_memory.request()  # as every command does, before the import
    try:
        import tensorflow as tf
    except Exception as err:  # noqa: BLE001 - ImportError, or a broken CUDA install
        return {"tensorflow_error": first_line(err)[:300]}
    growth = gpu_memory.allow_growth()
    info = dict(tf.sysconfig.get_build_info())
    build = TfBuild(is_cuda_build=bool(info.get("is_cuda_build")),
                    cuda_version=str(info.get("cuda_version", "")),
                    cudnn_version=str(info.get("cudnn_version", "")),
                    cuda_compute_capabilities=tuple(info.get("cuda_compute_capabilities", ())))
    gpus = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        cap = details.get("compute_capability")
        gpus.append(Gpu(name=str(details.get("device_name", dev.name)),
                        capability=tuple(cap) if cap else None))
    return {"tensorflow": tf.__version__, "build": build, "gpus": tuple(gpus),
            "memory_growth": growth}


def _tf_log_lines(text: str) -> tuple[str, ...]:
    """The lines of TensorFlow's start-up log about CUDA and GPUs, without the log prefix."""
    keep = []
    for line in text.splitlines():
        body = line.split("] ", 1)[-1].strip()
        if body and _TF_LOG_KEEP.search(body) and body not in keep:
            keep.append(body[:300])
    return tuple(keep[:_TF_LOG_MAX])


def collect() -> Facts:
    """Look at this machine: versions, GPUs, XLA tools, DALI. Imports TensorFlow and DALI."""
    import platform

    from fastfood.machine import cpu_info, versions
    from fastfood.machine import cpu_has_bf16

    found = versions()
    smi, smi_gpus = _nvidia_smi()
    with _CapturedStderr() as captured:
        tf = _tf_facts()
        plugin = _plugin(tf.get("tensorflow", ""), "tensorflow" in tf)
        if "tensorflow" in tf:
            from fastfood.loaders import resolve_kind

            auto_loader = resolve_kind("auto")
        else:
            auto_loader = "tfdata"
        native_resize, native_built = _native() if "nvidia-dali" in found else ("", False)
    build: TfBuild = tf.get("build", TfBuild())
    driver = next((g.driver for g in smi_gpus if g.driver), "")
    gpus = tuple(dataclasses.replace(g, driver=driver) for g in tf.get("gpus", ()))
    cuda_wheels = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()
                   if re.match(r"nvidia-(cu|nccl|nvjitlink)", (d.metadata["Name"] or "").lower())}
    return Facts(
        python=platform.python_version(),
        tensorflow=tf.get("tensorflow", ""),
        tensorflow_error=tf.get("tensorflow_error", ""),
        tensorflow_required=_required_tf(),
        keras=found.get("keras", ""),
        dali=found.get("nvidia-dali", ""),
        plugin=plugin,
        native_resize=native_resize,
        native_resize_built=native_built,
        build=build,
        gpus=gpus,
        smi_gpus=smi_gpus,
        nvidia_smi=smi,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        tf_log=_tf_log_lines(captured.text),
        memory_growth=tf.get("memory_growth", ""),
        xla=xla_tools_here(build.cuda_version),
        cpu_model=cpu_info()["model"],
        cpu_bf16=cpu_has_bf16(),
        auto_loader=auto_loader,
        cuda_wheels=dict(sorted(cuda_wheels.items())),
    )
