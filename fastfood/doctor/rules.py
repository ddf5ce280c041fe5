"""`diagnose`: the problems and warnings in a machine's facts, each with the line that fixes it.

A pure function of `Facts`, so every rule is tested on made-up machines. The `auto` picks come
from the functions training itself calls (`precision.choose_precision`, `precision.choose_xla`;
the loader is `loaders.resolve_kind("auto")`, recorded by detection), so the report cannot
drift from what a run does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fastfood.doctor.facts import Facts, major_minor

# Oldest Linux driver each CUDA major runs on (CUDA minor-version compatibility).
MIN_DRIVER = {11: (450, 80), 12: (525, 60), 13: (580, 65)}


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


def nvcc_wheel(cuda_version: str) -> str:
    """The pip package that brings ptxas and libdevice for TensorFlow's CUDA version."""
    major = major_minor(cuda_version)[0]
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
    if facts.gpus and facts.memory_growth:
        out.append(Finding(
            "warning", f"GPU memory growth could not be set ({facts.memory_growth}), so "
            "TensorFlow reserves almost all of each GPU's memory at its first op and DALI's "
            "decoder can fail to allocate (the process aborts with no report)",
            "export TF_FORCE_GPU_ALLOW_GROWTH=true (fastfood's commands set it unless it is "
            "set otherwise)"))
    cuda_major = major_minor(build.cuda_version)[0]
    floor = MIN_DRIVER.get(cuda_major)
    drivers = {g.driver for g in (*facts.gpus, *facts.smi_gpus) if g.driver}
    for driver in sorted(drivers):
        if floor and major_minor(driver) < floor:
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
                "export CUDA_CACHE_MAXSIZE=4294967296 so the compiled kernels are kept "
                "between runs"))
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
            f"which are under $CUDA_HOME ({xla.under_cuda_home}), a folder not every XLA searches",
            f"export XLA_FLAGS=--xla_gpu_cuda_data_dir={xla.under_cuda_home}"))
    elif missing:
        out.append(Finding(
            "problem", f"XLA (on by default on GPUs) needs {' and '.join(missing)} and none "
            "was found (searched $XLA_FLAGS' --xla_gpu_cuda_data_dir, $PATH, /usr/local/cuda, "
            "the nvidia-cuda-nvcc wheel)",
            f"pip install {wheel} (or train with --no-xla)"))
    if xla.ptxas and xla.ptxas_version and facts.build.cuda_version:
        have, want = major_minor(xla.ptxas_version), major_minor(facts.build.cuda_version)
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
    tf_mm = ".".join(map(str, major_minor(facts.tensorflow))) if facts.tensorflow else ""
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
    from fastfood import machine
    from fastfood.train import precision

    hw = machine.Hardware(
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
    if facts.keras and major_minor(facts.keras)[0] < 3:
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
