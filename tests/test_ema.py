"""--ema: the average's arithmetic, its swap in and out of the model, an exact resume,
and that best/ and final/ (what predict, evaluate and export read) hold the average. The
resumed run is a 20:1 one with --class-weight balanced too, so one set of runs shows both
resume exactly."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, name="fc8")(x)
    return keras.Model(inputs, keras.layers.Activation("linear", dtype="float32")(x))


def test_the_average_follows_the_warm_up_rule_and_swaps_in_and_out():
    import keras
    import tensorflow as tf

    from fastfood.train.ema import Ema
    from fastfood.train.step import make_optimizer, make_train_step

    keras.mixed_precision.set_global_policy("float32")
    strategy = tf.distribute.get_strategy()
    model = _tiny_model()
    opt = make_optimizer(0.1, 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    ema = Ema(model, 0.5, strategy)
    names = [w.path for w in ema.weights]
    assert any("moving_mean" in n for n in names)  # batch-norm statistics averaged too
    step = make_train_step(model, opt, strategy, global_batch=4, weight_decay=0.0,
                           l2_fn=lambda m: tf.constant(0.0), ema=ema)
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, 255, (4, 8, 8, 3)).astype(np.uint8), np.array([0, 1, 2, 0]))
    start = [w.numpy().copy() for w in ema.weights]
    step(batch)
    after1 = [w.numpy().copy() for w in ema.weights]
    for s, a, b in zip(ema.shadow, start, after1):  # d = min(0.5, 1/10)
        np.testing.assert_allclose(s.numpy(), 0.1 * a + 0.9 * b, rtol=1e-5, atol=1e-7)
    shadow1 = [s.numpy().copy() for s in ema.shadow]
    step(batch)
    after2 = [w.numpy().copy() for w in ema.weights]
    for s, a, b in zip(ema.shadow, shadow1, after2):  # d = min(0.5, 2/11)
        np.testing.assert_allclose(s.numpy(), 2 / 11 * a + 9 / 11 * b, rtol=1e-5, atol=1e-7)
    assert int(ema.updates.numpy()) == 2
    averaged = [s.numpy().copy() for s in ema.shadow]
    with ema.applied():
        for w, s in zip(ema.weights, averaged):
            np.testing.assert_array_equal(w.numpy(), s)
    for w, b in zip(ema.weights, after2):
        np.testing.assert_array_equal(w.numpy(), b)


def _config(root, run, **train):
    from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig

    return RunConfig(
        data=DataConfig(root=str(root)), loader=LoaderConfig(kind="tfdata", batch_size=8),
        model=ModelConfig(width=0.125, image_size=32, weights="none", dropout=0.0),
        train=TrainConfig(**{"epochs": 2, "lr": 0.01, "precision": "fp32", "xla": "off",
                             "run_dir": str(run), "save_every": 0, "ema": 0.9,
                             "class_weight": "balanced",
                             # a flat rate: --max-steps then changes where a run stops only
                             "warmup_epochs": 0.0, "end_lr_factor": 1.0, **train}))


def _tensors(prefix, start):
    from tests.support.runs import read_every_tensor

    return {k: v for k, v in read_every_tensor(str(prefix)).items()
            if k.startswith(start) and "OPTIMIZER" not in k}


@pytest.mark.slow
def test_a_weighted_averaged_run_resumes_exactly_and_inference_reads_the_average(
        make_folders, tmp_path):
    from fastfood import data, rundir
    from fastfood.config import DataConfig
    from fastfood.train import train_and_evaluate
    from fastfood.train.class_weights import balanced

    root = make_folders({"big": 40, "small": 2})  # 20:1
    spec = data.load_config(DataConfig(root=str(root)))
    whole, part = tmp_path / "whole", tmp_path / "part"
    summary = train_and_evaluate(_config(root, whole, max_steps=8), fancy=False)
    assert summary["exit_code"] == 0 and summary["step"] == 8
    assert summary["class_weights"] == pytest.approx(list(balanced(spec.train.labels, 2)))
    train_and_evaluate(_config(root, part, max_steps=3), fancy=False)
    resumed = train_and_evaluate(_config(root, part, max_steps=8), resume=True, fancy=False)
    assert resumed["step"] == 8
    a, b = _tensors(whole / "ckpt" / "ckpt-8", ""), _tensors(part / "ckpt" / "ckpt-8", "")
    assert sum(k.startswith("ema/") for k in a) > 10 and sum(k.startswith("model/") for k in a)
    assert a.keys() == b.keys()
    for key in a:  # the trained weights and their average
        if key.startswith(("ema/", "model/")):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    a = {k: v for k, v in a.items() if k.startswith("ema/")}
    assert int(a["ema/updates/.ATTRIBUTES/VARIABLE_VALUE"]) == 8
    config = rundir.read_config(whole)
    assert config.train.ema == 0.9 and config.train.class_weight == "balanced"

    # final/ holds the average, not the trained weights, and reading ckpt/ as inference
    # does (rundir.read_weights, under load_run: predict, evaluate, export) gives it too.
    import tensorflow as tf

    from fastfood import model as models

    cfg = config.model
    targets = rundir.ema_targets
    shadow = [a[k] for k in sorted((k for k in a if k.startswith("ema/shadow/")),
                                   key=lambda k: int(k.split("/")[2]))]
    for which in ("final/final", "ckpt/ckpt-8"):
        fresh = models.build(cfg, load_weights=False)
        rundir.read_weights(fresh, str(whole / which))
        for w, s in zip(targets(fresh), shadow):
            np.testing.assert_allclose(w.numpy(), s, rtol=1e-6, err_msg=which)
    trained = models.build(cfg, load_weights=False)
    tf.train.Checkpoint(model=trained).read(str(whole / "ckpt" / "ckpt-8")).expect_partial()
    assert not all(np.allclose(w.numpy(), s) for w, s in zip(targets(trained), shadow))


def test_old_configs_keep_the_ema_off():
    from fastfood.config import RunConfig

    old = RunConfig().to_dict()
    del old["train"]["ema"]
    assert RunConfig.from_dict(old).train.ema == 0.0


def test_a_checkpoint_without_an_average_starts_it_at_the_restored_weights(tmp_path):
    """--ema added when resuming a run trained without it: the average starts at the
    restored weights, not at the freshly built ones."""
    import keras
    import tensorflow as tf

    from fastfood.train.checkpoints import Checkpoints, Position
    from fastfood.train.ema import Ema
    from fastfood.train.step import make_optimizer

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    opt = make_optimizer(0.1, 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    Checkpoints(tmp_path, model, opt).save(Position(step=5, epoch=0, batch_in_epoch=5))
    saved = [w.numpy().copy() for w in model.weights]
    for w in model.weights:
        w.assign(tf.zeros_like(w))
    ema = Ema(model, 0.9, tf.distribute.get_strategy())  # shadows of the zeroed weights
    assert Checkpoints(tmp_path, model, opt, ema=ema).restore() == Position(5, 0, 5)
    for s, w in zip(ema.shadow, saved):
        np.testing.assert_array_equal(s.numpy(), w)
    assert int(ema.updates.numpy()) == 0
