"""fastfood's own DALI CPU operator (``fn.fastfood_resize``): built on first use, then loaded.

Why: on DALI's CPU backend ``fn.resize`` with antialiasing costs more than decoding the JPEG
(about 1.2 ms against 1.0 ms for a 384x384 centre crop to 224x224 on one core here), so it
held the DALI eval loader to about 0.6x the decode-only limit. ``resize_op.cc`` computes the
same antialiased triangle filter as ``tf.image.resize(bilinear, antialias=True)``, bit for
bit, in about a quarter of the time. The GPU pipeline keeps DALI's ``fn.resize``.

Building: the operator is C++ against DALI's headers, so it is compiled on the machine that
runs it (``g++`` or ``$CXX``, C++20, about 7 s), once per source/DALI version/CPU, into
``$FASTFOOD_NATIVE_CACHE`` (default ``~/.cache/fastfood/native``). ``scripts/setup.sh`` builds
it ahead (``python -m fastfood.loaders.native``). DALI's headers include CUDA's
``cuda_runtime_api.h``; the copy TensorFlow ships, ``$CUDA_HOME`` or ``/usr/local/cuda`` is
used. If it cannot be built or loaded, one warning says why and the pipeline uses
``fn.resize`` (the same images within rounding, slower). ``FASTFOOD_NATIVE=0`` switches it off.

No TensorFlow is imported here: the DALI pipeline module must stay importable without it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from fastfood import paths

SOURCE = Path(__file__).with_name("resize_op.cc")
LIBRARY_NAME = "libfastfood_dali_ops.so"
ENV_SWITCH = "FASTFOOD_NATIVE"
ENV_CACHE = "FASTFOOD_NATIVE_CACHE"
# -ffp-contract=off: no fused multiply-add, so sums round exactly as TensorFlow's do.
BASE_FLAGS = ["-std=c++20", "-O3", "-ffp-contract=off", "-shared", "-fPIC", "-w"]


class NativeBuildError(RuntimeError):
    """The operator could not be compiled or loaded; the message says why in one line."""


def enabled() -> bool:
    """False when ``FASTFOOD_NATIVE=0`` asks for DALI's own ``fn.resize``."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_root() -> Path:
    """Where built libraries live. Not under $FASTFOOD_CACHE (the sample's folder, which tests
    point at temporary folders): a library is per machine, not per data set."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else paths.user_cache() / "native"


def _dali_dir() -> Path:
    import nvidia.dali

    return Path(nvidia.dali.__file__).resolve().parent


def _cpu_fingerprint() -> str:
    """What -march=native compiles for: the CPU model and flags (a shared cache may span CPUs)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in text.splitlines()
            if ln.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part")]
    return "\n".join(sorted(set(keep)))


def _cuda_include_dirs() -> list[Path]:
    """Folders that hold cuda_runtime_api.h (and nv/target, which cuda_fp16.h includes)."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec("tensorflow")  # locates, does not import
    if spec is not None and spec.submodule_search_locations:
        cuda = Path(list(spec.submodule_search_locations)[0]) / "include/third_party/gpus/cuda"
        candidates += [cuda / "include", cuda / "libcudacxx/include"]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates += [Path(home) / "include", Path(home) / "include/cccl"]
    found = [d for d in candidates if (d / "cuda_runtime_api.h").is_file() or (d / "nv/target").is_file()]
    if not any((d / "cuda_runtime_api.h").is_file() for d in found):
        raise NativeBuildError("no CUDA headers (cuda_runtime_api.h) found for DALI's headers: "
                               "install tensorflow, or set CUDA_HOME")
    return found


def _march_flags() -> list[str]:
    return ["-march=native"] if platform.machine().lower() in ("x86_64", "amd64") else ["-mcpu=native"]


def library_path() -> Path:
    """Where the library for this source, DALI version, compiler flags and CPU lives."""
    import nvidia.dali

    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), nvidia.dali.__version__.encode(), " ".join(BASE_FLAGS).encode(),
                 _cpu_fingerprint().encode(), sys.platform.encode()):
        key.update(part)
        key.update(b"\0")
    return cache_root() / key.hexdigest()[:16] / LIBRARY_NAME


def build(force: bool = False) -> Path:
    """Compile the operator library if it is not there yet; returns its path."""
    target = library_path()
    if target.is_file() and not force:
        return target
    compiler = os.environ.get("CXX") or "g++"
    if shutil.which(compiler) is None:
        raise NativeBuildError(f"no C++ compiler ({compiler}) on PATH")
    import nvidia.dali.sysconfig as dali_config

    dali_dir = _dali_dir()
    includes = [f"-I{d}" for d in _cuda_include_dirs()]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=target.parent)
    os.close(fd)
    base = [compiler, *BASE_FLAGS, *dali_config.get_compile_flags(), *includes, str(SOURCE),
            "-o", tmp, *dali_config.get_link_flags(), f"-Wl,-rpath,{dali_dir}"]
    try:
        errors = ""
        for march in (_march_flags(), []):  # a compiler that rejects -march=native: portable build
            proc = subprocess.run(base[:1] + march + base[1:], capture_output=True, text=True)
            if proc.returncode == 0:
                os.chmod(tmp, 0o755)
                os.replace(tmp, target)  # atomic: a concurrent build or reader never sees half a file
                return target
            errors = proc.stderr
        last = next((ln for ln in errors.splitlines() if "error" in ln), errors.strip()[-300:])
        raise NativeBuildError(f"compiling {SOURCE.name} failed: {last}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.cache
def _load() -> str | None:
    """Build and load once per process; None when loaded, else the reason it is not."""
    try:
        path = build()
        import nvidia.dali.plugin_manager as plugin_manager

        plugin_manager.load_library(str(path))
        from nvidia.dali import fn

        if not hasattr(fn, "fastfood_resize"):
            return f"{path} loaded but registered no fastfood_resize operator"
        return None
    except ImportError:
        return "DALI is not installed"
    except (NativeBuildError, OSError, RuntimeError) as err:
        return str(err)


def resize_available() -> bool:
    """True when ``fn.fastfood_resize`` can be used (building it on first call)."""
    if not enabled():
        return False
    reason = _load()
    if reason is not None:
        _warn_once(reason)
    return reason is None


def describe() -> str:
    """Which resize the DALI CPU pipeline uses, for benchmark reports (safe without DALI)."""
    if not enabled():
        return f"fn.resize ({ENV_SWITCH}=0)"
    reason = _load()
    return "native" if reason is None else f"fn.resize (native unavailable: {reason})"


@functools.cache
def _warn_once(reason: str) -> None:
    warnings.warn(f"fastfood: native DALI resize unavailable ({reason}); the DALI CPU pipeline "
                  "uses fn.resize instead (same filter, slower)", RuntimeWarning, stacklevel=3)


def main(argv: list[str] | None = None) -> int:
    """``python -m fastfood.loaders.native [--force]``: build now, print the library's path."""
    args = sys.argv[1:] if argv is None else argv
    try:
        print(build(force="--force" in args))
    except NativeBuildError as err:
        print(f"fastfood: native DALI resize not built: {err}", file=sys.stderr)
        return 1
    return 0
