"""Stopping and continuing: SIGTERM saves and exits cleanly, SIGKILL loses at most the steps
since the last checkpoint, a rerun continues with the same step, epoch and LR, and
resuming with incompatible settings is refused with one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastfood.cli import main
from fastfood import rundir
from fastfood.train.schedule import lr_at

TINY = ["--weights", "none", "--width", "0.125", "--image-size", "32", "--batch-size", "16",
        "--loader", "tfdata", "--precision", "fp32", "--lr", "0.01", "--warmup-epochs", "0"]
# A small Food-101 tree: 4 classes x 12 train images (13 in train.txt, one carved out for
# val), batch 8: 6 steps per epoch.
SMALL = {"a": (13, 2), "b": (13, 2), "c": (13, 2), "d": (13, 2)}
SMALL_ARGS = [*TINY[:7], "8", *TINY[8:]]


def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1"}


def _train(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from fastfood.cli import main; main()", "train", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"training ended (rc {proc.returncode}) before expected:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the training subprocess")
        time.sleep(0.2)


def _checkpoint_steps(run: Path) -> list[int]:
    state = run / "ckpt" / "checkpoint"
    if not state.exists():
        return []
    return [int(line.rsplit("-", 1)[1].strip('"')) for line in state.read_text().splitlines()
            if line.startswith("all_model_checkpoint_paths")]


def _train_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"]


@pytest.mark.slow
def test_sigkill_then_rerun_continues_exactly(make_food101, tmp_path):
    run = tmp_path / "run"
    # 6 steps per epoch; the kill comes in epoch 2 or later, the run ends mid-epoch 4.
    args = ["--data", str(make_food101(SMALL)), *SMALL_ARGS, "--epochs", "4",
            "--max-steps", "20", "--save-every", "4", "--run-dir", str(run)]
    first = _train(args)
    _wait_for(lambda: any(s >= 8 for s in _checkpoint_steps(run)), first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    saved = max(_checkpoint_steps(run))
    assert saved < 20

    second = _train(args)  # the same command again: continues
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-3000:]
    assert f"resuming at step {saved}" in err
    records = _train_records(run)
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)), "metrics.jsonl must read as one run after resume"
    assert steps[-1] == 20
    assert [s for s in steps if s > saved][0] == saved + 1  # logged every step (6 per epoch)
    for r in records:
        # the LR logged for step s is the schedule at optimizer step s-1 (over 20 steps)
        assert r["lr"] == pytest.approx(lr_at(r["step"] - 1, 0.01, 20, 1e-4), rel=1e-5)
        assert r["epoch"] == (r["step"] - 1) // 6 + 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 20 and summary["exit_code"] == 0
    assert max(_checkpoint_steps(run)) == 20


@pytest.mark.slow
def test_sigterm_saves_and_exits_143(make_food101, tmp_path):
    run = tmp_path / "run"
    proc = _train(["--data", str(make_food101(SMALL)), *SMALL_ARGS, "--epochs", "1000",
                   "--save-every", "0", "--run-dir", str(run)])
    metrics = run / "metrics.jsonl"
    _wait_for(lambda: metrics.exists() and metrics.read_text().count('"train"') >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    assert "stopped by SIGTERM" in err and "--resume" in err
    steps = _checkpoint_steps(run)
    assert steps and 1 <= max(steps) < 6000
    assert not (run / "summary.json").exists() or \
        json.loads((run / "summary.json").read_text())["exit_code"] == 143


# ---- refusals: these fail before TensorFlow loads --------------------------------------

def _fake_run(run: Path, sample_dir: Path, **model) -> None:
    from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
    from fastfood.data import load

    spec = load(sample_dir)
    cfg = RunConfig(
        data=DataConfig(root=str(spec.root)),
        loader=LoaderConfig(kind="tfdata", batch_size=16),
        model=ModelConfig(num_classes=len(spec.classes), image_size=32,
                          **{"width": 0.125, "weights": "none", "convention": "slim", **model}),
        train=TrainConfig(lr=0.01, precision="fp32", run_dir=str(run)),
    )
    rundir.write_start(run, cfg, spec.classes, spec.display_names)


def _cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(["train", *args])
    return exc.value.code, capsys.readouterr().err


def test_resume_with_other_width_is_refused(sample_dir, tmp_path, capsys):
    run = tmp_path / "run"
    _fake_run(run, sample_dir)
    code, err = _cli(["--resume", "--run-dir", str(run), "--width", "0.25"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "cannot resume" in err and "--width" in err


def test_resume_with_other_image_size_is_refused(sample_dir, tmp_path, capsys):
    run = tmp_path / "run"
    _fake_run(run, sample_dir)
    code, err = _cli(["--resume", "--run-dir", str(run), "--image-size", "64"], capsys)
    assert code == 2 and "--image-size" in err and err.count("\n") == 1


def test_resume_with_other_classes_is_refused(sample_dir, tmp_path, capsys):
    run = tmp_path / "run"
    _fake_run(run, sample_dir)
    classes = json.loads((run / "classes.json").read_text())
    classes["classes"][0] = "not_a_class"
    (run / "classes.json").write_text(json.dumps(classes))
    code, err = _cli(["--resume", "--run-dir", str(run)], capsys)
    assert code == 2 and "classes" in err and "not_a_class" in err


def test_resume_with_other_convention_is_refused(sample_dir, tmp_path, capsys):
    run = tmp_path / "run"
    _fake_run(run, sample_dir, convention="keras")
    code, err = _cli(["--resume", "--run-dir", str(run), "--weights", "imagenet"], capsys)
    assert code == 2 and "cannot resume" in err


def test_other_settings_without_resume_are_refused(sample_dir, tmp_path, capsys):
    run = tmp_path / "run"
    _fake_run(run, sample_dir)
    code, err = _cli(["--data", str(sample_dir), *TINY, "--lr", "0.5", "--run-dir", str(run)],
                     capsys)
    assert code == 2 and "--resume" in err and "lr" in err and err.count("\n") == 1


def test_resume_without_a_run_is_refused(tmp_path, capsys):
    code, err = _cli(["--resume", "--run-dir", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "not a run directory" in err
