"""`fastfood bench` on a machine with two devices: one strategy for the whole process.

On a two-GPU machine `distribute.make_strategy()` returns a new MirroredStrategy per call.
Each strategy numbers its collectives from the same start, so a second one in the same
process reuses the first one's collective instances with other shapes and TensorFlow
aborts ("Shape mismatch in the collective instance 100"). Here two logical CPUs stand in
for the GPUs: `make_strategy` is made to answer as it does there (a new MirroredStrategy
over both devices per call) and bench trains in fp32 and then fp16, whose step has one
collective more (the overflow agreement of loss scaling) and so differs in shape from the
fp32 step's from there on: every row must be measured, none an error, and the process
makes one strategy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.cli import env

BOOT = textwrap.dedent("""
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from fastfood.train import distribute
    made = []
    real = distribute.make_strategy

    def two_devices(devices=None):
        made.append(1)
        return real(devices or ["/cpu:0", "/cpu:1"])

    distribute.make_strategy = two_devices
    from fastfood.cli import main
    try:
        main(sys.argv[1:])
    finally:
        print(f"STRATEGIES {len(made)}", flush=True)
""")


@pytest.mark.slow
def test_bench_over_two_precisions_on_two_devices_measures_every_row(
        sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--data", str(sample_dir), "--what", "train",
            "--precision", "fp32,fp16", "--batch-size", "8", "--train-image-size", "32",
            "--width", "0.125", "--steps", "1", "--warmup", "1", "--repeats", "1",
            "--json", str(out)]
    proc = subprocess.run([sys.executable, "-c", BOOT, *args], capture_output=True, text=True,
                          env=env(CUDA_VISIBLE_DEVICES=""), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["errors"] == [], result["errors"]
    for precision in ("fp32", "fp16"):
        for kind in ("synthetic", "keras_fit"):
            row = result["train"][f"{precision}/{kind}"]
            assert row.get("img_s", 0) > 0, (precision, kind, row)
    assert "STRATEGIES 1" in proc.stdout, proc.stdout[-500:]
