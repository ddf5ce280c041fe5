"""The CPUs a process may use (affinity, cgroup quota) and how DALI's threads share them.

Made-up cgroup trees in tmp_path stand in for containers; the feeds' requests are caught
on their way to the loader, so no pipeline is built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastfood import cpus
from fastfood.loaders.budget import budget


@pytest.mark.parametrize("text, want", [
    ("max 100000\n", None), ("150000 100000\n", 1.5), ("400000 100000", 4.0),
    ("garbage", None), ("", None),
])
def test_cgroup_v2_cpu_max(text: str, want: float | None) -> None:
    assert cpus.quota_from_cpu_max(text) == want


def test_cgroup_v1_cfs_quota() -> None:
    assert cpus.quota_from_cfs("-1", "100000") is None
    assert cpus.quota_from_cfs("250000\n", "100000\n") == 2.5


def test_the_smallest_quota_on_the_cgroup_path_counts(tmp_path: Path) -> None:
    job = tmp_path / "slurm" / "job1"
    job.mkdir(parents=True)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "slurm" / "cpu.max").write_text("800000 100000\n")
    (job / "cpu.max").write_text("300000 100000\n")
    assert cpus.cgroup_quota(tmp_path, "0::/slurm/job1\n") == 3.0
    v1 = tmp_path / "v1" / "cpu,cpuacct" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_quota(tmp_path / "v1", "4:cpu,cpuacct:/docker/abc\n") == 1.5
    assert cpus.cgroup_quota(tmp_path / "v1", "4:memory:/docker/abc\n") is None


def test_usable_cpus_is_the_affinity_capped_by_the_quota() -> None:
    assert cpus.usable_cpus(affinity=16, quota=None, read_quota=False) == 16
    assert cpus.usable_cpus(affinity=16, quota=2.5) == 3
    assert cpus.usable_cpus(affinity=2, quota=8.0) == 2
    assert cpus.usable_cpus(affinity=1, quota=0.2) == 1
    assert 1 <= cpus.usable_cpus() <= (__import__("os").cpu_count() or 1)


def test_dali_budget_splits_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastfood.loaders import budget as budget_module

    monkeypatch.setattr(budget_module, "usable_cpus", lambda: 6)
    assert budget(pipelines=1).num_threads == 6
    assert budget(pipelines=4).num_threads == 1
    assert budget(pipelines=2, requested_threads=5).num_threads == 5


def test_training_and_evaluation_pipelines_are_budgeted_together(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    from fastfood import loaders
    from fastfood.config import LoaderConfig, RunConfig, TrainConfig
    from fastfood.loaders.request import LoaderRequest
    from fastfood.train.feeds import EvalFeed, TrainFeed
    from fastfood.train.position import Position
    from fastfood.train.setup import plan

    seen: list[LoaderRequest] = []

    def catch(request: LoaderRequest, files, labels):
        seen.append(request)
        return tf.data.Dataset.from_tensors((tf.zeros([2, 8, 8, 3], tf.uint8),
                                             tf.zeros([2], tf.int32))).repeat(2)

    monkeypatch.setattr(loaders, "build_request", catch)
    strategy = tf.distribute.get_strategy()
    request = LoaderRequest(kind="tfdata", batch_size=2, image_size=8)
    files, labels = ["a.jpg", "b.jpg"], [0, 1]
    config = RunConfig(loader=LoaderConfig(batch_size=2), train=TrainConfig(epochs=1))
    validating = plan(2, config, strategy, validating=True)
    TrainFeed(strategy, validating, files, labels, request).at(Position())
    EvalFeed(strategy, validating, files, labels, request).batches()
    TrainFeed(strategy, plan(2, config, strategy), files, labels, request).at(Position())
    assert [r.pipelines for r in seen] == [2, 2, 1]
