"""`fastfood doctor`: what this machine offers fastfood, what `auto` would pick, what is broken.

Users of TensorFlow + CUDA + DALI lose days to setup: a DALI plugin compiled against another
TensorFlow, a GPU that nvidia-smi lists but TensorFlow cannot use, XLA without ptxas, a GPU
whose kernels TensorFlow ships only as PTX. Detection (`collect`) is kept apart from
judgement (`diagnose`, a pure function of the facts), so every rule is tested on made-up
machines. The `auto` picks come from the functions training itself calls
(`precision.choose_precision`, `precision.choose_xla`, `loaders.resolve_kind`), so the
report cannot drift from what a run does.

Where XLA looks for ptxas and libdevice (as XLA's ``FindCudaExecutable`` and
``CandidateCudaRoots`` do): ``--xla_gpu_cuda_data_dir`` in ``$XLA_FLAGS``, then (ptxas only)
``$PATH``, then ``/usr/local/cuda``, ``/opt/cuda``, the pip wheel ``nvidia-cuda-nvcc-cu12``
(``site-packages/nvidia/cuda_nvcc``, ``nvidia/cu13`` for CUDA 13 builds), TensorFlow's own
folder and a conda prefix. ``$CUDA_HOME`` is not among them in every XLA version, so a tool
found only there is reported with the flag that makes XLA use it.

How the DALI TF plugin records the TensorFlow it was built against: only in its library's
file name. The plugin's installer (``dali_tf_plugin_install_tool.py``) either copies a
prebuilt ``libdali_tf_<major>_<minor>.so`` for the installed TensorFlow or compiles
``libdali_tf_current.so`` against the TensorFlow installed at that moment; the loader tries
``current`` first. So a prebuilt's name gives its TensorFlow, and a ``current`` library is
stale when TensorFlow was installed after it was compiled (file times). Whether it imports
is the final word.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PTXAS = Path("bin/ptxas")
LIBDEVICE = Path("nvvm/libdevice/libdevice.10.bc")
SYSTEM_CUDA_ROOTS = (Path("/usr/local/cuda"), Path("/opt/cuda"))
# Oldest Linux driver each CUDA major runs on (CUDA minor-version compatibility).
MIN_DRIVER = {11: (450, 80), 12: (525, 60), 13: (580, 65)}
# TensorFlow's start-up lines worth keeping: why it does or does not use a GPU.
_TF_LOG_KEEP = re.compile(r"dlopen|cuda|cudnn|gpu|driver|cuinit|compute capability", re.I)
_TF_LOG_MAX = 12


# ---- facts ------------------------------------------------------------------------------

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
    xla: XlaTools = XlaTools()
    cpu_model: str = ""
    cpu_bf16: bool = False
    auto_loader: str = ""  # loaders.resolve_kind("auto")
    cuda_wheels: Mapping[str, str] = field(default_factory=dict)


# ---- judgement --------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """Something wrong ('problem': exit code 1) or worth knowing ('warning'), with its fix."""

    level: str  # problem | warning
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.level.upper()}: {self.message}. Fix: {self.fix}"


@dataclass(frozen=True)
class Pick:
    """What an `auto` setting resolves to on this machine, and why."""

    value: str
    reason: str


@dataclass(frozen=True)
class Diagnosis:
    findings: tuple[Finding, ...]
    auto: Mapping[str, Pick]

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "problem")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warning")


def _arch(name: str) -> tuple[int, int]:
    """'sm_89' -> (8, 9); 'compute_90' -> (9, 0); 'sm_100a' -> (10, 0)."""
    digits = re.sub(r"\D", "", name.split("_", 1)[-1])
    return int(digits[:-1] or 0), int(digits[-1:] or 0)


def kernel_support(capability: tuple[int, int], shipped: Sequence[str]) -> str:
    """How TensorFlow's own kernels run on a GPU of `capability`, given build_info's list.

    'native': machine code (sm_XY) for this major version and an equal or lower minor, which
    the GPU runs as is. 'ptx': only PTX (compute_XY) of an equal or older architecture, which
    the driver JIT-compiles at start-up (slow the first time). 'none': neither.
    """
    major, minor = capability
    archs = [(n.split("_", 1)[0], _arch(n)) for n in shipped]
    if any(kind == "sm" and m == major and n <= minor for kind, (m, n) in archs):
        return "native"
    if any(kind == "compute" and (m, n) <= (major, minor) for kind, (m, n) in archs):
        return "ptx"
    return "none"


def _major_minor(version: str) -> tuple[int, int]:
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def nvcc_wheel(cuda_version: str) -> str:
    """The pip package that brings ptxas and libdevice for TensorFlow's CUDA version."""
    major = _major_minor(cuda_version)[0]
    return "nvidia-cuda-nvcc-cu12" if major in (0, 12) else f"'nvidia-cuda-nvcc=={major}.*'"


