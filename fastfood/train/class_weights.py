"""Per-class loss weights for an imbalanced training split.

'balanced' gives class c the weight n / (k * n_c) (n images, k classes, n_c of class c:
scikit-learn's and Keras' `class_weight='balanced'` rule), so every class carries the same
total weight in an epoch and the mean weight over the training images is 1: the loss keeps
its scale, and the learning rate means what it meant. A class with no training image gets
0 (it never appears in a training batch anyway).

The weights are a function of the training split's labels alone, so a resumed run and
every worker of a cluster compute the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence


def balanced(labels: Sequence[int], num_classes: int) -> tuple[float, ...]:
    """n / (k * n_c) for each class c of `num_classes`, from the training `labels`."""
    counts = [0] * num_classes
    for label in labels:
        counts[int(label)] += 1
    n, k = len(labels), num_classes
    return tuple(n / (k * c) if c else 0.0 for c in counts)


def for_run(mode: str, labels: Sequence[int], num_classes: int) -> tuple[float, ...] | None:
    """The weights `--class-weight mode` gives (None: unweighted)."""
    return balanced(labels, num_classes) if mode == "balanced" else None


def describe(weights: tuple[float, ...] | None) -> str:
    """One line for the run's log."""
    if weights is None:
        return "class weights none"
    present = [w for w in weights if w > 0]
    return (f"class weights balanced ({min(present):.3g} to {max(present):.3g}: n / (k * n_c) "
            "of the training split)")
