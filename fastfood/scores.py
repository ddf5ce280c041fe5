"""The numbers behind evaluate, calibrate and audit, as pure numpy on arrays.

Kept apart from the commands so each rule (how a calibration bin is drawn, what macro F1
averages over, which threshold "reaches" an accuracy) is written once and tested alone.
No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Expected calibration error bins: 15 equal-width bins of the top-1 probability over
#: [0, 1], right-closed ((0, 1/15], (1/15, 2/15], ... with 0 in the first), as in Guo et
#: al. 2017 ("On Calibration of Modern Neural Networks"), so figures compare with theirs.
ECE_BINS = 15
BIN_RULE = "equal-width bins of the top-1 probability over [0, 1], right-closed"


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """log softmax(logits / T) per row, in float64 (no underflow to -inf for confident rows)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return np.exp(log_softmax(logits, temperature))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / T)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 0.0
    logp = log_softmax(logits, temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


@dataclass(frozen=True)
class Bin:
    """One calibration bin: its confidence range, how many samples, their mean confidence
    and their accuracy."""

    low: float
    high: float
    n: int
    confidence: float
    accuracy: float


def reliability_bins(confidence: np.ndarray, correct: np.ndarray,
                     bins: int = ECE_BINS) -> list[Bin]:
    """The non-empty bins (ECE_BINS: equal width, right-closed, 0 in the first)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        members = which == b
        if members.any():
            out.append(Bin(b / bins, (b + 1) / bins, int(members.sum()),
                           float(confidence[members].mean()), float(correct[members].mean())))
    return out


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over bins of |bin| / n * |accuracy - mean confidence|.

    `confidence` is each sample's top-1 probability, `correct` whether that top-1 was right.
    Bins as ECE_BINS says (equal width, right-closed, 0 in the first).
    """
    n = len(confidence)
    if n == 0:
        return 0.0
    return float(sum(b.n / n * abs(b.accuracy - b.confidence)
                     for b in reliability_bins(confidence, correct, bins)))


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall and F1 (nan where undefined), and their macro means."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray

    @property
    def macro_precision(self) -> float:
        return _mean_defined(self.precision)

    @property
    def macro_recall(self) -> float:
        return _mean_defined(self.recall)

    @property
    def macro_f1(self) -> float:
        return _mean_defined(self.f1)


def _mean_defined(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if len(defined) else 0.0


def class_scores(confusion: np.ndarray) -> ClassScores:
    """Precision, recall and F1 per class from a confusion matrix (rows true, columns
    predicted).

    A class never predicted has no precision (nan), one with no images no recall (nan);
    macro means average the classes where the value is defined, so an absent class
    neither helps nor hurts. F1 is nan only where both are undefined, 0 where either is 0.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, np.nan)
        recall = np.where(actual > 0, hits / actual, np.nan)
        p0, r0 = np.nan_to_num(precision), np.nan_to_num(recall)
        f1 = np.where(p0 + r0 > 0, 2 * p0 * r0 / (p0 + r0), 0.0)
    f1 = np.where(np.isnan(precision) & np.isnan(recall), np.nan, f1)
    return ClassScores(precision, recall, f1)


def most_confused(confusion: np.ndarray, k: int = 10) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as (true, predicted, count), largest first (ties:
    lower true class, then lower predicted class); cells of 0 are never listed."""
    confusion = np.asarray(confusion)
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    cells = [(int(off[t, p]), t, p) for t, p in zip(*np.nonzero(off))]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(t, p, count) for count, t, p in cells[:k]]


@dataclass(frozen=True)
class Selective:
    """Answers given only at top-1 probability >= threshold: how many, and how right."""

    threshold: float
    answered: int
    total: int
    correct: int

    @property
    def coverage(self) -> float:
        return self.answered / self.total if self.total else 0.0

    @property
    def accuracy(self) -> float | None:
        """Accuracy over the answered images; None when nothing is answered."""
        return self.correct / self.answered if self.answered else None

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "answered": self.answered, "total": self.total,
                "coverage": self.coverage, "accuracy": self.accuracy}


def selective(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> Selective:
    """Coverage and accuracy when images under `threshold` are answered 'unknown'."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    kept = confidence >= threshold
    return Selective(float(threshold), int(kept.sum()), len(confidence),
                     int(correct[kept].sum()))


def threshold_for_accuracy(confidence: np.ndarray, correct: np.ndarray,
                           target: float) -> Selective | None:
    """The lowest threshold (one of the seen confidences) whose answered images reach
    `target` accuracy, so the most images are answered; None when no threshold does.

    Computed on the images given: a threshold chosen on a split and reported on the same
    split is optimistic; choose it on val, check it on held-out data.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if len(confidence) == 0:
        return None
    order = np.argsort(-confidence, kind="stable")
    conf_sorted, hits = confidence[order], np.cumsum(correct[order])
    answered = np.arange(1, len(order) + 1)
    # A threshold t answers every image with confidence >= t: only the last position of
    # each run of equal confidences is a real choice.
    last_of_value = np.append(conf_sorted[1:] != conf_sorted[:-1], True)
    ok = (hits / answered >= target) & last_of_value
    if not ok.any():
        return None
    i = int(np.nonzero(ok)[0].max())
    return Selective(float(conf_sorted[i]), int(answered[i]), len(confidence), int(hits[i]))