def _tf_install(facts: Facts) -> str:
    """The pip command for TensorFlow: with its CUDA libraries where nvidia-smi lists a GPU."""
    spec = facts.tensorflow_required or (f"=={facts.tensorflow}" if facts.tensorflow else "")
    extra = "[and-cuda]" if facts.smi_gpus else ""
    return f"pip install 'tensorflow{extra}{spec}'"


def _gpu_findings(facts: Facts) -> list[Finding]:
    out: list[Finding] = []
    build = facts.build
    if facts.smi_gpus and not facts.gpus:
        names = ", ".join(sorted({g.name for g in facts.smi_gpus}))
        caps = [g.capability for g in facts.smi_gpus if g.capability]
        why = next((ln for ln in facts.tf_log if "dlopen" in ln.lower()), "")
        visible = facts.cuda_visible_devices
        if visible is not None and visible.strip() in ("", "-1"):
            out.append(Finding(
                "warning", f"nvidia-smi lists {names} but CUDA_VISIBLE_DEVICES={visible!r} "
                "hides it from TensorFlow", "unset CUDA_VISIBLE_DEVICES to train on the GPU"))
        elif caps and build.cuda_compute_capabilities and all(
                kernel_support(c, build.cuda_compute_capabilities) == "none" for c in caps):
            oldest = min(_arch(a) for a in build.cuda_compute_capabilities)
            out.append(Finding(
                "problem", f"nvidia-smi lists {names} but TensorFlow ignores it: compute "
                f"capability {'/'.join(f'{a}.{b}' for a, b in caps)} is older than this "
                f"TensorFlow supports ({', '.join(build.cuda_compute_capabilities)})",
                f"use a GPU of compute capability >= {oldest[0]}.{oldest[1]}, or train on the CPU"))
        elif facts.tensorflow and not build.is_cuda_build:
            out.append(Finding(
                "problem", f"nvidia-smi lists {names} but this TensorFlow is built without CUDA",
                _tf_install(facts)))
        elif facts.tensorflow:
            out.append(Finding(
                "problem", f"nvidia-smi lists {names} but TensorFlow sees no GPU"
                + (f" ({why})" if why else " (its CUDA libraries did not load)"),
                f"{_tf_install(facts)} (it brings the CUDA and cuDNN libraries TensorFlow loads)"))
    cuda_major = _major_minor(build.cuda_version)[0]
    floor = MIN_DRIVER.get(cuda_major)
    drivers = {g.driver for g in (*facts.gpus, *facts.smi_gpus) if g.driver}
    for driver in sorted(drivers):
        if floor and _major_minor(driver) < floor:
            out.append(Finding(
                "problem", f"NVIDIA driver {driver} is older than CUDA {build.cuda_version} "
                f"(TensorFlow's) needs", f"install NVIDIA driver {floor[0]}.{floor[1]} or newer"))
    for gpu in facts.gpus:
        if gpu.capability is None or not build.cuda_compute_capabilities:
            continue
        cap = f"{gpu.capability[0]}.{gpu.capability[1]}"
        shipped = ", ".join(build.cuda_compute_capabilities)
        support = kernel_support(gpu.capability, build.cuda_compute_capabilities)
        if support == "ptx":
            sass = [a for a in build.cuda_compute_capabilities if a.startswith("sm_")]
            ptx = [a for a in build.cuda_compute_capabilities if a.startswith("compute_")]
            out.append(Finding(
                "warning", f"{gpu.name} (compute capability {cap}): this TensorFlow ships "
                f"machine code for {', '.join(sass) or 'no GPU'} and PTX for {', '.join(ptx)}, "
                "so CUDA JIT-compiles its kernels from PTX at the first start (minutes)",
                "export CUDA_CACHE_MAXSIZE=4294967296 so the compiled kernels are kept between runs"))
        elif support == "none":
            out.append(Finding(
                "problem", f"{gpu.name} (compute capability {cap}): this TensorFlow has no "
                f"kernels for it (it ships {shipped})",
                "use a supported GPU, or train on the CPU (CUDA_VISIBLE_DEVICES='')"))
    return out


