"""The pieces of training that need no dataset: precision choice, LR schedule, the steps."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fastfood.errors import FastfoodError  # noqa: E402
from fastfood import machine  # noqa: E402
from fastfood.train import precision as prec  # noqa: E402
from fastfood.train.schedule import lr_at, polynomial_decay  # noqa: E402

V100 = machine.Hardware(((7, 0),), ("Tesla V100",), False)
T4 = machine.Hardware(((7, 5),), ("Tesla T4",), False)
A100 = machine.Hardware(((8, 0),), ("NVIDIA A100-SXM4-80GB",), False)
H200 = machine.Hardware(((9, 0), (9, 0)), ("NVIDIA H200", "NVIDIA H200"), False)
MIXED_CARDS = machine.Hardware(((9, 0), (7, 0)), ("NVIDIA H100", "Tesla V100"), False)
K80 = machine.Hardware(((3, 7),), ("Tesla K80",), False)
PLAIN_CPU = machine.Hardware()
BF16_CPU = machine.Hardware(cpu_bf16=True)


@pytest.mark.parametrize(
    "requested, hw, policy, scaled",
    [
        ("auto", V100, "mixed_float16", True),
        ("auto", T4, "mixed_float16", True),
        ("auto", A100, "mixed_bfloat16", False),
        ("auto", H200, "mixed_bfloat16", False),
        ("mixed", A100, "mixed_bfloat16", False),
        ("auto", MIXED_CARDS, "mixed_float16", True),  # the oldest card decides
        ("fp16", H200, "mixed_float16", True),
        ("auto", K80, "float32", False),
        ("mixed", K80, "mixed_float16", True),
        ("auto", PLAIN_CPU, "float32", False),
        ("auto", BF16_CPU, "mixed_bfloat16", False),
        ("mixed", PLAIN_CPU, "mixed_bfloat16", False),
        ("fp32", V100, "float32", False),
        ("fp16", PLAIN_CPU, "mixed_float16", True),
        ("bf16", V100, "mixed_bfloat16", False),
    ],
)
def test_precision_choice(requested, hw, policy, scaled):
    choice = prec.choose_precision(requested, hw)
    assert (choice.policy, choice.loss_scale) == (policy, scaled)
    assert choice.reason


def test_bf16_on_ampere_and_newer_says_why():
    reason = prec.choose_precision("auto", H200).reason
    assert "9.0" in reason and "no loss scaling" in reason


def test_precision_rejects_unknown():
    from fastfood.config import TrainConfig

    # Checked once, when the config is made; choose_precision trusts the config.
    with pytest.raises(FastfoodError, match="--precision"):
        TrainConfig(precision="fp8")


def test_xla_auto_is_on_for_gpus_only():
    assert prec.choose_xla("auto", V100)[0] is True
    assert prec.choose_xla("auto", PLAIN_CPU)[0] is False
    assert prec.choose_xla("on", PLAIN_CPU)[0] is True
    assert prec.choose_xla("off", V100)[0] is False


def test_cpu_flags_parsing():
    assert machine.cpu_has_bf16("flags\t\t: fpu sse2 avx512f avx512_bf16\n")
    assert machine.cpu_has_bf16("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert not machine.cpu_has_bf16("flags\t\t: fpu sse2 avx2 avx512f\n")


def test_schedule_decays_linearly_to_end_factor():
    sched = polynomial_decay(0.1, 100, 1e-4)
    for step in (0, 1, 50, 99, 100, 150):
        assert float(sched(step)) == pytest.approx(lr_at(step, 0.1, 100, 1e-4), rel=1e-5)
    assert lr_at(0, 0.1, 100, 1e-4) == pytest.approx(0.1)
    assert lr_at(100, 0.1, 100, 1e-4) == pytest.approx(1e-5)
    assert lr_at(50, 0.1, 100, 1e-4) == pytest.approx((0.1 + 1e-5) / 2)


# ---- steps on a tiny Keras model ----------------------------------------------------

def _tiny_model(num_classes=4, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(num_classes, name="fc8")(x)
    x = keras.layers.Activation("linear", dtype="float32")(x)
    return keras.Model(inputs, x)


def _l2(wd):
    import tensorflow as tf

    def fn(model):
        return wd * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                              for v in model.trainable_variables if "kernel" in v.path]) / 2
    return fn


def _data(n=16, num_classes=4, seed=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n).astype(np.int32)
    # Learnable: the class sets the mean brightness of one channel.
    images = rng.integers(0, 60, (n, 8, 8, 3)).astype(np.float32)
    images[np.arange(n), :, :, labels % 3] += 60 * (labels[:, None, None] + 1)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def test_train_step_matches_hand_computed_loss_and_learns():
    import keras
    import tensorflow as tf

    from fastfood.train.step import make_optimizer, make_train_step

    keras.mixed_precision.set_global_policy("float32")
    strategy = tf.distribute.get_strategy()
    model = _tiny_model()
    opt = make_optimizer(polynomial_decay(0.05, 40, 1e-4), 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    images, labels = _data()
    step = make_train_step(model, opt, strategy, global_batch=16, weight_decay=1e-3,
                           l2_fn=_l2(1e-3))
    logits = model(images, training=False).numpy()
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - logits.max(1, keepdims=True)
    expected_xent = -logp[np.arange(16), labels].mean()
    it = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    first = {k: float(v) for k, v in step(next(it)).items()}
    assert first["xent"] == pytest.approx(expected_xent, rel=1e-4)
    assert first["loss"] == pytest.approx(first["xent"] + first["l2"], rel=1e-6)
    assert first["l2"] > 0
    assert first["lr"] == pytest.approx(0.05)
    assert "loss_scale" not in first
    for _ in range(30):
        last = {k: float(v) for k, v in step(next(it)).items()}
    assert int(opt.iterations.numpy()) == 31
    assert last["lr"] == pytest.approx(lr_at(30, 0.05, 40, 1e-4), rel=1e-5)
    assert last["xent"] < 0.5 * first["xent"]


def test_frozen_step_trains_only_the_head():
    import keras
    import tensorflow as tf

    from fastfood.train.step import make_optimizer, make_train_step

    keras.mixed_precision.set_global_policy("float32")
    model = _tiny_model()
    opt = make_optimizer(0.1, 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    head = model.get_layer("fc8").trainable_variables
    step = make_train_step(model, opt, tf.distribute.get_strategy(), global_batch=16,
                           weight_decay=0.0, variables=head, l2_fn=_l2(0.0))
    conv_before = model.get_layer("conv").kernel.numpy().copy()
    fc_before = model.get_layer("fc8").kernel.numpy().copy()
    it = iter(tf.data.Dataset.from_tensors(_data()).repeat())
    step(next(it))
    step(next(it))
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(), conv_before)
    assert not np.allclose(model.get_layer("fc8").kernel.numpy(), fc_before)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_half_precision_steps_run(policy):
    import keras
    import tensorflow as tf

    from fastfood.train.step import make_optimizer, make_train_step

    keras.mixed_precision.set_global_policy(policy)
    try:
        model = _tiny_model()
        scaled = policy == "mixed_float16"
        opt = make_optimizer(0.05, 0.9, loss_scale=scaled)
        opt.build(model.trainable_variables)
        step = make_train_step(model, opt, tf.distribute.get_strategy(), global_batch=16,
                               weight_decay=1e-4, l2_fn=_l2(1e-4))
        it = iter(tf.data.Dataset.from_tensors(_data()).repeat())
        logs = [{k: float(v) for k, v in step(next(it)).items()} for _ in range(20)]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(math.isfinite(log["loss"]) for log in logs)
    assert ("loss_scale" in logs[0]) == scaled
    if scaled:
        assert logs[0]["loss_scale"] == 2.0**15
    assert logs[-1]["xent"] < logs[0]["xent"]


def test_eval_step_counts_every_example_once():
    import keras
    import tensorflow as tf

    from fastfood.train.step import evaluate, make_eval_step

    keras.mixed_precision.set_global_policy("float32")
    model = _tiny_model(num_classes=7)
    images, labels = _data(n=23, num_classes=7)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(5)  # last batch of 3
    result = evaluate(make_eval_step(model, tf.distribute.get_strategy(), num_classes=7), ds)
    logits = model(images, training=False).numpy()
    assert result["count"] == 23
    assert result["top1"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert result["top5"] == pytest.approx(np.mean([lab in row for lab, row in zip(labels, top5)]))


# ---- run-directory helpers (no TensorFlow) ----------------------------------------------

def test_metrics_truncate_after_drops_later_and_broken_lines(tmp_path):
    from fastfood.train.metrics import read, truncate_after

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "step": 1, "epoch": 1}\n'
                    '{"kind": "val", "step": 5, "epoch": 1}\n'
                    '{"kind": "train", "step": 6, "epoch": 2}\n'
                    '{"kind": "train", "st')  # cut short by a kill
    assert truncate_after(path, 5) == 2
    assert [r["step"] for r in read(path)] == [1, 5]


def test_image_grid_tiles_images():
    from fastfood.train.metrics import image_grid

    images = np.stack([np.full((2, 3, 3), i, np.uint8) for i in range(5)])
    grid = image_grid(images, columns=4)
    assert grid.shape == (4, 12, 3)
    assert grid[0, 3, 0] == 1 and grid[2, 0, 0] == 4 and grid[2, 3, 0] == 0


def test_config_differences_ignore_bookkeeping():
    from fastfood.config import ModelConfig, RunConfig, TrainConfig
    from fastfood.train.resume import differences

    old = RunConfig(model=ModelConfig(num_classes=8, convention="slim"),
                    train=TrainConfig(run_dir="runs/a"))
    same = RunConfig(model=ModelConfig(), train=TrainConfig(run_dir="runs/b"))
    assert differences(old, same) == []
    other = RunConfig(model=ModelConfig(width=0.5), train=TrainConfig(lr=0.1))
    assert {(s, k) for s, k, _, _ in differences(old, other)} == {("model", "width"),
                                                                  ("train", "lr")}


def test_progress_plain_and_fancy():
    import io

    from fastfood.train.progress import Progress, val_line

    out = io.StringIO()
    plain = Progress(total_epochs=3, stream=out, fancy=False)
    plain.start_epoch(0, 10)
    plain.update(4, 4, {"loss": 1.23456, "top1": 0.5, "lr": 0.01, "img/s": 123.4})
    plain.message(val_line(4, 0, {"top1": 0.9734, "top5": 1.0, "loss": 0.0812}))
    plain.end_epoch()
    text = out.getvalue()
    assert "epoch 1/3 batch 4/10 step 4: loss 1.2346 top1 0.500 lr 0.01 123 img/s" in text
    assert "val step 4 epoch 1: top1 0.973 top5 1.000 loss 0.081" in text

    out = io.StringIO()
    fancy = Progress(total_epochs=3, stream=out, fancy=True)
    fancy.start_epoch(1, 10, done=2)
    fancy.update(12, 5, {"loss": 0.5, "img/s": 99.0})
    fancy.message("hello")
    fancy.end_epoch()
    assert "epoch 2/3" in out.getvalue() and "hello" in out.getvalue()
