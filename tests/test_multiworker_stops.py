"""Patience and the time limit in a real two-worker cluster: both workers end at the same
step, cleanly (exit 0, no worker left waiting in a collective), and the chief's
summary.json says why. Two `fastfood train` processes on 127.0.0.1 with TF_CONFIG, as in
tests/test_multiworker.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cluster import start_workers, wait_all

pytestmark = pytest.mark.slow


def _args(sample_dir: Path, run: Path, *extra: str) -> list[str]:
    return ["--data", str(sample_dir), "--weights", "none", "--width", "0.125",
            "--image-size", "32", "--batch-size", "16", "--max-steps", "40", "--loader",
            "tfdata", "--run-dir", str(run), "--precision", "fp32", "--save-every", "0",
            "--dropout", "0", "--no-calibrate", *extra]


def _cluster(sample_dir: Path, tmp: Path, *extra: str) -> tuple[dict, list]:
    run = tmp / "run"
    codes = wait_all(start_workers(_args(sample_dir, run, *extra), tmp / "logs"), 600)
    logs = [(tmp / "logs" / f"worker{i}.log").read_text()[-2000:] for i in (0, 1)]
    assert codes == [0, 0], logs
    return json.loads((run / "summary.json").read_text()), logs


def test_patience_ends_both_workers_at_the_same_validation(sample_dir: Path,
                                                           tmp_path: Path) -> None:
    # A rate too small to change a prediction (and no batch norm statistics to move):
    # the validation at step 2 is the best, the one at step 4 spends --patience 1.
    summary, _ = _cluster(sample_dir, tmp_path, "--lr", "1e-12", "--norm", "none",
                          "--val-every", "2", "--patience", "1")
    assert summary["stop"]["reason"] == "patience" and summary["step"] == 4
    assert summary["strategy"] == "multi-worker" and summary["exit_code"] == 0


def test_a_spent_time_limit_ends_both_workers_at_one_step(sample_dir: Path,
                                                          tmp_path: Path) -> None:
    # 1 s is spent by the first step (it traces the step function) on any machine: each
    # worker's clock says so at its own moment, and the agreed stop ends both at one step.
    summary, _ = _cluster(sample_dir, tmp_path, "--time-limit", "1s")
    assert summary["stop"]["reason"] == "time limit" and summary["exit_code"] == 0
    assert 0 <= summary["step"] < 40
    assert (tmp_path / "run" / "ckpt" / f"ckpt-{summary['step']}.index").is_file() \
        or summary["step"] == 0