def _xla_findings(facts: Facts, xla_on: bool) -> list[Finding]:
    if not (facts.gpus and xla_on):
        return []  # XLA on the CPU needs neither ptxas nor libdevice
    xla, out = facts.xla, []
    wheel = nvcc_wheel(facts.build.cuda_version)
    missing = [name for name, path in (("ptxas", xla.ptxas), ("libdevice", xla.libdevice))
               if not path]
    if missing and xla.under_cuda_home:
        out.append(Finding(
            "problem", f"XLA (on by default on GPUs) would not find {' and '.join(missing)}, "
            f"which are under $CUDA_HOME ({xla.under_cuda_home}), a folder XLA does not search",
            f"export XLA_FLAGS=--xla_gpu_cuda_data_dir={xla.under_cuda_home}"))
    elif missing:
        out.append(Finding(
            "problem", f"XLA (on by default on GPUs) needs {' and '.join(missing)} and none "
            "was found (searched $XLA_FLAGS' --xla_gpu_cuda_data_dir, $PATH, /usr/local/cuda, "
            "the nvidia-cuda-nvcc wheel)",
            f"pip install {wheel} (or train with --no-xla)"))
    if xla.ptxas and xla.ptxas_version and facts.build.cuda_version:
        have, want = _major_minor(xla.ptxas_version), _major_minor(facts.build.cuda_version)
        if have < want:
            out.append(Finding(
                "warning", f"XLA would use ptxas {xla.ptxas_version} ({xla.ptxas}), older than "
                f"the CUDA {facts.build.cuda_version} TensorFlow was built with",
                f"pip install {wheel}, or put a newer ptxas first on PATH"))
        elif have[0] != want[0]:
            out.append(Finding(
                "warning", f"XLA would use ptxas {xla.ptxas_version} ({xla.ptxas}), from "
                f"another CUDA major version than TensorFlow's {facts.build.cuda_version}",
                f"pip install {wheel} and put its bin folder first on PATH"))
    return out


def _dali_findings(facts: Facts) -> list[Finding]:
    plugin, out = facts.plugin, []
    dali_version = facts.dali.split(" ", 1)[0]
    if not facts.dali:
        out.append(Finding(
            "warning", "DALI is not installed, so images are decoded by tf.data",
            "rerun scripts/setup.sh (pip install nvidia-dali-cuda120 and its TensorFlow plugin)"))
        return out
    if not plugin.distribution:
        out.append(Finding(
            "warning", "DALI's TensorFlow plugin is not installed, so --loader auto uses tf.data",
            "pip install --no-build-isolation "
            f"nvidia-dali-tf-plugin-cuda120=={dali_version or '<DALI version>'}"))
        return out
    rebuild = (f"pip install --force-reinstall --no-deps --no-build-isolation --no-cache-dir "
               f"{plugin.distribution}=={plugin.version}")
    tf_mm = ".".join(map(str, _major_minor(facts.tensorflow))) if facts.tensorflow else ""
    if not facts.tensorflow:
        pass  # the plugin cannot load without TensorFlow; that problem is reported already
    elif plugin.error:
        out.append(Finding(
            "problem", f"DALI's TensorFlow plugin {plugin.version} does not import "
            f"({plugin.error}), so --loader auto falls back to tf.data",
            f"rebuild it against this TensorFlow: {rebuild}"))
    elif plugin.built_for not in ("", "install") and tf_mm and plugin.built_for != tf_mm:
        out.append(Finding(
            "warning", f"DALI's TensorFlow plugin is a prebuilt library for TensorFlow "
            f"{plugin.built_for}, but TensorFlow {facts.tensorflow} is installed",
            f"rebuild it against this TensorFlow: {rebuild}"))
    elif plugin.compiled_before_tf:
        out.append(Finding(
            "warning", "TensorFlow was installed after DALI's TensorFlow plugin was compiled "
            "against the one before it", f"rebuild it against this TensorFlow: {rebuild}"))
    if dali_version and plugin.version and plugin.version != dali_version:
        out.append(Finding(
            "problem", f"DALI {dali_version} and its TensorFlow plugin {plugin.version} differ",
            f"pip install --no-build-isolation {plugin.distribution}=={dali_version}"))
    if not facts.gpus and not facts.native_resize_built:
        out.append(Finding(
            "warning", "fastfood's native DALI resize is not built: the DALI CPU pipeline "
            "compiles it on first use (about 10 s), or falls back to the slower fn.resize",
            "python -m fastfood.loaders.native"))
    elif not facts.gpus and facts.native_resize not in ("", "native"):
        out.append(Finding(
            "warning", f"the DALI CPU pipeline resizes with {facts.native_resize}",
            "install g++ and run python -m fastfood.loaders.native"))
    return out


