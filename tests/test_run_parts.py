"""The small pure pieces the loop relies on: whole-run orders, padded eval passes, the
DALI thread and memory budget, and how a failed step is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastfood.loaders import order
from fastfood.loaders.budget import MAX_THREADS, MIN_PADDING, budget
from fastfood.train import failures


def test_run_indices_are_the_epochs_back_to_back_from_the_resume_point() -> None:
    n, b = 23, 4
    whole = order.run_indices(n, seed=3, epoch=0, epochs=3, batch_size=b)
    per_epoch = [order.epoch_indices(n, seed=3, epoch=e, batch_size=b)[0] for e in range(3)]
    assert whole.tolist() == np.concatenate(per_epoch).tolist()
    resumed = order.run_indices(n, seed=3, epoch=1, epochs=2, batch_size=b, skip_batches=2)
    assert resumed.tolist() == whole[len(per_epoch[0]) + 2 * b:].tolist()


@pytest.mark.parametrize("n,count", [(11, 1), (11, 3), (2, 4), (1, 2), (16, 2)])
def test_padded_eval_passes_cover_every_file_once_in_equal_batch_counts(n: int, count: int) -> None:
    b = 4
    seen, lengths = [], set()
    for i in range(count):
        idx, valid = order.padded_eval_indices(n, b, (i, count))
        assert len(idx) % b == 0 and len(idx) == len(valid)
        lengths.add(len(idx))
        seen.extend(idx[valid].tolist())
        assert ((idx >= 0) & (idx < n)).all()  # padding repeats a real file
    assert len(lengths) == 1  # every replica runs the same number of eval steps
    assert sorted(seen) == list(range(n))


def test_budget_splits_the_cores_and_caps_threads_and_paddings() -> None:
    assert budget(pipelines=8, cores=16).num_threads == 2
    assert budget(pipelines=1, cores=200).num_threads == MAX_THREADS
    assert budget(pipelines=8, cores=4).num_threads == 1
    assert budget(pipelines=8, cores=16, requested_threads=5).num_threads == 5
    share = budget(cores=16)
    assert share.device_memory_padding == share.host_memory_padding == MIN_PADDING
    assert budget(cores=16, max_side=2048).device_memory_padding == 2 * 2048 * 2048 * 3
    # NVIDIA's example values cost 211 MB of device and 140 MB of pinned host padding.
    assert share.device_memory_padding < 211_025_920 // 50


class UnavailableError(Exception):
    """Stands in for tf.errors.UnavailableError: classify goes by the type's name."""


class ResourceExhaustedError(Exception):
    pass


class InvalidArgumentError(Exception):
    pass


def test_a_lost_worker_is_named_and_is_not_an_input_error() -> None:
    err = UnavailableError("Collective ops is aborted by: recvmsg:Connection reset by peer\n"
                           "from remote target /job:worker/replica:0/task:1 while calling")
    got = failures.classify(err, multi_worker=True, self_task=("worker", 0),
                            addresses={("worker", 1): "10.0.0.2:2222"})
    assert (got.kind, got.detail, got.exit_code) == ("peer", "worker 1 (10.0.0.2:2222)", 69)
    line = failures.explain(got, step=7, epoch=0, checkpoint="", run_dir="runs/x")
    assert "lost worker 1 (10.0.0.2:2222)" in line and "input" not in line
    assert "no checkpoint was written yet" in line


class DeadlineExceededError(Exception):
    pass


def test_a_stopped_worker_that_stopped_sending_heartbeats_is_named() -> None:
    # What TensorFlow 2.21 raises on worker 0 when worker 1 is stopped (SIGSTOP).
    err = UnavailableError(
        "Collective ops is aborted by: Error reported from /job:worker/task:1: The following "
        "tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\n"
        "The tasks have crashed.")
    got = failures.classify(err, multi_worker=True, self_task=("worker", 0),
                            addresses={("worker", 1): "127.0.0.1:2222"})
    assert (got.kind, got.detail) == ("peer", "worker 1 (127.0.0.1:2222)")


def test_a_stopped_coordination_leader_is_named() -> None:
    # What worker 1 gets when worker 0, which hosts the coordination service, is stopped.
    err = DeadlineExceededError("Deadline Exceeded\n\nRPC: /tensorflow.CoordinationService/"
                                "Heartbeat")
    got = failures.classify(err, multi_worker=True, self_task=("worker", 1),
                            addresses={("worker", 0): "127.0.0.1:2221"}, leader=("worker", 0))
    assert got.kind == "peer" and got.detail.startswith("worker 0 (127.0.0.1:2221)")
    assert "coordination service" in got.detail
    # In a chief-form cluster the chief is the leader, and worker 0 is not this process.
    chief = failures.classify(err, multi_worker=True, self_task=("worker", 0),
                              addresses={("chief", 0): "10.0.0.1:1"}, leader=("chief", 0))
    assert chief.detail.startswith("chief 0 (10.0.0.1:1)")


def test_the_chief_is_not_mistaken_for_worker_0() -> None:
    err = UnavailableError("Collective ops is aborted by: from remote target "
                           "/job:worker/replica:0/task:0 while calling")
    got = failures.classify(err, multi_worker=True, self_task=("chief", 0),
                            addresses={("worker", 0): "10.0.0.2:1"})
    assert got.detail == "worker 0 (10.0.0.2:1)"


def test_each_failure_kind_gets_its_own_line_and_code() -> None:
    cases = {
        "oom": ResourceExhaustedError("OOM when allocating tensor with shape[64,512]"),
        "xla": InvalidArgumentError("XLA compilation failed: ptxas too old"),
        "nccl": RuntimeError("NCCL error: unhandled system error"),
        "input": InvalidArgumentError("Error in DALI decoding /data/a/b.jpg: corrupt"),
        "other": ValueError("something else entirely"),
    }
    codes = {}
    for kind, err in cases.items():
        got = failures.classify(err, files=("/data/a/b.jpg",))
        assert got.kind == kind, (kind, got)
        line = failures.explain(got, step=3, epoch=1, checkpoint="runs/x/ckpt/ckpt-3",
                                run_dir="runs/x")
        assert ("cannot decode /data/a/b.jpg" in line) == (kind == "input"), line
        assert "checkpoint runs/x/ckpt/ckpt-3 saved" in line
        codes[kind] = got.exit_code
    assert codes["input"] == 65 and codes["oom"] == 71 and codes["other"] == 70
    # Outside a cluster a connection error is not blamed on a peer.
    assert failures.classify(UnavailableError("socket closed")).kind == "other"


def test_one_process_decides_alone_at_every_step() -> None:
    import tensorflow as tf

    from fastfood.train.lockstep import Lockstep

    step = Lockstep(tf.distribute.get_strategy(), multi_worker=False, every=50)
    assert all(step.due(s) for s in range(1, 7))
    assert step.agree(True, False) == (True, False)
    assert step.agree(False, True) == (False, True)


def test_only_the_chief_writes_checkpoints_into_the_run_dir(tmp_path: Path) -> None:
    import tempfile

    from fastfood.train.checkpoints import write_folder

    run = tmp_path / "run"
    assert write_folder(run, True, ("chief", 0)) == run
    scratch = write_folder(run, False, ("worker", 1))
    assert run not in scratch.parents and scratch.is_dir()
    assert Path(tempfile.gettempdir()) in scratch.parents and "worker1" in scratch.name
    other = write_folder(run, False, ("worker", 1))
    assert other != scratch  # private to the process
    for folder in (scratch, other):
        folder.rmdir()
