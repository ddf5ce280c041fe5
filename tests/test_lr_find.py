"""fastfood lr-find: the smoothing and the suggestion rule on made-up curves, and a sweep
on a tiny dataset that writes its CSV and leaves no run directory behind."""

from __future__ import annotations

import csv
import math
import os

import pytest

from fastfood.train.lr_find import smooth, suggest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def test_smoothing_has_no_lag_at_the_start_and_follows_a_constant():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    out = smooth([1.0, 3.0])
    assert out[0] == 1.0 and 1.0 < out[1] < 3.0


def test_suggestion_is_the_steepest_descent_before_the_lowest_loss():
    lrs = [1e-5 * 10 ** (i / 10) for i in range(51)]  # 1e-5 .. 1
    # A sigmoid fall centred at lr 1e-3 (steepest there), lowest near 1e-2, then a rise.
    losses = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3)))
              + (5.0 * (math.log10(lr) + 2) ** 2 if lr > 1e-2 else 0.0) for lr in lrs]
    steepest, tenth = suggest(lrs, losses)
    assert steepest == pytest.approx(1e-3, rel=0.3)
    low = min(range(len(losses)), key=losses.__getitem__)
    assert tenth == pytest.approx(lrs[low] / 10)
    with pytest.raises(Exception, match="too few"):
        suggest(lrs[:2], losses[:2])


@pytest.mark.slow
def test_sweep_writes_the_csv_and_leaves_no_run(make_food101, tmp_path, monkeypatch):
    from fastfood.cli import main

    root = make_food101({"a": (13, 2), "b": (13, 2), "c": (13, 2), "d": (13, 2)})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = tmp_path / "sweep.csv"
    code = 0
    try:
        main(["lr-find", "--data", str(root), "--weights", "none", "--width", "0.125",
              "--image-size", "32", "--batch-size", "8", "--loader", "tfdata",
              "--precision", "fp32", "--no-xla", "--steps", "12", "--start-lr", "1e-4",
              "--end-lr", "0.1", "--out", str(out)])
    except SystemExit as exc:
        code = exc.code or 0
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert 3 <= len(rows) <= 12 and set(rows[0]) == {"step", "lr", "loss", "smoothed_loss"}
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] == pytest.approx(1e-4, rel=1e-4) and lrs == sorted(lrs)
    if len(rows) == 12:
        assert lrs[-1] == pytest.approx(0.1, rel=1e-3)
    assert list(work.iterdir()) == []  # no runs/ folder, nothing else
