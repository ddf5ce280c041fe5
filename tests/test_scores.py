"""fastfood.scores: the calibration bins, per-class scores, confused pairs and thresholds,
each against a hand-worked case or a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest

from fastfood import scores


def test_ece_bins_are_equal_width_and_right_closed() -> None:
    # 15 bins: 1/15 = 0.0667. 0.2 sits exactly on the edge 3/15 -> bin (2/15, 3/15].
    conf = np.array([0.2, 0.2, 0.9, 0.9, 0.9, 0.0])
    correct = np.array([1, 0, 1, 1, 0, 0])
    bins = scores.reliability_bins(conf, correct)
    assert [(round(b.low * 15), b.n) for b in bins] == [(0, 1), (2, 2), (13, 3)]
    # |0 - 0| * 1/6 + |0.5 - 0.2| * 2/6 + |2/3 - 0.9| * 3/6
    assert scores.ece(conf, correct) == pytest.approx(0.3 * 2 / 6 + (0.9 - 2 / 3) * 3 / 6)
    assert scores.ece(np.ones(4), np.ones(4)) == 0.0  # confident and right: calibrated
    assert scores.ece([], []) == 0.0


def test_class_scores_and_macro_means() -> None:
    confusion = np.array([[3, 1, 0],    # class 0: 4 images, 3 found
                          [0, 0, 0],    # class 1: no images, predicted once
                          [2, 0, 4]])   # class 2: 6 images, 4 found; never predicted wrong
    cs = scores.class_scores(confusion)
    np.testing.assert_allclose(cs.precision, [3 / 5, 0.0, 1.0])
    assert np.isnan(cs.recall[1])
    np.testing.assert_allclose(cs.recall[[0, 2]], [3 / 4, 4 / 6])
    f1_0 = 2 * 0.6 * 0.75 / (0.6 + 0.75)
    np.testing.assert_allclose(cs.f1, [f1_0, 0.0, 2 * 1 * (2 / 3) / (1 + 2 / 3)])
    assert cs.macro_recall == pytest.approx((0.75 + 4 / 6) / 2)  # the undefined one left out
    assert cs.macro_precision == pytest.approx((0.6 + 0 + 1) / 3)


def test_most_confused_orders_by_count_then_class() -> None:
    confusion = np.array([[9, 2, 5], [2, 7, 0], [0, 5, 1]])
    assert scores.most_confused(confusion, 3) == [(0, 2, 5), (2, 1, 5), (0, 1, 2)]
    assert scores.most_confused(np.eye(3, dtype=int) * 4) == []


def test_threshold_for_accuracy_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    conf = np.round(rng.uniform(0.2, 1.0, 300), 2)  # rounded: many ties
    correct = rng.uniform(size=300) < conf
    for target in (0.6, 0.8, 0.9, 0.97):
        best = None
        for t in sorted(set(conf.tolist())):
            s = scores.selective(conf, correct, t)
            if s.accuracy is not None and s.accuracy >= target:
                best = s
                break
        got = scores.threshold_for_accuracy(conf, correct, target)
        if best is None:
            assert got is None
        else:
            assert got is not None and got.threshold == best.threshold
            assert (got.answered, got.correct) == (best.answered, best.correct)
    assert scores.threshold_for_accuracy(np.array([0.9]), np.array([False]), 0.5) is None


def test_selective_counts() -> None:
    s = scores.selective(np.array([0.3, 0.5, 0.9, 0.95]), np.array([0, 1, 1, 0]), 0.5)
    assert (s.answered, s.total, s.correct) == (3, 4, 2)
    assert s.coverage == 0.75 and s.accuracy == pytest.approx(2 / 3)
    assert scores.selective(np.array([0.1]), np.array([1]), 0.5).accuracy is None


def test_log_softmax_keeps_confident_rows_finite() -> None:
    logits = np.array([[0.0, 200.0], [1.0, 1.0]], dtype=np.float32)
    logp = scores.log_softmax(logits)
    assert np.isfinite(logp).all() and logp[0, 0] == pytest.approx(-200.0)
    np.testing.assert_allclose(scores.softmax(logits, 2.0)[1], [0.5, 0.5])
    assert scores.nll(logits, np.array([0, 1])) == pytest.approx((200 + np.log(2)) / 2)
