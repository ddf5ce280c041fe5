"""The doctor's report: for people (`render`) and for scripts (`to_json`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastfood.doctor.facts import Facts, Gpu
from fastfood.doctor.rules import Diagnosis


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
        gpus = "; ".join(_gpu_text(g) for g in facts.gpus) + "; memory growth " + (
            f"off ({facts.memory_growth})" if facts.memory_growth else "on")
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
