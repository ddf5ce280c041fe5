"""Temperature scaling: the fit finds a known temperature, stays in its bounds, is stored with
the run, and predict / evaluate / serve use it only for the weights it was fitted on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastfood import calibrate, rundir, scores
from support.cli import TINY, run_cli


def _sampled(t_true: float, n: int = 10000, classes: int = 10, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / t_true): t_true is the right answer."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, classes))
    p = scores.softmax(logits, t_true)
    labels = (p.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
    return logits, labels


@pytest.mark.parametrize("t_true", [0.5, 1.0, 2.5])
def test_fit_recovers_the_temperature_labels_were_drawn_at(t_true: float) -> None:
    logits, labels = _sampled(t_true)
    t, at_bound = calibrate.fit(logits, labels)
    assert not at_bound and t == pytest.approx(t_true, rel=0.08)
    cal = calibrate.summarise(logits, labels, t, at_bound, split="val", checkpoint="best/b-1")
    assert cal.nll_after <= cal.nll_before + 1e-12  # T = 1 was a candidate
    if t_true != 1.0:  # miscalibrated at T = 1, calibrated after
        assert cal.ece_after < cal.ece_before and cal.ece_after < 0.02


def test_fit_stops_at_its_bounds() -> None:
    logits = np.array([[10.0, 0.0], [0.0, 10.0]])
    t, at_bound = calibrate.fit(logits, np.array([0, 1]))  # always right: wants T -> 0
    assert (t, at_bound) == (calibrate.T_MIN, True)
    t, at_bound = calibrate.fit(logits, np.array([1, 0]))  # always wrong: wants T -> inf
    assert (t, at_bound) == (calibrate.T_MAX, True)


def test_temperature_only_for_the_weights_it_was_fitted_on(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert rundir.temperature_for(tmp_path, str(tmp_path / "best" / "best-3")) == 1.0
    (tmp_path / "calibration.json").write_text(json.dumps(
        {"temperature": 1.7, "checkpoint": "best/best-3"}))
    assert rundir.temperature_for(tmp_path, str(tmp_path / "best" / "best-3")) == 1.7
    assert capsys.readouterr().err == ""
    assert rundir.temperature_for(tmp_path, str(tmp_path / "ckpt" / "ckpt-9")) == 1.0
    assert "fastfood calibrate" in capsys.readouterr().err
    (tmp_path / "calibration.json").write_text('{"temperature": -1, "checkpoint": "x"}')
    assert rundir.temperature_for(tmp_path, "x") == 1.0


@pytest.fixture(scope="module")
def calibrated_run(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's trained run (which must not change), calibrated."""
    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(trained_run, run)
    calibrate.fit_temperature(run)
    return run


def test_fit_temperature_writes_the_run_and_predict_uses_it(calibrated_run: Path,
                                                           trained_run: Path,
                                                           sample_dir: Path) -> None:
    from fastfood.data import load
    from fastfood.predict import Predictor

    saved = json.loads((calibrated_run / "calibration.json").read_text())
    assert saved["n"] == len(load(sample_dir).val) and saved["split"] == "val"
    assert saved["bins"] == 15
    assert saved["checkpoint"].startswith("best/") and saved["nll_after"] <= saved["nll_before"]
    t = saved["temperature"]
    assert t != 1.0
    files = list(load(sample_dir).val.files[:40])
    raw = list(Predictor.load(trained_run).predict_files(files, top_k=8, batch_size=16))
    cal_predictor = Predictor.load(calibrated_run)
    assert cal_predictor.temperature == pytest.approx(t)
    cal = list(cal_predictor.predict_files(files, top_k=8, batch_size=16))
    for a, b in zip(raw, cal):
        pa = np.zeros(8)
        pb = np.zeros(8)
        for g in a.top_k:
            pa[g.index] = g.prob
        for g in b.top_k:
            pb[g.index] = g.prob
        expected = pa ** (1 / t) / (pa ** (1 / t)).sum()  # softmax(z / T) from softmax(z)
        np.testing.assert_allclose(pb, expected, atol=2e-4)


def test_other_weights_are_uncalibrated(calibrated_run: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    from fastfood.predict import Predictor

    ckpt = sorted((calibrated_run / "ckpt").glob("*.index"))[-1]
    predictor = Predictor.load(model_path=str(ckpt.with_suffix("")))
    assert predictor.temperature == 1.0
    assert "fitted for 'best/" in capsys.readouterr().err


def test_calibrate_command(calibrated_run: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["calibrate", "--run-dir", str(calibrated_run), "--json"], capsys)
    assert code == 0, err
    printed = json.loads(out)
    assert printed == json.loads((calibrated_run / "calibration.json").read_text())
    code, out, err = run_cli(["calibrate", "--run-dir", str(calibrated_run / "nope")], capsys)
    assert code == 2 and "does not exist" in err


def test_is_chief_reads_tf_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastfood.cli.train import is_chief

    cases = [
        (None, True),
        ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 1}}, False),
        ({"cluster": {"chief": ["c"], "worker": ["a"]}, "task": {"type": "worker",
                                                                 "index": 0}}, False),
        ({"cluster": {"chief": ["c"], "worker": ["a"]}, "task": {"type": "chief",
                                                                 "index": 0}}, True),
    ]
    for tf_config, expected in cases:
        if tf_config is None:
            monkeypatch.delenv("TF_CONFIG", raising=False)
        else:
            monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
        assert is_chief() is expected, tf_config


@pytest.mark.slow
def test_train_command_calibrates_at_the_end(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    from support.images import write_images

    root = tmp_path / "data"
    for seed, name in enumerate(("red", "blue")):  # distinct images: no duplicate to group
        write_images(root / name, 10, seed=seed)
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", str(root), *TINY, "--max-steps", "3",
                            "--loader", "tfdata", "--run-dir", str(run)], capsys)
    assert code == 0, err
    assert "fastfood: calibrated: temperature" in err
    saved = json.loads((run / "calibration.json").read_text())
    assert saved["n"] == 2 and saved["temperature"] > 0  # 10 % of each class in val
    run2 = tmp_path / "run2"
    code, _, err = run_cli(["train", "--data", str(root), *TINY, "--max-steps", "1",
                            "--loader", "tfdata", "--run-dir", str(run2), "--no-calibrate"],
                           capsys)
    assert code == 0, err
    assert not (run2 / "calibration.json").exists()
