"""`fastfood doctor`: the judgement on made-up machines, XLA's tool search on a made-up
folder tree, and one real run here.

The rules are tested through `diagnose(Facts(...))`, so a GPU machine, a stale DALI plugin
or a CPU without bfloat16 need not exist to be checked.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fastfood import doctor
from fastfood.doctor import DaliPlugin, Facts, Gpu, TfBuild, XlaTools, diagnose
from support.cli import REPO, run_subprocess

TF221 = TfBuild(is_cuda_build=True, cuda_version="12.5.1", cudnn_version="9",
                cuda_compute_capabilities=("sm_60", "sm_70", "sm_80", "sm_89", "compute_90"))
PLUGIN = DaliPlugin(distribution="nvidia-dali-tf-plugin-cuda120", version="2.4.0",
                    libraries=("libdali_tf_current.so",), built_for="install")
TOOLS = XlaTools(ptxas="/venv/nvidia/cuda_nvcc/bin/ptxas", ptxas_version="12.5.82",
                 libdevice="/venv/nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc")
# A healthy CPU machine: nothing to report.
CPU_BOX = Facts(python="3.11.7", tensorflow="2.21.0", tensorflow_required="==2.21.0",
                keras="3.15.1", dali="2.4.0 (nvidia-dali-cuda120)", plugin=PLUGIN,
                native_resize="native", native_resize_built=True, build=TF221,
                cpu_model="test cpu", cpu_bf16=False, auto_loader="dali")
H100 = Gpu("NVIDIA H100 80GB HBM3", (9, 0), "580.159.04")
A100 = Gpu("NVIDIA A100-SXM4-80GB", (8, 0), "580.159.04")
GPU_BOX = dataclasses.replace(CPU_BOX, gpus=(A100,), smi_gpus=(A100,),
                              nvidia_smi="/usr/bin/nvidia-smi", xla=TOOLS)


def lines(facts: Facts) -> list[str]:
    return [f.line() for f in diagnose(facts).findings]


def only(facts: Facts, level: str) -> doctor.Finding:
    found = [f for f in diagnose(facts).findings if f.level == level]
    assert len(found) == 1, lines(facts)
    return found[0]


def test_healthy_machines_have_nothing_to_report():
    assert lines(CPU_BOX) == []
    assert lines(GPU_BOX) == []


def test_gpu_without_ptxas_is_a_problem_whose_fix_is_the_nvcc_wheel():
    facts = dataclasses.replace(GPU_BOX, gpus=(H100,), xla=XlaTools(libdevice=TOOLS.libdevice))
    problem = only(facts, "problem")
    assert "ptxas" in problem.message and "libdevice" not in problem.message
    assert problem.fix.startswith("pip install nvidia-cuda-nvcc-cu12")
    assert "Fix: pip install nvidia-cuda-nvcc-cu12" in problem.line()
    assert "\n" not in problem.line()


def test_missing_ptxas_does_not_matter_without_a_gpu():
    assert lines(dataclasses.replace(CPU_BOX, xla=XlaTools())) == []


def test_tools_only_under_cuda_home_get_the_xla_flag():
    facts = dataclasses.replace(GPU_BOX, xla=XlaTools(under_cuda_home="/opt/cuda-12.5"))
    assert only(facts, "problem").fix == "export XLA_FLAGS=--xla_gpu_cuda_data_dir=/opt/cuda-12.5"


def test_an_older_ptxas_than_tensorflows_cuda_is_a_warning():
    facts = dataclasses.replace(GPU_BOX, xla=dataclasses.replace(TOOLS, ptxas_version="12.2.140"))
    assert "older than the CUDA 12.5.1" in only(facts, "warning").message


def test_compute_capability_9_runs_tensorflows_kernels_from_ptx():
    facts = dataclasses.replace(GPU_BOX, gpus=(H100,), smi_gpus=(H100,))
    warning = only(facts, "warning")
    assert "compute capability 9.0" in warning.message and "PTX" in warning.message
    assert "CUDA_CACHE_MAXSIZE" in warning.fix
    assert not diagnose(facts).problems


@pytest.mark.parametrize("cap, expected", [
    ((8, 0), "native"), ((8, 6), "native"), ((8, 9), "native"), ((7, 5), "native"),
    ((6, 1), "native"), ((9, 0), "ptx"), ((10, 0), "ptx"), ((12, 0), "ptx"), ((5, 2), "none"),
])
def test_kernel_support_follows_cuda_binary_compatibility(cap, expected):
    assert doctor.kernel_support(cap, TF221.cuda_compute_capabilities) == expected


def test_a_gpu_tensorflow_has_no_kernels_for_is_a_problem():
    old = Gpu("Tesla M60", (5, 2), "580.159.04")
    assert "no kernels" in only(dataclasses.replace(GPU_BOX, gpus=(old,)), "problem").message
    # TensorFlow does not even list it; nvidia-smi does.
    hidden = dataclasses.replace(GPU_BOX, gpus=(), smi_gpus=(old,))
    assert "older than this TensorFlow supports" in only(hidden, "problem").message


def test_a_gpu_that_only_nvidia_smi_sees_names_the_failed_library():
    facts = dataclasses.replace(
        GPU_BOX, gpus=(),
        tf_log=("Cannot dlopen some GPU libraries. Skipping registering GPU devices...",))
    problem = only(facts, "problem")
    assert "TensorFlow sees no GPU" in problem.message and "dlopen" in problem.message
    assert "tensorflow[and-cuda]==2.21.0" in problem.fix
    cpu_build = dataclasses.replace(facts, build=dataclasses.replace(TF221, is_cuda_build=False))
    assert "built without CUDA" in only(cpu_build, "problem").message


def test_gpus_hidden_on_purpose_are_only_a_warning():
    facts = dataclasses.replace(GPU_BOX, gpus=(), cuda_visible_devices="")
    assert "CUDA_VISIBLE_DEVICES" in only(facts, "warning").message
    assert not diagnose(facts).problems


def test_an_old_driver_is_a_problem():
    old = dataclasses.replace(A100, driver="470.82.01")
    problem = only(dataclasses.replace(GPU_BOX, gpus=(old,), smi_gpus=(old,)), "problem")
    assert "470.82.01" in problem.message and "525.60" in problem.fix


def test_a_plugin_that_does_not_import_is_a_problem_with_the_rebuild_command():
    broken = dataclasses.replace(PLUGIN, error="undefined symbol: _ZN10tensorflow8OpKernel")
    problem = only(dataclasses.replace(CPU_BOX, plugin=broken, auto_loader="tfdata"), "problem")
    assert "does not import" in problem.message and "undefined symbol" in problem.message
    assert "--force-reinstall" in problem.fix
    assert "nvidia-dali-tf-plugin-cuda120==2.4.0" in problem.fix
    assert diagnose(dataclasses.replace(CPU_BOX, plugin=broken,
                                        auto_loader="tfdata")).auto["loader"].value == "tfdata"


def test_a_plugin_built_against_another_tensorflow_is_reported():
    prebuilt = dataclasses.replace(PLUGIN, libraries=("libdali_tf_2_19.so",), built_for="2.19")
    warning = only(dataclasses.replace(CPU_BOX, plugin=prebuilt), "warning")
    assert "TensorFlow 2.19" in warning.message and "2.21.0" in warning.message
    stale = dataclasses.replace(PLUGIN, compiled_before_tf=True)
    assert "installed after" in only(dataclasses.replace(CPU_BOX, plugin=stale), "warning").message
    other = dataclasses.replace(PLUGIN, version="2.3.0")
    assert "differ" in only(dataclasses.replace(CPU_BOX, plugin=other), "problem").message


def test_missing_tensorflow_or_an_unexpected_version():
    gone = dataclasses.replace(CPU_BOX, tensorflow="",
                               tensorflow_error="No module named 'tensorflow'")
    assert "No module named" in only(gone, "problem").message
    other = dataclasses.replace(CPU_BOX, tensorflow="2.20.0")
    assert "tensorflow==2.21.0" in only(other, "warning").fix


def test_native_resize_not_built_matters_only_on_the_cpu_backend():
    unbuilt = dataclasses.replace(CPU_BOX, native_resize="not built", native_resize_built=False)
    assert only(unbuilt, "warning").fix == "python -m fastfood.loaders.native"
    assert lines(dataclasses.replace(GPU_BOX, native_resize="not built",
                                     native_resize_built=False)) == []


def test_auto_picks_come_from_the_training_code():
    auto = diagnose(CPU_BOX).auto
    assert auto["precision"].value.startswith("fp32")
    assert "no native bfloat16" in auto["precision"].reason
    assert auto["xla"].value == "off"
    assert "CPU backend" in auto["loader"].reason
    bf16 = diagnose(dataclasses.replace(CPU_BOX, cpu_bf16=True)).auto["precision"]
    assert bf16.value.startswith("bf16")
    gpu = diagnose(GPU_BOX).auto
    assert gpu["precision"].value == "bf16 (mixed_bfloat16)" and "8.0" in gpu["precision"].reason
    volta = dataclasses.replace(GPU_BOX, gpus=(Gpu("Tesla V100-SXM2-32GB", (7, 0)),))
    assert diagnose(volta).auto["precision"].value == "fp16 (mixed_float16)"
    assert gpu["xla"].value == "on" and "on the GPU" in gpu["loader"].reason


# ---- XLA's tool search ---------------------------------------------------------------

def fake_ptxas(path: Path, release: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"Cuda compilation tools, release {release[:4]}, V{release}"
    path.write_text(f"#!/bin/sh\necho '{line}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def fake_libdevice(root: Path) -> Path:
    path = root / "nvvm/libdevice/libdevice.10.bc"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"BC")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "lib/python3.11/site-packages/tensorflow").mkdir(parents=True)
    return tmp_path / "lib/python3.11/site-packages"


def test_xla_tools_in_the_nvcc_wheel_layout(site: Path):
    wheel = site / "nvidia/cuda_nvcc"
    ptxas = fake_ptxas(wheel / "bin/ptxas", "12.5.82")
    libdevice = fake_libdevice(wheel)
    tools = doctor.find_xla_tools(site / "tensorflow", "12.5.1", env={"PATH": ""}, system_roots=())
    assert (tools.ptxas, tools.libdevice) == (str(ptxas), str(libdevice))
    assert tools.ptxas_version == "12.5.82"


def test_ptxas_on_path_wins_and_nothing_found_says_so(site: Path, tmp_path: Path):
    fake_libdevice(site / "nvidia/cuda_nvcc")
    fake_ptxas(site / "nvidia/cuda_nvcc/bin/ptxas", "12.5.82")
    on_path = fake_ptxas(tmp_path / "bin/ptxas", "13.0.88")
    tools = doctor.find_xla_tools(site / "tensorflow", "12.5.1",
                                  env={"PATH": str(tmp_path / "bin")}, system_roots=())
    assert tools.ptxas == str(on_path) and tools.ptxas_version == "13.0.88"
    empty = doctor.find_xla_tools(tmp_path / "nowhere", "12.5.1", env={"PATH": ""},
                                  system_roots=())
    assert (empty.ptxas, empty.libdevice) == ("", "")


def test_xla_flags_data_dir_and_cuda_home(tmp_path: Path, site: Path):
    toolkit = tmp_path / "cuda-12.5"
    ptxas = fake_ptxas(toolkit / "bin/ptxas", "12.5.82")
    fake_libdevice(toolkit)
    flagged = doctor.find_xla_tools(
        site / "tensorflow", "12.5.1", system_roots=(),
        env={"PATH": "", "XLA_FLAGS": f"--xla_gpu_cuda_data_dir={toolkit} --xla_dump_to=/tmp"})
    assert flagged.ptxas == str(ptxas) and flagged.libdevice.startswith(str(toolkit))
    home = doctor.find_xla_tools(site / "tensorflow", "12.5.1", system_roots=(),
                                 env={"PATH": "", "CUDA_HOME": str(toolkit)})
    assert (home.ptxas, home.libdevice, home.under_cuda_home) == ("", "", str(toolkit))


# ---- the real command ------------------------------------------------------------------

def test_fastfood_doctor_json_here(tmp_path: Path):
    from importlib import metadata

    result = run_subprocess(["doctor", "--json"], cwd=tmp_path)
    report = json.loads(result.stdout)
    facts = report["facts"]
    assert facts["tensorflow"] == metadata.version("tensorflow")
    assert facts["gpus"] == []  # CUDA_VISIBLE_DEVICES='' in the test environment
    assert facts["build"]["cuda_compute_capabilities"]
    assert report["auto"]["xla"]["value"] == "off"
    assert report["ok"] == (not report["problems"])
    assert result.returncode == (0 if report["ok"] else 1), result.stderr
    for finding in report["problems"] + report["warnings"]:
        assert finding["fix"], finding


def test_the_command_imports_tensorflow_only_when_it_runs():
    code = ("import sys, fastfood.cli, fastfood.cli.doctor, fastfood.doctor; "
            ""
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('tensorflow', 'keras', 'nvidia')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fastfood_doctor_without_tensorflow(tmp_path: Path):
    blocker = tmp_path / "blocked" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no tensorflow in this test')\n")
    result = run_subprocess(["doctor"], cwd=tmp_path,
                            PYTHONPATH=f"{blocker.parent}:{REPO}")
    assert result.returncode == 1, result.stderr
    assert "PROBLEM: TensorFlow does not import (no tensorflow in this test)" in result.stdout
    assert "Fix: rerun scripts/setup.sh" in result.stdout
    assert "1 problem," in result.stdout  # nothing else blamed on the missing TensorFlow


def test_nvidia_smi_is_read_as_a_real_h200_answers(tmp_path: Path):
    # The exact line `nvidia-smi --query-gpu=name,driver_version,compute_cap
    # --format=csv,noheader` printed on an H200 machine.
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA H200, 580.159.04, 9.0'\n")
    fake.chmod(0o755)
    result = run_subprocess(["doctor", "--json"], cwd=tmp_path,
                            PATH=f"{fake.parent}:{os.environ['PATH']}")
    report = json.loads(result.stdout)
    assert report["facts"]["smi_gpus"] == [
        {"name": "NVIDIA H200", "capability": [9, 0], "driver": "580.159.04"}]
    # The test environment hides GPUs from TensorFlow on purpose: a warning, not a problem.
    assert any("CUDA_VISIBLE_DEVICES" in w["message"] for w in report["warnings"])


def test_gpu_memory_growth_that_could_not_be_set_is_a_warning_that_names_the_variable():
    why = "TensorFlow had initialised the GPUs before memory growth was asked for"
    facts = dataclasses.replace(GPU_BOX, memory_growth=why)
    warning = only(facts, "warning")
    assert why in warning.message and "DALI" in warning.message
    assert "TF_FORCE_GPU_ALLOW_GROWTH=true" in warning.fix
    assert "memory growth off" in doctor.render(facts, diagnose(facts))
    assert "memory growth on" in doctor.render(GPU_BOX, diagnose(GPU_BOX))
    # Without a GPU there is nothing to grow.
    assert lines(dataclasses.replace(CPU_BOX, memory_growth=why)) == []


# ---- the run's GPU line --------------------------------------------------------------

def test_the_gpu_line_on_ptx_only_gpus_names_the_jit_and_the_cache_fix():
    from fastfood.doctor.notice import gpu_notice

    shipped = TF221.cuda_compute_capabilities
    line = gpu_notice(["NVIDIA H200"] * 8, [(9, 0)] * 8, shipped, {})
    assert line.startswith("GPU NVIDIA H200 (9.0) x8: TensorFlow ships only PTX")
    assert "many minutes" in line and "export CUDA_CACHE_MAXSIZE=4294967296" in line
    assert "\n" not in line
    kept = gpu_notice(["NVIDIA H200"], [(9, 0)], shipped, {"CUDA_CACHE_MAXSIZE": "4294967296"})
    assert "later starts reuse it" in kept and "export" not in kept
    off = gpu_notice(["NVIDIA H200"], [(9, 0)], shipped, {"CUDA_CACHE_DISABLE": "1"})
    assert "disabled" in off and "unset it" in off


def test_the_gpu_line_on_native_gpus_and_none_without_one():
    from fastfood.doctor.notice import gpu_notice

    shipped = TF221.cuda_compute_capabilities
    line = gpu_notice(["NVIDIA A100-SXM4-80GB"], [(8, 0)], shipped, {})
    assert "machine code for it (no JIT compile)" in line and "export" not in line
    assert "CUDA_CACHE_MAXSIZE" in line
    assert gpu_notice([], [], shipped, {}) == ""
