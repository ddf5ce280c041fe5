"""--class-weight balanced: the weights' rule and the weighted loss of one step by hand.
An imbalanced run that resumes exactly with them: tests/test_ema.py (one run checks both);
two replicas: tests/test_knobs_two_replicas.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastfood.train.class_weights import balanced

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def test_balanced_weights_give_every_class_the_same_total():
    labels = [0] * 20 + [1] * 1 + [2] * 3
    w = balanced(labels, 4)
    assert w[3] == 0.0  # no training image
    assert w[0] == pytest.approx(24 / (4 * 20)) and w[1] == pytest.approx(24 / 4)
    totals = {c: w[c] * labels.count(c) for c in range(3)}
    assert len({round(t, 9) for t in totals.values()}) == 1
    every = balanced(labels, 3)  # every class present: the mean weight is 1
    assert sum(every[label] for label in labels) == pytest.approx(len(labels))


def _tiny_model(classes=3):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(classes, name="fc8")(x)
    return keras.Model(inputs, keras.layers.Activation("linear", dtype="float32")(x))


def test_weighted_step_loss_matches_hand_computed():
    import keras
    import tensorflow as tf

    from fastfood.train.step import make_optimizer, make_train_step

    keras.mixed_precision.set_global_policy("float32")
    model = _tiny_model()
    opt = make_optimizer(0.01, 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 8, 8, 3)).astype(np.uint8)
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 2], np.int32)
    weights = (0.5, 2.0, 3.0)
    step = make_train_step(model, opt, tf.distribute.get_strategy(), global_batch=8,
                           weight_decay=0.0, l2_fn=lambda m: tf.constant(0.0),
                           class_weights=weights)
    logits = model(images, training=False).numpy().astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    nll = -logp[np.arange(8), labels]
    expected = float(np.sum(np.array(weights)[labels] * nll) / 8)
    assert abs(expected - nll.mean()) > 1e-3  # the weights change the value
    logs = step((images, labels))
    assert float(logs["xent"]) == pytest.approx(expected, rel=1e-5)


def test_old_configs_train_unweighted():
    from fastfood.config import RunConfig

    old = RunConfig().to_dict()
    del old["train"]["class_weight"]
    assert RunConfig.from_dict(old).train.class_weight == "none"
