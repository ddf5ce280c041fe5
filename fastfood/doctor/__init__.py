"""`fastfood doctor`: what this machine offers fastfood, what `auto` would pick, what is broken.

Users of TensorFlow + CUDA + DALI lose days to setup: a DALI plugin compiled against another
TensorFlow, a GPU that nvidia-smi lists but TensorFlow cannot use, XLA without ptxas, a GPU
whose kernels TensorFlow ships only as PTX. Detection (`detect.collect`) is kept apart from
judgement (`rules.diagnose`, a pure function of `facts.Facts`), so every rule is tested on
made-up machines:

    facts = collect(); diagnosis = diagnose(facts); print(render(facts, diagnosis))

Nothing heavy is imported with this package; `collect` imports TensorFlow and DALI.
"""

from fastfood.doctor.detect import collect
from fastfood.doctor.facts import DaliPlugin, Facts, Gpu, TfBuild, XlaTools, major_minor
from fastfood.doctor.report import render, to_json
from fastfood.doctor.rules import Diagnosis, Finding, Pick, diagnose, kernel_support, nvcc_wheel
from fastfood.doctor.xla_tools import find_xla_tools, ptxas_version, xla_roots, xla_tools_here

__all__ = [
    "DaliPlugin", "Diagnosis", "Facts", "Finding", "Gpu", "Pick", "TfBuild", "XlaTools",
    "collect", "diagnose", "find_xla_tools", "kernel_support", "major_minor", "nvcc_wheel",
    "ptxas_version", "render", "to_json", "xla_roots", "xla_tools_here",
]
