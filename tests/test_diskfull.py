"""The disk fills up during a checkpoint save: the previous checkpoint survives and loads, the
run can be resumed once there is space again, and the user is told what happened.

Two ways to make a write fail:
- a real full disk: `fastfood train` with its run directory on a small tmpfs (needs root and
  `mount`; skipped elsewhere), sized so the first checkpoint fits and the second does not;
- anywhere: RLIMIT_FSIZE in this process (writes past the limit fail with EFBIG, "File too
  large"), around `Checkpoints.save` itself.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from support.cli import TINY, run_subprocess
from support.images import write_noise_presplit
from support.runs import (
    checkpoint_step,
    listed_checkpoints,
    read_every_tensor,
    tiny_model_and_optimizer,
)


@contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Writes past `limit` bytes fail with EFBIG (SIGXFSZ ignored so they fail, not kill)."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, previous)


def _failed_save(tmp_path: Path):
    """A Checkpoints whose first save worked and second save hit the file size limit."""
    from fastfood.train.checkpoints import Checkpoints, Position

    model, optimizer = tiny_model_and_optimizer()
    ckpts = Checkpoints(tmp_path / "run", model, optimizer, keep=3)
    ckpts.save(Position(step=1, epoch=0, batch_in_epoch=1))
    saved = [v.numpy().copy() for v in model.weights]
    for v in model.trainable_variables:  # training moved on
        v.assign(v + 1.0)
    with _file_size_limit(64 * 1024):
        try:
            ckpts.save(Position(step=2, epoch=0, batch_in_epoch=2))
            error = None
        except Exception as err:  # noqa: BLE001 - inspected by the tests
            error = err
    return ckpts, saved, error


def test_failed_save_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    from fastfood.train.checkpoints import Checkpoints

    ckpts, saved, error = _failed_save(tmp_path)
    assert error is not None, "a save that cannot write its data must not pass silently"
    run = tmp_path / "run"
    assert [Path(p).name for p in listed_checkpoints(run)] == ["ckpt-1"]
    read_every_tensor(str(run / "ckpt" / "ckpt-1"))

    model, optimizer = tiny_model_and_optimizer()
    position = Checkpoints(run, model, optimizer, keep=3).restore()
    assert position is not None and position.step == 1 and position.batch_in_epoch == 1
    for before, after in zip(saved, model.weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_failed_save_is_a_clear_error(tmp_path: Path) -> None:
    from fastfood.errors import FastfoodError

    _, _, error = _failed_save(tmp_path)
    assert isinstance(error, FastfoodError), repr(error)
    message = str(error)
    assert "\n" not in message and "ckpt-2" in message and "File too large" in message


# --- a real full disk under `fastfood train` ---------------------------------------------------


def _checkpoint_bytes() -> int:
    """Size of one full checkpoint (weights + momentum) of the TINY model, from its params."""
    model, _ = tiny_model_and_optimizer()
    return 8 * model.count_params() + 64 * 1024


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`fastfood train` with its run dir on a tmpfs that holds one checkpoint, not two."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount for a tmpfs")
    base = tmp_path_factory.mktemp("diskfull")
    mnt = base / "mnt"
    mnt.mkdir()
    one = _checkpoint_bytes()
    size_kb = (one + one // 2 + 512 * 1024) // 1024
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                              str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        data = write_noise_presplit(base / "data", train={"a": 12, "b": 12}, val={"a": 2, "b": 2})
        run = mnt / "run"
        argv = ["train", "--data", str(data), *TINY, "--loader", "tfdata", "--max-steps", "8",
                "--save-every", "2", "--run-dir", str(run)]
        result = run_subprocess(argv, cwd=base)
        yield {"result": result, "run": run, "mnt": mnt, "argv": argv, "base": base}
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_full_disk_is_one_clear_line(full_disk: dict) -> None:
    result = full_disk["result"]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("fastfood: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "No space left on device" in errors[0] and "ckpt-4" in errors[0]


@pytest.mark.slow
def test_full_disk_keeps_the_previous_checkpoint_and_resumes(full_disk: dict) -> None:
    result, run = full_disk["result"], full_disk["run"]
    assert result.returncode != 0, "the run cannot have finished on a full disk"
    assert "No space left on device" in result.stderr, result.stderr[-3000:]
    assert not (run / "summary.json").exists()
    listed = listed_checkpoints(run)
    assert [Path(p).name for p in listed] == ["ckpt-2"], listed
    assert checkpoint_step(listed[-1]) == 2  # reads back whole

    # Space again: the same command continues from step 2 and finishes.
    subprocess.run(["mount", "-o", "remount,size=256m", str(full_disk["mnt"])], check=True)
    again = run_subprocess(full_disk["argv"], cwd=full_disk["base"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming at step 2" in again.stderr
    assert json.loads((run / "summary.json").read_text())["step"] == 8
