"""Where XLA would find ptxas and libdevice, searched as XLA searches.

XLA's ``FindCudaExecutable`` and ``CandidateCudaRoots`` look, in this order: in
``--xla_gpu_cuda_data_dir`` from ``$XLA_FLAGS``, then (ptxas only) on ``$PATH``, then in
``/usr/local/cuda``, ``/opt/cuda``, the pip wheel ``nvidia-cuda-nvcc-cu12``
(``site-packages/nvidia/cuda_nvcc``; ``nvidia/cu13`` for CUDA 13 builds), TensorFlow's own
folder and a conda prefix. ``$CUDA_HOME`` is not among them in every XLA version, so a tool
found only there is reported with the flag that makes XLA use it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastfood.doctor.facts import XlaTools, major_minor

PTXAS = Path("bin/ptxas")
LIBDEVICE = Path("nvvm/libdevice/libdevice.10.bc")
SYSTEM_CUDA_ROOTS = (Path("/usr/local/cuda"), Path("/opt/cuda"))


def package_dir(name: str) -> Path | None:
    """A package's folder without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _xla_data_dir(xla_flags: str) -> Path | None:
    m = re.search(r"--xla_gpu_cuda_data_dir=(\S+)", xla_flags)
    return Path(m.group(1).strip("'\"")) if m else None


def ptxas_version(path: str) -> str:
    """'12.5.82' from `ptxas --version`; '' when it does not run."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    m = re.search(r"V(\d+\.\d+(?:\.\d+)?)", out.stdout) or re.search(
        r"release (\d+\.\d+)", out.stdout)
    return m.group(1) if m else ""


def xla_roots(tf_dir: Path | None, cuda_version: str,
              system_roots: Sequence[Path] = SYSTEM_CUDA_ROOTS) -> list[Path]:
    """The CUDA roots XLA searches after $XLA_FLAGS and $PATH, in its order."""
    roots = list(system_roots)
    if tf_dir is not None:
        wheel = "cu13" if major_minor(cuda_version)[0] == 13 else "cuda_nvcc"
        roots += [tf_dir.parent / "nvidia" / wheel, tf_dir / "cuda"]
        if len(tf_dir.parents) > 3:
            roots.append(tf_dir.parents[3])  # a conda prefix: <prefix>/lib/pythonX/site-packages
    return roots


def find_xla_tools(tf_dir: Path | None = None, cuda_version: str = "",
                   env: Mapping[str, str] | None = None,
                   system_roots: Sequence[Path] = SYSTEM_CUDA_ROOTS) -> XlaTools:
    """Where XLA would find ptxas and libdevice, searched in XLA's order (module docstring)."""
    env = os.environ if env is None else env
    data_dir = _xla_data_dir(env.get("XLA_FLAGS", ""))
    roots = ([data_dir] if data_dir else []) + xla_roots(tf_dir, cuda_version, system_roots)

    def first(rel: Path, candidates: Sequence[Path]) -> str:
        return next((str(p / rel) for p in candidates if (p / rel).is_file()), "")

    ptxas = first(PTXAS, roots[:1] if data_dir else [])
    if not ptxas:
        ptxas = shutil.which("ptxas", path=env.get("PATH", "")) or first(PTXAS, roots)
    libdevice = first(LIBDEVICE, roots)
    cuda_home = env.get("CUDA_HOME") or env.get("CUDA_PATH") or ""
    under_home = ""
    if cuda_home and ((not ptxas and (Path(cuda_home) / PTXAS).is_file())
                      or (not libdevice and (Path(cuda_home) / LIBDEVICE).is_file())):
        under_home = cuda_home
    return XlaTools(ptxas=ptxas, ptxas_version=ptxas_version(ptxas) if ptxas else "",
                    libdevice=libdevice, under_cuda_home=under_home,
                    searched=tuple(str(r) for r in roots))


def xla_tools_here(cuda_version: str = "") -> XlaTools:
    """`find_xla_tools` for the installed TensorFlow (located, not imported)."""
    return find_xla_tools(package_dir("tensorflow"), cuda_version)
