"""--patience and --time-limit: when a run ends early, that it ends with a clean save that
resumes, and that summary.json says why. The time budget runs on a fake clock that moves
one second per training step, so the tests assert steps, not wall-clock times."""

from __future__ import annotations

import json
import os
import types

import pytest

from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
from fastfood.train import budget
from fastfood.train.budget import Patience, TimeBudget
from fastfood.train.schedule import lr_at

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# 4 classes x 12 train images, batch 8: 6 steps per epoch.
SMALL = {"a": (13, 2), "b": (13, 2), "c": (13, 2), "d": (13, 2)}


def _config(root, run, **train) -> RunConfig:
    return RunConfig(
        data=DataConfig(root=str(root)), loader=LoaderConfig(kind="tfdata", batch_size=8),
        model=ModelConfig(width=0.125, image_size=32, weights="none", norm="none"),
        train=TrainConfig(**{"epochs": 10, "lr": 0.01, "warmup_epochs": 0.0,
                             "precision": "fp32", "xla": "off", "run_dir": str(run),
                             "save_every": 0, **train}))


def _train(config, **kw) -> dict:
    from fastfood.train import train_and_evaluate

    return train_and_evaluate(config, fancy=False, **kw)


def test_patience_counts_validations_without_a_new_best():
    p = Patience(limit=2)
    for improved, spent in ((True, False), (False, False), (True, False), (False, False),
                            (False, True)):
        p.record(improved)
        assert p.spent == spent
    assert not Patience(limit=0, bad=99).spent


def test_time_budget_fits_once_from_the_measured_step_time(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(budget, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    b = TimeBudget(limit_s=50.0, used_s=10.0)  # 40 s left of 50
    assert not b.wants_fit(20)  # no step timed yet
    b.stepped(1)  # the compiling first step ends at 100 s
    clock[0] += 20.0  # 10 steps of 2 s
    # no validation timed yet, but 20 s is past 20 % of the limit
    assert not b.wants_fit(10) and b.wants_fit(11)
    long = TimeBudget(limit_s=1000.0)
    long.stepped(1)
    assert not long.wants_fit(11)  # neither a validation nor 200 s timed
    long.validated()
    assert long.wants_fit(11)
    # 20 s left, 90 % of it at 2 s a step: 9 more steps
    assert b.estimate(11, 1000) == 20.0 and b.estimate(11, 15) == 15.0
    assert b.settle(11, 1000, 19.6) == 19 and b.fitted == 19 and not b.wants_fit(12)
    assert b.fit == {"at_step": 11, "planned_steps": 1000, "fitted_steps": 19,
                     "limit_s": 50.0, "elapsed_s": 30.0}
    assert not b.out_of_time
    clock[0] += 20.0
    assert b.out_of_time


def test_refit_moves_the_end_of_a_traced_schedule():
    import tensorflow as tf

    from fastfood.train.schedule import lr_schedule

    sched = lr_schedule(0.1, 100, warmup_steps=5, end_factor=1e-3)
    at = tf.function(lambda s: sched(s))
    assert float(at(tf.constant(30))) == pytest.approx(lr_at(30, 0.1, 100, 1e-3, 5), rel=1e-5)
    sched.refit(40)  # the warm-up shrinks with the run: 5 steps of 100 -> 2 of 40
    for step in (0, 1, 2, 30, 39):
        assert float(at(tf.constant(step))) == pytest.approx(lr_at(step, 0.1, 40, 1e-3, 2),
                                                             rel=1e-5), step


def test_bad_time_limits_are_refused_naming_the_flag(capsys):
    from fastfood.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "/does/not/matter", "--time-limit", "2 hours"])
    assert exc.value.code == 2 and "--time-limit" in capsys.readouterr().err


@pytest.mark.slow
def test_patience_stops_after_n_validations_without_improvement(make_food101, tmp_path):
    from fastfood import rundir
    from fastfood.train import metrics

    run = tmp_path / "run"
    # A rate too small to change a prediction: val top-1 never beats the first validation.
    summary = _train(_config(make_food101(SMALL), run, lr=1e-12, val_every=1, patience=2))
    assert summary["exit_code"] == 0
    assert summary["stop"]["reason"] == "patience" and summary["stop"]["step"] == 3
    assert summary["step"] == 3 and summary["stopped_by"] is None
    val = [r["step"] for r in metrics.read(run) if r["kind"] == "val"]
    assert val == [1, 2, 3]
    assert json.loads((run / rundir.SUMMARY).read_text())["stop"]["reason"] == "patience"
    assert (run / rundir.FINAL_DIR).is_dir() and (run / rundir.BEST_DIR).is_dir()
    assert "best-1.index" in os.listdir(run / rundir.BEST_DIR)  # the best weights kept


