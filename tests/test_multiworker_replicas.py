"""A cluster shaped like a GPU cluster: chief + worker, two replicas each, per-replica input.

A GPU worker with several GPUs builds one DALI pipeline per GPU by hand
(`distribute.LocalReplicas`). Here each of two `fastfood train` processes on 127.0.0.1 gets
two logical CPU devices and that per-replica path (tests/support/replica_worker.py says
how), with TF_CONFIG in its chief form. TensorFlow numbers the replicas by cluster id,
the chief's first: chief 0-1, worker 0 2-3. What must hold: both exit 0 at the planned
step; every replica reads its own shard; a run stopped by SIGTERM mid-epoch resumes on
exactly the batches an uninterrupted run reads (each per-replica pipeline gives ONE batch
per step, so a resume skips `batch` batches of each, not `batch` times the replicas per
worker); and the losses, before the stop and after the resume, equal a one-process run
over four logical CPUs with the same global batch (which stands in for the uninterrupted
cluster run: three runs instead of four). Width 0.125 at 32 px, dropout off (the cluster
and one process are compared exactly), tf.data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support.cluster import logged_steps, start_workers, wait_all, wait_for_step

pytestmark = pytest.mark.slow

ENTRY = Path(__file__).parent / "support" / "replica_worker.py"
STEPS = 9  # of 30 steps per epoch on the sample at global batch 16 over 4 shards
REPLICAS = 4


def _args(sample_dir: Path, run: Path) -> list[str]:
    return ["--data", str(sample_dir), "--weights", "none", "--width", "0.125",
            "--image-size", "32", "--batch-size", "16", "--max-steps", str(STEPS),
            "--loader", "tfdata", "--run-dir", str(run), "--precision", "fp32",
            "--save-every", "0", "--dropout", "0"]


def _log(logs: Path, i: int) -> str:
    return (logs / f"worker{i}.log").read_text()


def _shards(log: str) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in
            (line.split()[1:3] for line in log.splitlines() if line.startswith("SHARD "))}


@pytest.fixture(scope="module")
def cluster(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Chief + worker stopped by a SIGTERM to the worker after step 3, then the same
    command again: (run dir, logs of both parts, exit codes of both parts, stop step)."""
    tmp = tmp_path_factory.mktemp("replicas")
    run, first, second = tmp / "run", tmp / "logs1", tmp / "logs2"
    procs = start_workers(_args(sample_dir, run), first, chief=True, entry=ENTRY)
    try:
        wait_for_step(run, 3, procs, 300)
    except AssertionError:
        wait_all(procs, 1)
        raise AssertionError(_log(first, 0)[-2000:] + _log(first, 1)[-2000:]) from None
    procs[1].send_signal(signal.SIGTERM)
    codes = [wait_all(procs, 300)]
    stopped = int(_log(first, 0).split("stopped by ")[1].split(" at step ")[1].split()[0])
    procs = start_workers(_args(sample_dir, run), second, chief=True, entry=ENTRY)
    codes.append(wait_all(procs, 600))
    return run, (first, second), codes, stopped


def test_chief_and_worker_stop_together_resume_and_finish_each_replica_on_its_own_shard(
        cluster) -> None:
    run, logs, codes, stopped = cluster
    assert codes[0] == [128 + signal.SIGTERM] * 2, _log(logs[0], 0)[-2000:]
    assert 0 < stopped < STEPS
    assert codes[1] == [0, 0], _log(logs[1], 0)[-2000:] + _log(logs[1], 1)[-2000:]
    assert f"resuming at step {stopped}" in _log(logs[1], 0)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == STEPS and summary["replicas"] == REPLICAS
    assert summary["strategy"] == "multi-worker"
    for part in logs:  # training and evaluation pipelines: chief 0-1, worker 0 2-3
        assert _shards(_log(part, 0)) == {(0, REPLICAS), (1, REPLICAS)}
        assert _shards(_log(part, 1)) == {(2, REPLICAS), (3, REPLICAS)}


ONE_PROCESS = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 4)
    from fastfood.config import RunConfig
    from fastfood.train import train_and_evaluate
    config = RunConfig.from_dict(json.loads(sys.argv[1]))
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(4)])
    # the default logging interval, as the cluster's workers (the same steps per epoch)
    summary = train_and_evaluate(config, strategy=strategy, fancy=False)
    print("SUMMARY " + json.dumps(summary))
""")


def test_before_the_stop_and_after_the_resume_the_cluster_computes_what_one_process_does(
        cluster, tmp_path: Path) -> None:
    run, _, codes, stopped = cluster
    assert codes[1] == [0, 0]
    config = json.loads((run / "config.json").read_text())
    config["train"]["run_dir"] = str(tmp_path / "one")
    config["model"]["convention"] = ""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", ONE_PROCESS, json.dumps(config)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got, want = logged_steps(run), logged_steps(tmp_path / "one")
    assert sorted(got) == sorted(want) and max(got) == STEPS
    assert any(s <= stopped for s in got) and any(s > stopped for s in got)
    for step, loss in got.items():
        assert loss == pytest.approx(want[step], rel=1e-4, abs=1e-5), (
            step, stopped, loss, want[step])
