"""scripts/gpu_smoke.py without a GPU: its --cpu mode end to end at a tiny size over two
logical CPUs (the multi-replica path), and the pieces it is made of (the data it
generates, the steady-rate arithmetic).

On a GPU machine the same script runs the GPU-only checks this cannot; here they must say
"skipped" with the reason, and everything else must really run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.cli import REPO, env

SCRIPT = REPO / "scripts" / "gpu_smoke.py"
GPU_ONLY = ("memory_growth", "tf_sees_gpu", "xla_tools", "kernels", "dali_on_gpu")
# Runs the script as __main__ and counts the tf.distribute strategies it makes.
COUNTING = textwrap.dedent("""
    import runpy, sys
    from fastfood.train import distribute
    real, made = distribute.make_strategy, []

    def counted(devices=None):
        made.append(devices)
        return real(devices)

    distribute.make_strategy = counted
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        print(f"STRATEGIES {len(made)}", flush=True)
""")


def load_smoke():
    spec = importlib.util.spec_from_file_location("gpu_smoke_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cpu_mode_runs_every_check_that_needs_no_gpu(tmp_path: Path):
    from fastfood.loaders import dali_available

    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-c", COUNTING, str(SCRIPT), "--cpu", "--cpu-devices", "2",
         "--steps", "3", "--batch-size", "8", "--width", "0.125", "--image-size", "32",
         "--out", str(out)],
        cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == [*GPU_ONLY, "train_synthetic", "train_dali", "eval"]
    for name in GPU_ONLY:
        assert checks[name]["status"] == "skipped", checks[name]
        assert checks[name]["detail"].startswith("no GPU"), checks[name]
    kinds = ["synthetic", "dali"] if dali_available() else ["synthetic"]
    if "dali" in kinds:  # the placement check still ran: batches on the CPU here
        assert "device:CPU:0" in checks["dali_on_gpu"]["detail"]
    assert "TF_FORCE_GPU_ALLOW_GROWTH=true" in checks["memory_growth"]["detail"]
    from fastfood.train.step import SCOPE_SYNC_BN

    for kind in kinds:
        # XLA was asked for; sync BN on two CPU replicas compiles nothing, and says so.
        assert checks[f"train_{kind}"]["status"] == "warn", checks[f"train_{kind}"]
        assert "2 replicas" in checks[f"train_{kind}"]["detail"]
        run = report["train"][kind]
        assert run["steps"] == 3 and run["img_per_s"] > 0 and run["replicas"] == 2
        assert run["precision"] == "mixed_float16"
        assert run["xla"] is False and run["xla_scope"] == SCOPE_SYNC_BN
        assert run["loss_scale_last"] > 0  # dynamic loss scaling ran
        assert run["val"]["count"] == report["settings"]["val_images"] > 0
        assert run["mfu"] is None  # no fp16 peak for a CPU
    assert checks["eval"]["status"] == "ok"
    assert report["ok"] is True and report["mode"] == "cpu"
    assert report["flops"]["forward_per_image"] > 0
    assert report["machine"]["versions"]["tensorflow"]
    assert "train_synthetic" in proc.stdout and str(out) in proc.stdout
    assert "MirroredStrategy over 2 replicas" in report["settings"]["strategy"]
    assert "STRATEGIES 1" in proc.stdout, proc.stdout[-500:]  # one for both runs


def test_generated_data_repeats_training_images_until_the_steps_fit_one_epoch(tmp_path: Path):
    from fastfood import data

    smoke = load_smoke()
    sample = data.load(smoke.smoke_data(tmp_path / "a", steps=2, batch_size=8))
    assert len(sample.train) == 432 and len(sample.val) == 48  # the sample itself
    grown = data.load(smoke.smoke_data(tmp_path / "b", steps=70, batch_size=8))
    assert len(grown.train) == 864 >= 70 * 8 and len(grown.val) == 48
    assert sorted(grown.classes) == sorted(sample.classes)


def test_steady_rate_leaves_out_the_first_interval():
    smoke = load_smoke()
    records = [
        {"kind": "train", "step": 5, "img/s": 1.0},  # tracing and XLA compile
        {"kind": "train", "step": 10, "img/s": 100.0},  # 5 steps x 8 images in 0.4 s
        {"kind": "val", "step": 10, "top1": 0.5},
        {"kind": "train", "step": 12, "img/s": 40.0},  # 2 steps x 8 images in 0.4 s
    ]
    assert smoke.steady_img_per_s(records, 8) == pytest.approx(56 / 0.8)
    assert smoke.steady_img_per_s(records[:1], 8) is None


def test_bad_flags_are_refused_by_name(tmp_path: Path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--steps", "0"], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--steps" in proc.stderr
    proc = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "missing")],
                          cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--data" in proc.stderr


def test_without_tensorflow_it_says_so_in_one_line(tmp_path: Path):
    blocker = tmp_path / "blocked" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no tensorflow in this test')\n")
    pythonpath = f"{blocker.parent}:{REPO}"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu"], cwd=tmp_path,
                          env=env(PYTHONPATH=pythonpath), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "gpu_smoke: error: TensorFlow does not import (no tensorflow in this test); run "
        "scripts/setup.sh, then `fastfood doctor`"]
