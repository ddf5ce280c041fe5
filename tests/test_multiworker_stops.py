"""The time limit in a real two-worker cluster: each worker's own clock says the time is
spent at its own moment, and the agreed stop ends both at the same step, cleanly (exit 0,
no worker left waiting in a collective), with the chief's summary.json saying why. Two
`fastfood train` processes on 127.0.0.1 with TF_CONFIG, as in tests/test_multiworker.py.
(Patience needs no such test of its own: it reads validation results that are all-reduced,
the same on every worker, and its stop goes through the same agreement.)"""

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


def test_a_spent_time_limit_ends_both_workers_at_one_step(sample_dir: Path,
                                                          tmp_path: Path) -> None:
    # 1 s is spent by the first step (it traces the step function) on any machine: each
    # worker's clock says so at its own moment, and the agreed stop ends both at one step.
    summary, _ = _cluster(sample_dir, tmp_path, "--time-limit", "1s")
    assert summary["stop"]["reason"] == "time limit" and summary["exit_code"] == 0
    assert 0 <= summary["step"] < 40
    assert (tmp_path / "run" / "ckpt" / f"ckpt-{summary['step']}.index").is_file() \
        or summary["step"] == 0
