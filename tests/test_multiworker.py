"""Real multi-worker training: two `fastfood train` processes on 127.0.0.1 with TF_CONFIG.

What a cluster must get right and one process cannot show: both workers finish at the
planned step with the chief's run dir complete; the result equals a one-process run with
the same global batch and the same sharding (MirroredStrategy over two logical CPUs);
a SIGTERM that reaches one worker stops both at the same step with one readable
checkpoint, from which both resume exactly; a worker killed outright makes the other
exit non-zero, naming the lost worker, within a bounded time. A width-0.125 model at
32 px keeps each run to well under a minute; dropout is off so that the arithmetic of a
cluster and of one process can be compared exactly (each worker draws its own masks).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support.cluster import logged_steps, start_workers, wait_all, wait_for_step

pytestmark = pytest.mark.slow

STEPS = 24  # 27 steps per epoch on the sample (432 train) at global batch 16 over 2 shards
LOST_WORKER_BOUND_S = 60  # what the kill -9 test allows (measured: about 3 s here)


def _args(sample_dir: Path, run: Path, loader: str = "tfdata", steps: int = STEPS) -> list[str]:
    return ["--data", str(sample_dir), "--weights", "none", "--width", "0.125",
            "--image-size", "32", "--batch-size", "16", "--max-steps", str(steps),
            "--loader", loader, "--run-dir", str(run), "--precision", "fp32",
            "--save-every", "0", "--dropout", "0"]


def _cluster_run(sample_dir: Path, tmp: Path, loader: str = "tfdata",
                 steps: int = STEPS) -> tuple[Path, list[int | None]]:
    run = tmp / f"run-{loader}"
    procs = start_workers(_args(sample_dir, run, loader, steps), tmp / f"logs-{loader}")
    return run, wait_all(procs, 600)


ONE_PROCESS = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from fastfood.config import RunConfig
    from fastfood.train import train_and_evaluate
    config = RunConfig.from_dict(json.loads(sys.argv[1]))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    # the default logging interval, as the cluster's workers (the same steps per epoch)
    summary = train_and_evaluate(config, strategy=strategy, fancy=False)
    print("SUMMARY " + json.dumps(summary))
""")


def _one_process(run_dir: Path, cluster_run: Path, out: Path) -> dict:
    """The cluster run's own config, trained by one process over two logical CPUs."""
    config = json.loads((cluster_run / "config.json").read_text())
    config["train"]["run_dir"] = str(out)
    config["model"]["convention"] = ""
    assert config["model"]["dropout"] == 0
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", ONE_PROCESS, json.dumps(config)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SUMMARY "))
    return json.loads(line[len("SUMMARY "):])


@pytest.fixture(scope="module")
def reference(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted two-worker tf.data run of STEPS steps."""
    tmp = tmp_path_factory.mktemp("cluster")
    run, codes = _cluster_run(sample_dir, tmp)
    return run, codes, tmp


def test_two_workers_finish_at_the_planned_step_with_a_complete_run_dir(reference) -> None:
    run, codes, tmp = reference
    assert codes == [0, 0], (tmp / "logs-tfdata" / "worker1.log").read_text()[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == STEPS and summary["strategy"] == "multi-worker"
    assert summary["replicas"] == 2
    for name in ("config.json", "classes.json", "metrics.jsonl", "ckpt/checkpoint",
                 "final/final.index", "best/checkpoint"):
        assert (run / name).exists(), name
    assert not (run / ".worker1").exists()  # the other worker's scratch copies are gone
    for i in (0, 1):
        log = (tmp / "logs-tfdata" / f"worker{i}.log").read_text()
        assert f"{STEPS} steps" in log or i == 1


@pytest.mark.parametrize("loader", ["tfdata", "dali"])
def test_two_workers_compute_what_one_process_computes(loader: str, reference, sample_dir: Path,
                                                      tmp_path: Path) -> None:
    if loader == "dali":
        pytest.importorskip("nvidia.dali.plugin.tf")
        run, codes = _cluster_run(sample_dir, tmp_path, "dali", steps=12)
        assert codes == [0, 0], (tmp_path / "logs-dali" / "worker0.log").read_text()[-2000:]
    else:
        run, codes, _ = reference
    cluster = logged_steps(run)
    one = _one_process(run, run, tmp_path / "one")
    assert one["step"] == max(cluster) and one["strategy"] == "mirrored"
    single = logged_steps(tmp_path / "one")
    assert sorted(single) == sorted(cluster)
    for step, loss in cluster.items():
        assert single[step] == pytest.approx(loss, rel=1e-4, abs=1e-5), (step, loss, single[step])


def test_sigterm_to_one_worker_stops_both_at_one_step_and_resume_is_exact(
        reference, sample_dir: Path, tmp_path: Path) -> None:
    ref_run, _, _ = reference
    run = tmp_path / "run"
    procs = start_workers(_args(sample_dir, run), tmp_path / "logs")
    wait_for_step(run, 3, procs, 300)
    procs[1].send_signal(signal.SIGTERM)
    assert wait_all(procs, 300) == [128 + signal.SIGTERM] * 2
    logs = [(tmp_path / "logs" / f"worker{i}.log").read_text() for i in (0, 1)]
    stops = [int(log.split("stopped by ")[1].split(" at step ")[1].split()[0]) for log in logs]
    assert stops[0] == stops[1] < STEPS
    stopped = stops[0]
    assert "SIGTERM" in logs[1] and "peer worker" in logs[0]
    ckpts = sorted(p.name for p in (run / "ckpt").glob("ckpt-*.index"))
    assert ckpts == [f"ckpt-{stopped}.index"]
    # Both started again with the same command: they continue from that checkpoint.
    procs = start_workers(_args(sample_dir, run), tmp_path / "logs2")
    assert wait_all(procs, 600) == [0, 0], (tmp_path / "logs2" / "worker0.log").read_text()[-2000:]
    assert f"resuming at step {stopped}" in (tmp_path / "logs2" / "worker0.log").read_text()
    resumed, reference_losses = logged_steps(run), logged_steps(ref_run)
    after = [s for s in resumed if s > stopped]
    assert after and max(after) == STEPS
    for step in after:
        assert resumed[step] == pytest.approx(reference_losses[step], rel=1e-5, abs=1e-6), step


def test_a_killed_worker_makes_the_other_exit_naming_it(sample_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    procs = start_workers(_args(sample_dir, run, steps=2000), tmp_path / "logs")
    wait_for_step(run, 3, procs, 300)
    procs[1].kill()
    started = time.monotonic()
    code = wait_all(procs[:1], LOST_WORKER_BOUND_S)[0]
    assert code is not None, f"the surviving worker still ran after {LOST_WORKER_BOUND_S} s"
    assert code == 69, code  # EX_UNAVAILABLE: a worker of the cluster is gone
    assert time.monotonic() - started < LOST_WORKER_BOUND_S
    log = (tmp_path / "logs" / "worker0.log").read_text()
    error = [line for line in log.splitlines() if line.startswith("fastfood: error:")]
    assert error and "lost worker 1 (127.0.0.1:" in error[-1], log[-2000:]
    assert "input pipeline" not in error[-1]


def test_run_dir_is_required_in_a_cluster(monkeypatch: pytest.MonkeyPatch, sample_dir: Path) -> None:
    from fastfood.config import DataConfig, RunConfig
    from fastfood.errors import FastfoodError
    from fastfood.train.resume import resolve

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    with pytest.raises(FastfoodError, match="--run-dir is required when TF_CONFIG is set"):
        resolve(RunConfig(data=DataConfig(root=str(sample_dir))), False, None)