def diagnose(facts: Facts) -> Diagnosis:
    """The problems and warnings in `facts`, each with its fix, and what `auto` would pick."""
    from fastfood.train import precision

    hw = precision.Hardware(
        tuple(g.capability for g in facts.gpus if g.capability),
        tuple(g.name for g in facts.gpus if g.capability), facts.cpu_bf16)
    prec = precision.choose_precision("auto", hw)
    xla_on, xla_reason = precision.choose_xla("auto", hw)
    findings: list[Finding] = []
    if not facts.tensorflow:
        findings.append(Finding(
            "problem", f"TensorFlow does not import ({facts.tensorflow_error or 'not installed'})",
            "rerun scripts/setup.sh, or " + _tf_install(facts)))
    elif facts.tensorflow_required and not _satisfies(facts.tensorflow, facts.tensorflow_required):
        findings.append(Finding(
            "warning", f"TensorFlow {facts.tensorflow} is installed; fastfood asks for "
            f"tensorflow{facts.tensorflow_required} (DALI's plugin and the tests use that one)",
            f"pip install 'tensorflow{facts.tensorflow_required}'"))
    if facts.keras and _major_minor(facts.keras)[0] < 3:
        findings.append(Finding("problem", f"Keras {facts.keras} is installed; fastfood needs "
                                "Keras 3", "pip install 'keras>=3'"))
    findings += _gpu_findings(facts)
    findings += _xla_findings(facts, xla_on)
    findings += _dali_findings(facts)

    if facts.auto_loader == "dali":
        where = "decodes on the GPU" if facts.gpus else "DALI's CPU backend (no GPU)"
        loader = Pick("dali", f"DALI's TensorFlow plugin imports; {where}")
    else:
        why = facts.plugin.error or ("the plugin is not installed" if facts.dali
                                     else "DALI is not installed")
        loader = Pick(facts.auto_loader or "tfdata",
                      f"DALI's TensorFlow plugin is unavailable ({why})")
    auto = {"loader": loader,
            "precision": Pick(f"{prec.short} ({prec.policy})", prec.reason),
            "xla": Pick("on" if xla_on else "off", xla_reason)}
    return Diagnosis(tuple(findings), auto)


def _satisfies(version: str, spec: str) -> bool:
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # packaging comes with pip and TensorFlow; without it, do not judge
        return True
    return version in SpecifierSet(spec)


# ---- detection --------------------------------------------------------------------------

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


def _package_dir(name: str) -> Path | None:
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
        wheel = "cu13" if _major_minor(cuda_version)[0] == 13 else "cuda_nvcc"
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
    return find_xla_tools(_package_dir("tensorflow"), cuda_version)


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
        cap = _major_minor(parts[2])
    return Gpu(name=parts[0], capability=cap, driver=parts[1] if len(parts) > 1 else "")