class _FakeClock:
    """time.monotonic for fastfood.train.budget: one second per training step."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        monkeypatch.setattr(budget, "time", types.SimpleNamespace(monotonic=lambda: self.now))
        original = TimeBudget.stepped

        def stepped(b, step):
            self.now += 1.0
            original(b, step)

        monkeypatch.setattr(TimeBudget, "stepped", stepped)


@pytest.mark.slow
def test_time_limit_fits_the_schedule_and_the_fitted_run_resumes(make_food101, tmp_path,
                                                                 monkeypatch):
    from fastfood.train import metrics

    _FakeClock(monkeypatch)
    root, run = make_food101(SMALL), tmp_path / "run"
    summary = _train(_config(root, run, time_limit="20s"))
    # Timed over steps 1-11 (1 s each): 90 % of the 9 s left fits 8 more steps.
    assert summary["time_fit"]["fitted_steps"] == 19 and summary["time_fit"]["at_step"] == 11
    assert summary["total_steps"] == 19 and summary["step"] == 19
    assert summary["stop"]["reason"] == "completed" and summary["exit_code"] == 0
    last = [r for r in metrics.read(run) if r["kind"] == "train"][-1]
    assert last["step"] == 19
    assert last["lr"] == pytest.approx(lr_at(18, 0.01, 19, 1e-4), rel=1e-5)
    again = _train(_config(root, run, time_limit="1h"), resume=True)  # the fit is kept
    assert again["step"] == 19 and again["total_steps"] == 19


@pytest.mark.slow
def test_time_limit_ends_with_a_checkpoint_that_resumes(make_food101, tmp_path, monkeypatch):
    from fastfood.train.checkpoints import has_checkpoint

    monkeypatch.setattr(budget, "FIT_AFTER_STEPS", 1000)  # never fitted: the hard stop
    _FakeClock(monkeypatch)
    root, run = make_food101(SMALL), tmp_path / "run"
    summary = _train(_config(root, run, time_limit="8s"))
    assert summary["stop"] == {"reason": "time limit", "step": 8,
                               "detail": summary["stop"]["detail"]}
    assert "--time-limit 8s" in summary["stop"]["detail"] and summary["exit_code"] == 0
    assert has_checkpoint(run) and (run / "ckpt" / "ckpt-8.index").is_file()
    spent = _train(_config(root, run, time_limit="8s"), resume=True)  # counts the 8 s
    assert spent["step"] == 8 and spent["stop"]["reason"] == "time limit"
    more = _train(_config(root, run, time_limit="14s"), resume=True)
    assert more["step"] == 14 and more["stop"]["reason"] == "time limit"


def test_a_checkpoint_of_an_earlier_version_restores_with_the_counts_at_zero(tmp_path):
    """Before patience and the time limit a checkpoint held no counts of them: it still
    restores, and they start at zero."""
    import keras
    import tensorflow as tf

    from fastfood.train.checkpoints import Checkpoints, Position
    from fastfood.train.step import make_optimizer

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    opt = make_optimizer(0.1, 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    old = {k: tf.Variable(v, dtype=d) for k, v, d in (
        ("step", 7, tf.int64), ("epoch", 1, tf.int64), ("batch_in_epoch", 1, tf.int64),
        ("best_top1", 0.5, tf.float64))}
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model, optimizer=opt, **old),
                               str(tmp_path / "ckpt"), max_to_keep=3,
                               checkpoint_name="ckpt").save(checkpoint_number=7)
    ckpts = Checkpoints(tmp_path, model, opt)
    assert ckpts.restore() == Position(7, 1, 1) and ckpts.restored_best_top1 == 0.5
    assert ckpts.restored_state == {"bad_validations": 0, "train_seconds": 0.0,
                                    "fitted_steps": 0}
