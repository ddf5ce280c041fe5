"""SIGKILL at random moments: a rerun always resumes from an intact checkpoint and the run
still ends at the planned step.

test_resume.py (the trainer's own tests) kills once, at a checkpoint boundary it waits for.
Here the kills land at seeded random moments (a random number of steps into the run, then a
random fraction of a second) in a run that checkpoints after EVERY step,
so they hit the middle of a step, of a save, of a validation, of a metrics write. After each
kill every checkpoint the `checkpoint` state file lists must read back completely, a save
that was cut short (TensorFlow's `ckpt-N_temp` folder) must never be picked up, and the next
run must say it resumes at the newest listed step. Then the newest checkpoint's data file
is truncated: the trainer must fall back to the one before it, naming the broken one; and
with every checkpoint broken it must stop with one line, exit 2, instead of training anew.
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from pathlib import Path

import pytest

from support.cli import TINY, popen
from support.images import write_noise_presplit
from support.runs import checkpoint_step, listed_checkpoints, read_every_tensor


MAX_STEPS = 36  # 24 train images, batch 4: 6 steps per epoch, 6 epochs
KILLS = 3
SEED = 20241127
STEP_LINE = re.compile(r"\bstep (\d+):")


def _log_steps(log: Path) -> list[int]:
    return [int(m) for m in STEP_LINE.findall(log.read_text())] if log.exists() else []


def _wait_for_step(proc, log: Path, step: int, timeout: float = 300) -> None:
    """Until this process has logged training step `step` (or a later one)."""
    deadline = time.monotonic() + timeout
    while max(_log_steps(log), default=0) < step:
        if proc.poll() is not None:
            pytest.fail(f"training ended (rc {proc.returncode}) before a step:\n"
                        f"{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for training step {step}")
        time.sleep(0.05)


def _assert_intact(run: Path) -> list[int]:
    """The steps of the listed checkpoints whose files exist; each of those reads back whole
    and holds the step its name says, and the newest one (what a resume picks) exists.

    An OLDER listed entry may have none or only some of its files: CheckpointManager writes
    the state file, deletes the checkpoint that fell out of max_to_keep file by file, then
    writes the state file again, so a kill in between leaves a stale name behind, possibly
    mid-deletion. Restore walks newest first and falls back past unreadable ones. What must
    never happen is a NEWEST listed checkpoint that does not read back whole.
    """
    steps = []
    listed = listed_checkpoints(run)
    for prefix in listed:
        try:
            read_every_tensor(prefix)  # raises on a partial or missing file
        except Exception:  # noqa: BLE001
            if prefix == listed[-1]:
                raise  # the newest must read back whole
            continue  # a stale entry of an interrupted sweep (see above)
        number = int(prefix.rsplit("-", 1)[1])
        assert checkpoint_step(prefix) == number, prefix
        steps.append(number)
    # A save cut short leaves a ckpt-N_temp folder behind and ckpt-N unlisted; a later run
    # that saves step N again lists it (whole, as checked above) and may leave the folder.
    return steps


@pytest.mark.slow
def test_random_sigkills_always_resume_from_an_intact_checkpoint(tmp_path: Path) -> None:
    data = write_noise_presplit(tmp_path / "data", train={"a": 12, "b": 12}, val={"a": 2, "b": 2})
    run = tmp_path / "run"
    common = ["train", "--data", str(data), *TINY, "--loader", "tfdata", "--save-every", "1",
              "--run-dir", str(run)]
    args = [*common, "--max-steps", str(MAX_STEPS)]
    rng = random.Random(SEED)
    newest = 0
    for k in range(KILLS):
        log = tmp_path / f"kill{k}.log"
        proc = popen(args, tmp_path, log)
        # Random in steps (a few, sometimes across an epoch end and its validation), then
        # random in time within a step or a save: the same spread on a fast or slow machine.
        # At least 2 steps in, so each run adds a checkpoint (step N is logged before
        # ckpt-N is saved, step N+1 after) and the fallback below has two to choose from.
        _wait_for_step(proc, log, newest + rng.randint(2, 6))
        time.sleep(rng.uniform(0.0, 0.25))
        if proc.poll() is not None:
            pytest.fail(f"run {k} finished before its kill; raise MAX_STEPS\n{log.read_text()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        text = log.read_text()
        expected = f"resuming at step {newest}" if newest else "(new run)"
        assert expected in text, text[-3000:]
        assert _log_steps(log)[0] == newest + 1, text[-3000:]  # continues with the next step
        steps = _assert_intact(run)
        assert newest < max(steps) < MAX_STEPS
        newest = max(steps)

    # The newest checkpoint's data is cut short: the run falls back to the one before.
    listed = [p for p in listed_checkpoints(run) if Path(f"{p}.index").exists()]
    assert len(listed) >= 2, listed
    broken, previous = listed[-1], checkpoint_step(listed[-2])
    data_file = Path(f"{broken}.data-00000-of-00001")
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    log = tmp_path / "final.log"
    proc = popen(args, tmp_path, log)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert f"checkpoint {broken} is unreadable" in text, text[-3000:]
    assert f"resuming at step {previous}" in text, text[-3000:]

    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == MAX_STEPS and summary["exit_code"] == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == list(range(1, MAX_STEPS + 1)), "metrics.jsonl must read as one run"
    assert max(_assert_intact(run)) == MAX_STEPS

    # Every checkpoint broken: a clear stop, not a silent fresh start over the old run.
    for prefix in listed_checkpoints(run):
        if Path(f"{prefix}.index").exists():
            Path(f"{prefix}.data-00000-of-00001").write_bytes(b"")
    log = tmp_path / "broken.log"
    proc = popen([*common, "--max-steps", str(MAX_STEPS + 6), "--resume"], tmp_path, log)
    assert proc.wait(timeout=600) == 2, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text
    assert "fastfood: error: no readable checkpoint in" in text and str(run / "ckpt") in text