def _plugin(tf_version: str, tf_imported: bool) -> DaliPlugin:
    name, version = _dist("nvidia-dali-tf-plugin")
    if not name:
        return DaliPlugin()
    folder = _package_dir("nvidia.dali_tf_plugin")
    libs = sorted(p.name for p in folder.glob("libdali_tf*.so")) if folder else []
    tf_tag = "_".join(map(str, _major_minor(tf_version))) if tf_version else ""
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
            error = _first_line(err)
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


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", "") or err).strip()
    return (text.splitlines() or [type(err).__name__])[0][:300]


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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep warnings such as failed dlopens
    try:
        import tensorflow as tf
    except Exception as err:  # noqa: BLE001 - ImportError, or a broken CUDA install
        return {"tensorflow_error": _first_line(err)}
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
    return {"tensorflow": tf.__version__, "build": build, "gpus": tuple(gpus)}


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

    from fastfood.benchmark.machine import cpu_info, versions
    from fastfood.train.precision import cpu_has_bf16

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
        xla=xla_tools_here(build.cuda_version),
        cpu_model=cpu_info()["model"],
        cpu_bf16=cpu_has_bf16(),
        auto_loader=auto_loader,
        cuda_wheels=dict(sorted(cuda_wheels.items())),
    )


# ---- output -----------------------------------------------------------------------------

def to_json(facts: Facts, diagnosis: Diagnosis) -> dict[str, Any]:
    """One JSON-ready dict: the facts, the auto picks, the findings, and `ok`."""
    return {
        "ok": not diagnosis.problems,
        "problems": [dataclasses.asdict(f) for f in diagnosis.problems],
        "warnings": [dataclasses.asdict(f) for f in diagnosis.warnings],
        "auto": {k: dataclasses.asdict(v) for k, v in diagnosis.auto.items()},
        "facts": dataclasses.asdict(facts),
    }


def _gpu_text(g: Gpu) -> str:
    cap = f", compute capability {g.capability[0]}.{g.capability[1]}" if g.capability else ""
    return f"{g.name}{cap}" + (f", driver {g.driver}" if g.driver else "")


def render(facts: Facts, diagnosis: Diagnosis) -> str:
    """The report for people: facts, auto picks, then one line per finding."""
    b, p, x = facts.build, facts.plugin, facts.xla
    if facts.tensorflow:
        tf = facts.tensorflow + (f" (CUDA {b.cuda_version}, cuDNN {b.cudnn_version}; kernels for "
                                 f"{', '.join(b.cuda_compute_capabilities)})"
                                 if b.is_cuda_build else " (no CUDA)")
    else:
        tf = f"does not import: {facts.tensorflow_error}"
    if not p.distribution:
        plugin = "not installed"
    else:
        built = ("compiled at install against the TensorFlow installed then"
                 if p.built_for == "install" else f"prebuilt for TensorFlow {p.built_for}"
                 if p.built_for else "no library")
        plugin = (f"{p.version} ({p.distribution}): {', '.join(p.libraries) or '-'}, {built}; "
                  + (f"does not import: {p.error}" if p.error else "imports"))
    if facts.gpus:
        gpus = "; ".join(_gpu_text(g) for g in facts.gpus)
    else:
        gpus = "none seen by TensorFlow" + (
            f"; nvidia-smi lists {'; '.join(_gpu_text(g) for g in facts.smi_gpus)}"
            if facts.smi_gpus else "; nvidia-smi " + ("lists none" if facts.nvidia_smi
                                                     else "not found"))
    ptxas = f"{x.ptxas} ({x.ptxas_version or 'version unknown'})" if x.ptxas else "not found"
    rows = [
        ("python", facts.python),
        ("tensorflow", tf),
        ("keras", facts.keras or "not installed"),
        ("dali", facts.dali or "not installed"),
        ("dali tf plugin", plugin),
        ("native resize", facts.native_resize or "-"),
        ("gpus", gpus),
        ("xla tools", f"ptxas {ptxas}; libdevice {x.libdevice or 'not found'}"),
        ("cpu", f"{facts.cpu_model}; native bfloat16 {'yes' if facts.cpu_bf16 else 'no'}"),
    ]
    lines = ["fastfood doctor"] + [f"  {k:<15} {v}" for k, v in rows]
    lines.append("auto picks")
    lines += [f"  {k:<15} {v.value}: {v.reason}" for k, v in diagnosis.auto.items()]
    if facts.smi_gpus and not facts.gpus and facts.tf_log:
        lines.append("tensorflow's gpu log")
        lines += [f"  {ln}" for ln in facts.tf_log]
    lines += [f.line() for f in (*diagnosis.problems, *diagnosis.warnings)]
    n, w = len(diagnosis.problems), len(diagnosis.warnings)
    lines.append(f"{n} problem{'s' * (n != 1)}, {w} warning{'s' * (w != 1)}")
    return "\n".join(lines)
